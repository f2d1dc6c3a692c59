"""edge_capture.sealing.keys and the rotation (sealed.new_key): where the spool key comes from, what is refused, and
a new key that re-seals every spooled file under it."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from edge_capture.errors import SealError
from edge_capture.sealing.keys import DEFAULT_NAME, Keyring, SpoolKey, default_key_file, encode, load, save
from edge_capture.sealing.sealed import SealedReader, SealedWriter, new_key, read_sealed, write_sealed


def test_the_first_run_makes_a_private_key_beside_the_spool_and_keeps_it(tmp_path: Path) -> None:
    path = default_key_file(tmp_path / "site" / "teleus-edge-outbox")
    assert path == tmp_path / "site" / DEFAULT_NAME
    made = load(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load(path, create=True).current.secret == made.current.secret == load(path).current.secret
    assert len(made.current.secret) == 32 and made.current.secret.hex() not in repr(made)  # never in a log line


def test_a_named_key_file_is_never_made_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SealError) as caught:
        load(tmp_path / "usb" / "edge.key")  # the stick is not mounted: no key appears on the local disk
    assert caught.value.code == "spool_key_missing" and "--new-spool-key" in caught.value.message
    assert not (tmp_path / "usb").exists()
    for text, why in (
        ("", "holds no key"),
        ("teleus-spool-key-v1 not*base64\n", "not base64"),
        ("teleus-spool-key-v1 AAAA\n", "32 bytes"),
        ("some other line\n", "not a teleus spool key line"),
    ):
        (tmp_path / "bad.key").write_text(text)
        with pytest.raises(SealError) as caught:
            load(tmp_path / "bad.key")
        assert caught.value.code == "bad_spool_key" and why in caught.value.message, text


def test_a_key_file_others_can_read_is_used_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "edge.key"
    path.write_text(encode(Keyring.generate()))
    os.chmod(path, 0o644)  # copied off a FAT stick, say
    with caplog.at_level(logging.WARNING, logger="edge_capture.sealing.keys"):
        load(path)
    assert "can be read by other accounts" in caplog.text


def test_a_new_key_reseals_every_spooled_file_and_drops_the_old_one(tmp_path: Path) -> None:
    key_file, outbox, recordings = tmp_path / "edge.key", tmp_path / "outbox", tmp_path / "recordings" / "c1"
    outbox.mkdir()
    recordings.mkdir(parents=True)
    assert new_key(key_file, [outbox, recordings.parent])[1] == 0  # the first key: nothing to re-seal
    old = load(key_file)
    write_sealed(outbox / "1.2.3.dcm", b"a still", old.current)
    write_sealed(recordings / "media.mp4", b"a whole segment", old.current)
    growing = SealedWriter(recordings / "media.1.mp4", old.current)  # left by a killed recorder
    growing.write(b"a torn segment")
    growing.abandon()
    foreign = Keyring.generate()
    write_sealed(outbox / "9.9.9.dcm", b"sealed under a key long lost", foreign.current)

    keyring, resealed = new_key(key_file, [outbox, recordings.parent])
    assert resealed == 3 and len(load(key_file).keys) == 1 and load(key_file).current == keyring.current
    assert keyring.current.secret != old.current.secret
    assert read_sealed(outbox / "1.2.3.dcm", keyring) == b"a still"
    assert read_sealed(recordings / "media.mp4", keyring) == b"a whole segment"
    with SealedReader(recordings / "media.1.mp4", keyring) as view:
        assert not view.finished and view.read_at(0, 100) == b"a torn segment"  # recovery still finishes it
    with pytest.raises(SealError):
        read_sealed(outbox / "1.2.3.dcm", old)  # the old key opens nothing any more
    assert read_sealed(outbox / "9.9.9.dcm", foreign) == b"sealed under a key long lost"  # left as it was


def test_a_rotation_stopped_half_way_leaves_every_file_readable(tmp_path: Path) -> None:
    key_file = tmp_path / "edge.key"
    old, new = SpoolKey.generate(), SpoolKey.generate()
    write_sealed(tmp_path / "a.dcm", b"a", old)
    save(key_file, Keyring((new, old)))  # what new_key writes before it re-seals anything
    write_sealed(tmp_path / "b.dcm", b"b", new)
    keys = load(key_file)
    assert read_sealed(tmp_path / "a.dcm", keys) == b"a" and read_sealed(tmp_path / "b.dcm", keys) == b"b"
    keyring, resealed = new_key(key_file, [tmp_path])  # run again: it finishes
    assert resealed == 2 and read_sealed(tmp_path / "a.dcm", keyring) == b"a"
