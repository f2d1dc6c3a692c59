"""edge_capture.sealing.sealed: the sealed file format. What was written reads back at any offset; every change,
move, splice or cut fails authentication with ``spool_tampered``; a growing file shows its whole records."""

from __future__ import annotations

import io
import random
import stat
from pathlib import Path

import pytest

from edge_capture.errors import SealError
from edge_capture.sealing.keys import Keyring
from edge_capture.sealing.sealed import (
    HEADER_BYTES,
    MAGIC,
    RECORD_OVERHEAD,
    SealedReader,
    SealedWriter,
    is_sealed,
    read_sealed,
    write_sealed,
)
from tests.edge_capture.sealing.damage import cut, flip_byte

RECORD = 1000  # small records: a few kilobytes make many of them


def sealed(path: Path, data: bytes, keys: Keyring, *, finished: bool = True) -> None:
    writer = SealedWriter(path, keys.current, record_bytes=RECORD)
    writer.write(data)
    if finished:
        writer.close()
    else:
        writer.abandon()


def tampered(path: Path, keys: Keyring) -> SealError:
    with pytest.raises(SealError) as caught:
        read_sealed(path, keys)
    assert caught.value.code == "spool_tampered"
    return caught.value


def test_what_is_written_reads_back_whole_and_at_any_offset(tmp_path: Path, spool_keys: Keyring) -> None:
    data = random.Random(7).randbytes(25_000)
    path = tmp_path / "file"
    writer = SealedWriter(path, spool_keys.current, record_bytes=RECORD)
    for start in range(0, len(data), 333):  # uneven writes, flushed now and then: records of every length
        writer.write(data[start : start + 333])
        assert writer.tell() == min(len(data), start + 333)
        if start % 999 == 0:
            writer.flush()
    writer.close()
    assert read_sealed(path, spool_keys) == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes().startswith(MAGIC)
    with SealedReader(path, spool_keys) as view:
        assert view.finished and view.size == len(data) and view.torn == 0
        for offset, length in ((0, 1), (999, 2), (1000, 1000), (12_345, 7_000), (24_990, 100), (25_000, 5)):
            assert view.read_at(offset, length) == data[offset : offset + length]
        view.seek(20_000)
        assert io.BufferedReader(view).read() == data[20_000:]  # as PyAV and the box scanner read it


def test_the_ciphertext_shows_nothing_of_the_plaintext(tmp_path: Path, spool_keys: Keyring) -> None:
    data = b"PatientName=ZHANG^SAN " * 500
    write_sealed(tmp_path / "a", data, spool_keys.current)
    write_sealed(tmp_path / "b", data, spool_keys.current)
    a, b = (tmp_path / "a").read_bytes(), (tmp_path / "b").read_bytes()
    assert b"ZHANG" not in a and a[HEADER_BYTES:] != b[HEADER_BYTES:]  # fresh nonces: the same data seals apart


@pytest.mark.parametrize(
    "where",
    ["file id", "a record's length", "a nonce", "ciphertext", "a tag", "the end record"],
)
def test_a_changed_byte_anywhere_fails_authentication(tmp_path: Path, spool_keys: Keyring, where: str) -> None:
    path = tmp_path / "file"
    sealed(path, bytes(5000), spool_keys)
    second = HEADER_BYTES + RECORD_OVERHEAD + RECORD  # where the second record starts
    at = {
        "file id": 20,
        "a record's length": second + 3,
        "a nonce": second + 5,
        "ciphertext": second + 4 + 12 + 500,
        "a tag": second + RECORD_OVERHEAD + RECORD - 1,
        "the end record": path.stat().st_size - 1,
    }[where]
    flip_byte(path, at)
    error = tampered(path, spool_keys)
    assert str(path) in error.message


def test_records_moved_spliced_cut_or_followed_fail(tmp_path: Path, spool_keys: Keyring) -> None:
    whole = RECORD_OVERHEAD + RECORD
    path, other = tmp_path / "file", tmp_path / "other"
    sealed(path, bytes(range(256)) * 20, spool_keys)
    sealed(other, bytes(range(256)) * 20, spool_keys)  # the same plaintext, another file
    original = path.read_bytes()
    first = original[HEADER_BYTES : HEADER_BYTES + whole]
    second = original[HEADER_BYTES + whole : HEADER_BYTES + 2 * whole]
    path.write_bytes(original[:HEADER_BYTES] + second + first + original[HEADER_BYTES + 2 * whole :])  # swapped
    tampered(path, spool_keys)
    spliced = other.read_bytes()[HEADER_BYTES : HEADER_BYTES + whole]  # the same place in another file
    path.write_bytes(original[:HEADER_BYTES] + spliced + original[HEADER_BYTES + whole :])
    tampered(path, spool_keys)
    path.write_bytes(original[:HEADER_BYTES] + original[HEADER_BYTES + whole :])  # a record dropped
    tampered(path, spool_keys)
    path.write_bytes(original + b"more")
    assert "follow its end" in tampered(path, spool_keys).message
    path.write_bytes(original)
    cut(path, RECORD_OVERHEAD)  # its end record gone: cut at a record boundary
    assert "has no end" in tampered(path, spool_keys).message


def test_a_file_of_another_key_or_not_sealed_at_all_is_refused(tmp_path: Path, spool_keys: Keyring) -> None:
    sealed(tmp_path / "theirs", b"data", Keyring.generate())
    with pytest.raises(SealError) as caught:
        SealedReader(tmp_path / "theirs", spool_keys)
    assert caught.value.code == "unknown_spool_key"
    (tmp_path / "clear.dcm").write_bytes(b"\0" * 128 + b"DICM")
    assert not is_sealed(tmp_path / "clear.dcm")
    with pytest.raises(SealError) as caught:
        SealedReader(tmp_path / "clear.dcm", spool_keys)
    assert caught.value.code == "not_sealed"


def test_a_growing_file_shows_its_whole_records_as_they_come(tmp_path: Path, spool_keys: Keyring) -> None:
    path = tmp_path / "growing"
    writer = SealedWriter(path, spool_keys.current, record_bytes=RECORD)
    writer.write(b"a" * 2500)  # two whole records; 500 bytes wait for a flush
    with SealedReader(path, spool_keys) as view:
        assert (view.size, view.finished) == (2000, False)
        writer.flush()
        assert view.refresh() == 2500
        assert view.read_at(1990, 100) == b"a" * 100 and view.read_at(2490, 100) == b"a" * 10
        with open(path, "ab") as torn:  # half a record, as the writer is cut off mid-write
            torn.write(b"\x00\x00\x03\xe8" + b"x" * 100)
        assert view.refresh() == 2500 and view.torn == 104
    with pytest.raises(io.UnsupportedOperation, match="only grows"):
        writer.seek(0)
    assert writer.seek(0, io.SEEK_CUR) == 2500  # naming the current position is fine (PyAV does)
    writer.abandon()
