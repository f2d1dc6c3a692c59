"""multipart/related (RFC 2387, RFC 2046 §5.1) as DICOMweb uses it: read incrementally, written part by part.

`MultipartParser` is pure: feed it bytes as they arrive and it appends each part's body to one spool file (an
anonymous temporary file on disk: no part sits in memory, and one file descriptor serves any number of parts);
`finish()` hands back the complete parts as (offset, size) slices of it, and `close()` gives the file back, which
leaves nothing behind on disk. It never needs more memory than one delimiter's worth beyond the caller's chunk.
The bytes before the first boundary are capped, so a wrong boundary is refused after 64 KiB, not after the whole
body; so is the number of parts (`max_parts`): the part one too many is refused as it begins (`too_many_parts`).

`media_type()` and `media_ranges()` parse Content-Type and Accept values (quoted parameters included).
"""

from __future__ import annotations

import re
import tempfile
import uuid
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO

from signaling_server import errors

MAX_PREAMBLE = 64 * 1024
MAX_PART_HEADERS = 16 * 1024
MAX_PARTS = 1000
_BCHARS = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")
_PARAM = re.compile(r';\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)\s*')
_TOKEN = re.compile(r"\s*([^;,\s]+)\s*")


def media_type(value: str) -> tuple[str, dict[str, str]]:
    """'multipart/related; type="application/dicom"; boundary=x' → ('multipart/related', {...}), names lower-case."""
    found = _TOKEN.match(value)
    if found is None:
        return "", {}
    params: dict[str, str] = {}
    pos = found.end()
    while (match := _PARAM.match(value, pos)) is not None:
        raw = match.group(2)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
        pos = match.end()
    return found.group(1).lower(), params


def media_ranges(value: str) -> list[tuple[str, dict[str, str]]]:
    """An Accept header's media ranges in the order given (commas inside quoted parameters are kept)."""
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return [media_type(item) for item in items if item.strip()]


def boundary_of(content_type: str) -> str:
    """The boundary of a multipart/related Content-Type; BadMultipart when missing or malformed."""
    kind, params = media_type(content_type)
    if kind != "multipart/related":
        raise errors.UnsupportedMediaType(f"expected multipart/related, got {kind or 'no Content-Type'}")
    boundary = params.get("boundary")
    if not boundary:
        raise errors.BadMultipart("the multipart/related Content-Type has no boundary parameter")
    if not _BCHARS.match(boundary):
        raise errors.BadMultipart("the boundary must be 1-70 characters of the RFC 2046 set")
    return boundary


@dataclass
class Part:
    """One part: its headers and where its body lies in the parser's spool file."""

    headers: dict[str, str]  # names lower-case
    spool: IO[bytes]
    offset: int
    size: int = 0

    @property
    def content_type(self) -> str:
        return media_type(self.headers.get("content-type", "text/plain"))[0]

    def read(self) -> bytes:
        """The body (blocking: call it in a thread for a large part)."""
        self.spool.seek(self.offset)
        return self.spool.read(self.size)


class _State(Enum):
    PREAMBLE = "preamble"
    AFTER_DELIMITER = "after-delimiter"
    HEADERS = "headers"
    BODY = "body"
    DONE = "done"


def spool(folder: Path | None = None) -> IO[bytes]:
    """An anonymous file on disk (O_TMPFILE where the system has it): gone when closed, or when the process dies."""
    return tempfile.TemporaryFile(dir=str(folder) if folder else None)


@dataclass
class MultipartParser:
    boundary: str
    folder: Path | None = None  # where the spool file lives (the system's temporary folder when None)
    max_parts: int = MAX_PARTS
    spool: IO[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self._delimiter = b"\r\n--" + self.boundary.encode("ascii")
        self._buffer = bytearray(b"\r\n")  # so that a boundary on the very first line is found like any other
        self._state = _State.PREAMBLE
        self._seen = 0
        self._current: Part | None = None
        self.parts: list[Part] = []
        self.spool = spool(self.folder)

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the body; BadMultipart or TooManyParts (the spool closed) when they cannot be
        right."""
        self._buffer += data
        self._seen += len(data)
        try:
            while self._step():
                pass
        except BaseException:
            self.close()
            raise

    def finish(self) -> list[Part]:
        if self._state is not _State.DONE:
            self.close()
            if self._state is _State.PREAMBLE:
                raise errors.BadMultipart("the body does not contain the boundary of its Content-Type")
            raise errors.BadMultipart("the body ended before the closing boundary")
        return self.parts

    def close(self) -> None:
        """Give the spool file back (the caller does this itself once it has read the parts it got)."""
        self.spool.close()

    def _step(self) -> bool:
        """Advance as far as the buffer allows; False when more bytes are needed."""
        if self._state is _State.PREAMBLE:
            return self._preamble()
        if self._state is _State.AFTER_DELIMITER:
            return self._after_delimiter()
        if self._state is _State.HEADERS:
            return self._headers()
        if self._state is _State.BODY:
            return self._body()
        self._buffer.clear()  # the epilogue is ignored
        return False

    def _preamble(self) -> bool:
        at = self._buffer.find(self._delimiter)
        if at < 0:
            if self._seen > MAX_PREAMBLE:
                raise errors.BadMultipart("no boundary in the first 64 KiB: wrong or missing boundary")
            del self._buffer[: max(0, len(self._buffer) - len(self._delimiter))]
            return False
        del self._buffer[: at + len(self._delimiter)]
        self._state = _State.AFTER_DELIMITER
        return True

    def _after_delimiter(self) -> bool:
        if len(self._buffer) < 2:
            return False
        if self._buffer[:2] == b"--":
            self._state = _State.DONE
            return True
        line_end = self._buffer.find(b"\r\n")
        if line_end < 0:
            if len(self._buffer) > 256:
                raise errors.BadMultipart("garbage after a boundary line")
            return False
        if self._buffer[:line_end].strip(b" \t"):
            raise errors.BadMultipart("garbage after a boundary line")
        del self._buffer[: line_end + 2]
        self._state = _State.HEADERS
        return True

    def _headers(self) -> bool:
        if self._buffer[:2] == b"\r\n":
            block, rest = b"", 2
        else:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_PART_HEADERS:
                    raise errors.BadMultipart("a part's headers are longer than 16 KiB")
                return False
            block, rest = bytes(self._buffer[:end]), end + 4
        headers = {}
        for line in block.decode("latin-1").split("\r\n"):
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise errors.BadMultipart(f"a malformed part header line: {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        if len(self.parts) >= self.max_parts:
            raise errors.TooManyParts(f"a STOW-RS request holds at most {self.max_parts} parts")
        del self._buffer[:rest]
        self._current = Part(headers, self.spool, self.spool.tell())
        self._state = _State.BODY
        return True

    def _body(self) -> bool:
        assert self._current is not None
        at = self._buffer.find(self._delimiter)
        if at < 0:
            keep = len(self._delimiter) - 1  # a delimiter may straddle this chunk and the next
            if len(self._buffer) > keep:
                self._write(self._buffer[: len(self._buffer) - keep])
                del self._buffer[: len(self._buffer) - keep]
            return False
        self._write(self._buffer[:at])
        del self._buffer[: at + len(self._delimiter)]
        self.parts.append(self._current)
        self._current = None
        self._state = _State.AFTER_DELIMITER
        return True

    def _write(self, data: bytearray) -> None:
        assert self._current is not None
        self.spool.write(data)
        self._current.size += len(data)


class MultipartWriter:
    """Frames parts of one multipart/related answer: head(), the body bytes, tail() per part, then closing()."""

    def __init__(self, part_type: str) -> None:
        self.part_type = part_type
        self.boundary = uuid.uuid4().hex

    @property
    def content_type(self) -> str:
        return f'multipart/related; type="{self.part_type}"; boundary={self.boundary}'

    def head(self, content_type: str | None = None, **headers: str) -> bytes:
        lines = [f"--{self.boundary}", f"Content-Type: {content_type or self.part_type}"]
        lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    @staticmethod
    def tail() -> bytes:
        return b"\r\n"

    def closing(self) -> bytes:
        return f"--{self.boundary}--\r\n".encode("ascii")
