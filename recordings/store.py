"""Recording files on the server's disk: ``<data_dir>/recordings/<recording id>/<name>``.

A file grows by chunks written at the offset the database says it has reached, so a chunk written but not
committed (the server died in between) is simply overwritten by the resent chunk. Every call here blocks on
the disk: callers run them in a thread.

File names are a closed set (:data:`NAME`): ``media.mp4`` and ``timeline.jsonl`` for the first segment of a
recording, ``media.<k>.mp4`` and ``timeline.<k>.jsonl`` for segment k (the edge starts a new segment when
it restarts during a consultation, when the picture size changes, or when a segment grows past its size cap).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from recordings.private_files import make_private_dirs, private_opener

NAME = re.compile(r"(media|timeline)(?:\.([1-9][0-9]{0,3}))?\.(mp4|jsonl)")
_EXTENSIONS = {"media": "mp4", "timeline": "jsonl"}
HASH_BLOCK = 1 << 20


def parse_name(name: str) -> tuple[str, int] | None:
    """``(kind, segment)`` for a valid file name (``("media", 0)`` for media.mp4), else None."""
    match = NAME.fullmatch(name)
    if match is None or _EXTENSIONS[match[1]] != match[3]:
        return None
    return match[1], int(match[2] or 0)


def file_name(kind: str, segment: int) -> str:
    middle = f".{segment}" if segment else ""
    return f"{kind}{middle}.{_EXTENSIONS[kind]}"


class StoreBehind(Exception):
    """The file on disk is shorter than the offset the database recorded (a write lost with the machine)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the stored file holds only {size} bytes")
        self.size = size


class RecordingStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, recording_id: str, name: str) -> Path:
        if parse_name(name) is None or not re.fullmatch(r"[0-9a-f]{1,32}", recording_id):
            raise ValueError(f"not a recording file: {recording_id}/{name}")
        return self.root / recording_id / name

    def size(self, recording_id: str, name: str) -> int:
        path = self.path(recording_id, name)
        return path.stat().st_size if path.exists() else 0

    def write_at(self, recording_id: str, name: str, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` and cut the file there; durable (fsync) when this returns."""
        path = self.path(recording_id, name)
        make_private_dirs(path.parent)
        with open(path, "ab+", opener=private_opener) as out:
            size = out.seek(0, os.SEEK_END)
            if size < offset:
                raise StoreBehind(size)
            out.truncate(offset)  # "a" mode appends every write at the end, which is now the offset
            out.write(data)
            out.flush()
            os.fsync(out.fileno())

    def reset(self, recording_id: str, name: str) -> None:
        path = self.path(recording_id, name)
        if path.exists():
            with open(path, "r+b") as out:
                out.truncate(0)

    def sha256(self, recording_id: str, name: str) -> tuple[int, str]:
        """(size, hex SHA-256) of the stored file."""
        digest, size = hashlib.sha256(), 0
        path = self.path(recording_id, name)
        if path.exists():
            with open(path, "rb") as source:
                while block := source.read(HASH_BLOCK):
                    digest.update(block)
                    size += len(block)
        return size, digest.hexdigest()
