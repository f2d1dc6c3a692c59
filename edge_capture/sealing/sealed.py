"""Sealed files: what the edge keeps on the clinic PC's disk is AES-256-GCM ciphertext, in records that can be
read at any offset and that let a file grow.

Layout::

    header   b"TLSEAL\\0\\1" (8) | key id (8) | file id (16, random)                       32 bytes
    record   plaintext length n (4, big-endian, n ≥ 1) | nonce (12) | ciphertext (n) | tag (16)
    ...
    end      0 (4) | nonce (12) | tag (16)       written when the file is finished; nothing may follow it

Every record is sealed with a fresh random nonce, and its associated data is the header with the record's
plaintext offset and length: a record changed, moved within its file, taken from another file or dropped from the
middle fails its tag, and so does a finished file cut short (the end record seals the total length). A file that
is still growing (a recording being written) has no end yet; what it holds so far is its whole records.

:class:`SealedWriter` appends: a record per :data:`RECORD_BYTES` written and one (shorter) on every ``flush``, so
what was flushed is on disk, sealed and readable at once. :class:`SealedReader` is the plaintext view: it finds the
records (``refresh`` picks up those written since), opens only those a read needs, and raises
:class:`~edge_capture.errors.SealError` ``spool_tampered`` rather than return a byte that failed authentication.
The repairs the spools need are in :mod:`edge_capture.sealing.repairs`.
"""

from __future__ import annotations

import io
import logging
import os
import struct
from array import array
from bisect import bisect_right
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag

from edge_capture.errors import SealError
from edge_capture.sealing.keys import KEY_ID_BYTES, Keyring, SpoolKey
from recordings.private_files import FILE_MODE

logger = logging.getLogger(__name__)

MAGIC = b"TLSEAL\x00\x01"
FILE_ID_BYTES = 16
HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES + FILE_ID_BYTES
NONCE_BYTES = 12
TAG_BYTES = 16
RECORD_BYTES = 1 << 16  # what the writer seals at most per record: a read at an offset opens about one record
MAX_RECORD_BYTES = 1 << 24  # what a reader accepts: a length beyond is damage, not a record
_LENGTH = struct.Struct(">I")
_POSITION = struct.Struct(">QI")
RECORD_OVERHEAD = _LENGTH.size + NONCE_BYTES + TAG_BYTES


def is_sealed(path: Path) -> bool:
    """Whether the file starts as a sealed file does (any key)."""
    with open(path, "rb") as source:
        return source.read(len(MAGIC)) == MAGIC


def _associated(header: bytes, offset: int, length: int) -> bytes:
    return header + _POSITION.pack(offset, length)


def seal_record(key: SpoolKey, header: bytes, offset: int, plaintext: bytes) -> bytes:
    """One sealed record (the end record when ``plaintext`` is empty)."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = key.aead.encrypt(nonce, plaintext, _associated(header, offset, len(plaintext)))
    return _LENGTH.pack(len(plaintext)) + nonce + sealed


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SealedWriter(io.BufferedIOBase):
    """A new sealed file (made 0600) that only ever grows. ``tell`` counts plaintext bytes; ``seek`` may only name
    the current position (PyAV asks; a muxer that wanted to rewrite would fail here rather than corrupt the file).
    ``close`` seals the end and fsyncs; :meth:`abandon` closes without it (what a killed process leaves)."""

    def __init__(self, path: Path, key: SpoolKey, record_bytes: int = RECORD_BYTES) -> None:
        super().__init__()
        if not 1 <= record_bytes <= MAX_RECORD_BYTES:
            raise ValueError(f"record_bytes must be 1..{MAX_RECORD_BYTES}")
        self.path, self.key, self.record_bytes = path, key, record_bytes
        self.header = MAGIC + key.id + os.urandom(FILE_ID_BYTES)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        self._pending = bytearray()
        self._sealed = 0  # plaintext bytes in records on disk
        try:
            _write_all(self._fd, self.header)
        except BaseException:
            os.close(self._fd)
            raise

    @property
    def name(self) -> str:
        return str(self.path)

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._sealed + len(self._pending)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self.tell() + offset
        if target != self.tell():
            raise io.UnsupportedOperation(f"{self.path}: a sealed file only grows (asked to seek to {target})")
        return target

    def fileno(self) -> int:
        return self._fd

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed sealed file")
        self._pending += data
        while len(self._pending) >= self.record_bytes:
            self._seal(self.record_bytes)
        return len(memoryview(data).cast("B"))

    def _seal(self, length: int) -> None:
        chunk = bytes(self._pending[:length])
        del self._pending[:length]
        _write_all(self._fd, seal_record(self.key, self.header, self._sealed, chunk))
        self._sealed += length

    def flush(self) -> None:
        """Seal what was written since the last record (the OS has it; ``os.fsync(fileno())`` makes it durable)."""
        if not self.closed and self._pending:
            self._seal(len(self._pending))

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.flush()
            _write_all(self._fd, seal_record(self.key, self.header, self._sealed, b""))
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
            super().close()

    def abandon(self) -> None:
        """Close without sealing the end: the file stays a growing one (its whole records are readable)."""
        if not self.closed:
            self.flush()
            os.close(self._fd)
            super().close()


class SealedReader(io.RawIOBase):
    """The plaintext of a sealed file, readable and seekable; ``size`` is what its whole records hold and grows
    with :meth:`refresh`. SealError: ``not_sealed``, ``unknown_spool_key`` (on opening), ``spool_tampered``."""

    def __init__(self, path: Path, keys: Keyring) -> None:
        super().__init__()
        self.path = path
        self._file = open(path, "rb", buffering=0)
        try:
            header = self._read(0, HEADER_BYTES)
            if len(header) < HEADER_BYTES or not header.startswith(MAGIC):
                raise SealError("not_sealed", f"{path} is not a sealed spool file")
            key_id = header[len(MAGIC) : len(MAGIC) + KEY_ID_BYTES]
            key = keys.find(key_id)
            if key is None:
                raise SealError(
                    "unknown_spool_key", f"{path} was sealed under a key this edge does not hold ({key_id.hex()})"
                )
        except BaseException:
            self._file.close()
            raise
        self.header, self.key = header, key
        self._starts = array("q")  # plaintext offset of each record
        self._at = array("q")  # file offset of each record
        self._scan_at = HEADER_BYTES
        self.size = 0
        self.finished = False  # its end record is there (and authentic): the file is whole
        self.torn = 0  # bytes after the last whole record (a record being written, or a tail a kill tore)
        self._position = 0
        self._cached: tuple[int, bytes] = (-1, b"")
        self.refresh()

    def _read(self, at: int, length: int) -> bytes:
        self._file.seek(at)
        parts, left = [], length
        while left > 0 and (part := self._file.read(left)):
            parts.append(part)
            left -= len(part)
        return b"".join(parts)

    def _tampered(self, why: str) -> SealError:
        return SealError("spool_tampered", f"{self.path}: {why}: the file was changed, cut or is not this edge's")

    def _open_record(self, at: int, offset: int, length: int, body: bytes) -> bytes:
        view = memoryview(body)  # no copies of the record
        nonce, sealed = view[:NONCE_BYTES], view[NONCE_BYTES:]
        try:
            return self.key.aead.decrypt(nonce, sealed, _associated(self.header, offset, length))
        except InvalidTag:
            raise self._tampered(f"the record at byte {at} failed authentication") from None

    def refresh(self) -> int:
        """Find the records written since the last call; returns ``size``."""
        if self.finished:
            return self.size
        end_of_file = os.fstat(self._file.fileno()).st_size
        at = self._scan_at
        while at + RECORD_OVERHEAD <= end_of_file:
            (length,) = _LENGTH.unpack(self._read(at, _LENGTH.size))
            if length == 0:
                self._open_record(at, self.size, 0, self._read(at + _LENGTH.size, NONCE_BYTES + TAG_BYTES))
                at += RECORD_OVERHEAD
                if at != end_of_file:
                    raise self._tampered(f"{end_of_file - at} bytes follow its end")
                self.finished = True
                break
            if length > MAX_RECORD_BYTES:
                raise self._tampered(f"the record at byte {at} claims {length} bytes")
            if at + RECORD_OVERHEAD + length > end_of_file:
                break
            self._starts.append(self.size)
            self._at.append(at)
            self.size += length
            at += RECORD_OVERHEAD + length
        self._scan_at = at
        self.torn = end_of_file - at
        return self.size

    def _record(self, index: int) -> bytes:
        if self._cached[0] != index:
            start = self._starts[index]
            length = (self._starts[index + 1] if index + 1 < len(self._starts) else self.size) - start
            at = self._at[index]
            body = self._read(at + _LENGTH.size, NONCE_BYTES + length + TAG_BYTES)
            self._cached = (index, self._open_record(at, start, length, body))
        return self._cached[1]

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` plaintext bytes from ``offset`` (fewer at the end of the whole records)."""
        end = min(self.size, offset + length)
        pieces = []
        while offset < end:
            index = bisect_right(self._starts, offset) - 1
            plain = self._record(index)
            inner = offset - self._starts[index]
            piece = plain[inner : inner + end - offset]  # the record itself when it is read whole
            pieces.append(piece)
            offset += len(piece)
        return b"".join(pieces)

    @property
    def records_end(self) -> int:
        """The file offset where its whole records end (what a torn tail is cut back to)."""
        return self._scan_at

    def record_at(self, offset: int) -> tuple[int, int]:
        """(plaintext start, file offset) of the record holding plaintext byte ``offset`` (< size)."""
        index = bisect_right(self._starts, offset) - 1
        return self._starts[index], self._at[index]

    # ---- io.RawIOBase: PyAV and the MP4 box scanner read through this --------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        data = self.read_at(self._position, len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


def write_sealed(path: Path, data: bytes, key: SpoolKey) -> None:
    """A whole file at once, finished and fsynced (the caller renames it into place)."""
    writer = SealedWriter(path, key)
    try:
        writer.write(data)
    except BaseException:
        writer.abandon()
        raise
    writer.close()


def read_sealed(path: Path, keys: Keyring) -> bytes:
    """The whole plaintext of a finished file; SealError when it is not whole and authentic."""
    with SealedReader(path, keys) as view:
        if not view.finished:
            raise SealError("spool_tampered", f"{path} has no end: it was cut short or is still being written")
        return view.read_at(0, view.size)
