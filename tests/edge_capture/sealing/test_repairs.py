"""edge_capture.sealing.repairs: a torn file finished with its prefix kept, a file left in clear sealed in place, and
a new key (``--new-spool-key``) that re-seals every spooled file under it, safely even when stopped half-way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_capture.errors import SealError
from edge_capture.sealing.keys import Keyring, SpoolKey, load, save
from edge_capture.sealing.repairs import finish_at, new_key, reseal, seal_in_place
from edge_capture.sealing.sealed import SealedReader, SealedWriter, is_sealed, read_sealed, write_sealed
from tests.edge_capture.sealing.damage import cut
from tests.edge_capture.sealing.test_sealed import sealed


def test_finishing_a_torn_file_keeps_the_prefix_and_seals_the_end(tmp_path: Path, spool_keys: Keyring) -> None:
    data = bytes(range(256)) * 20  # 5120 bytes: records end at 1000, 2000, ... 5000, 5120
    for end in (0, 1000, 1234, 5000):
        path = tmp_path / f"torn-{end}"
        sealed(path, data, spool_keys, finished=False)
        cut(path, 7)  # the last record torn: 5000 bytes whole
        finish_at(path, spool_keys, end)
        assert read_sealed(path, spool_keys) == data[:end]
    path = tmp_path / "unfinished"
    sealed(path, data, spool_keys, finished=False)  # every record whole, no end: a recorder killed between writes
    finish_at(path, spool_keys, len(data))
    assert read_sealed(path, spool_keys) == data
    path = tmp_path / "whole"
    sealed(path, data, spool_keys)
    before = path.read_bytes()
    finish_at(path, spool_keys, len(data))  # already whole: nothing changes
    assert path.read_bytes() == before


def test_a_file_in_clear_is_sealed_in_place_and_a_sealed_one_resealed(tmp_path: Path, spool_keys: Keyring) -> None:
    data = os.urandom(7000)
    path = tmp_path / "left-in-clear.dcm"
    path.write_bytes(data)
    seal_in_place(path, spool_keys.current, 6000)
    assert is_sealed(path) and read_sealed(path, spool_keys) == data[:6000]
    new = Keyring.generate()
    both = Keyring((new.current, spool_keys.current))
    reseal(path, both, new.current)
    assert read_sealed(path, new) == data[:6000]
    growing = tmp_path / "growing.mp4"
    sealed(growing, data, spool_keys, finished=False)
    reseal(growing, both, new.current)
    with SealedReader(growing, new) as view:
        assert not view.finished and view.read_at(0, view.size) == data[: view.size] and view.size == 7000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


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
