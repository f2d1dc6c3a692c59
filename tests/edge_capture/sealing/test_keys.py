"""edge_capture.sealing.keys: where the spool key comes from, and what is refused."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from edge_capture.errors import SealError
from edge_capture.sealing.keys import DEFAULT_NAME, Keyring, default_key_file, encode, load


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
