"""The edge's recordings folder: one sub-folder per consultation, kept until the server has every file whole.

::

    <recordings>/<consultation id>/
        media.mp4        timeline.jsonl          segment 0
        media.1.mp4      timeline.1.jsonl        segment 1 (an agent restart, a new picture size, a size cap)
        state.json       what the uploader learnt: the server's recording id, the files it confirmed whole

Every data file only ever grows, so the part of it the uploader may send is a prefix that never changes:
whole fragments of an MP4 (:func:`~edge_capture.recording.mp4.complete_prefix`), whole lines of a timeline.
A recorder that was killed leaves a torn tail; :func:`recover` cuts every file back to that prefix when the
agent starts, before any recorder runs, so the copy the server assembles is exactly the edge's file and plays.

A folder's upload is a small state machine (:data:`MACHINE`), computed from ``state.json`` by
:attr:`FolderState.upload_state` and moved only by :meth:`FolderState.move`::

    new ──the server made its recording──▶ uploading ──the server says complete──▶ complete
     │  ◀──the server lost the recording (404): start over──┘
     └──the server refuses the recording (403/404/409)──▶ refused (kept on disk, never retried)

``complete`` and ``refused`` are final; a complete folder is deleted unless --keep-recordings keeps it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from edge_capture.recording.mp4 import complete_prefix
from signaling_server.states import Machine, move

logger = logging.getLogger(__name__)

STATE = "state.json"
DATA_FILE = re.compile(r"(media|timeline)(?:\.([1-9][0-9]{0,3}))?\.(mp4|jsonl)")
SCAN_BLOCK = 1 << 16
HASH_BLOCK = 1 << 20


def segment_files(number: int) -> tuple[str, str]:
    """(media, timeline) file names of segment ``number``."""
    middle = f".{number}" if number else ""
    return f"media{middle}.mp4", f"timeline{middle}.jsonl"


def data_files(folder: Path) -> list[str]:
    """The recording's files in the folder, segment by segment (media before timeline)."""
    found = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = DATA_FILE.fullmatch(path.name)
        if match and {"media": "mp4", "timeline": "jsonl"}[match[1]] == match[3]:
            found.append((int(match[2] or 0), match[1], path.name))
    return [name for _, _, name in sorted(found)]


def next_segment(folder: Path) -> int:
    numbers = [int(DATA_FILE.fullmatch(n)[2] or 0) for n in data_files(folder)]  # type: ignore[index]
    return max(numbers) + 1 if numbers else 0


def readable_end(path: Path, known: int = 0) -> int:
    """How far the file may be sent: the end of its whole fragments (MP4) or lines (timeline).
    ``known`` is an earlier answer for the same file (a boundary): the scan resumes there."""
    if path.suffix == ".mp4":
        return complete_prefix(path, known)
    end = known
    with open(path, "rb") as source:
        source.seek(known)
        position = known
        while block := source.read(SCAN_BLOCK):
            newline = block.rfind(b"\n")
            if newline >= 0:
                end = position + newline + 1
            position += len(block)
    return end


def recover(root: Path) -> list[str]:
    """Before any recorder runs: cut torn tails, drop empty files. Returns the consultations with files left."""
    left = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else ():
        for stale in folder.glob(".*.tmp"):
            stale.unlink()
        for name in data_files(folder):
            path = folder / name
            size, end = path.stat().st_size, readable_end(path)
            if end == 0:
                path.unlink()
                logger.info("recording %s: %s held nothing usable; removed", folder.name, name)
            elif end < size:
                with open(path, "r+b") as out:
                    out.truncate(end)
                    os.fsync(out.fileno())
                logger.info("recording %s: %s cut from %s to %s bytes (torn by a stop)", folder.name, name, size, end)
        if data_files(folder):
            left.append(folder.name)
    return left


class UploadState(StrEnum):
    NEW = "new"
    UPLOADING = "uploading"
    COMPLETE = "complete"
    REFUSED = "refused"


MACHINE = Machine(
    "recording upload",
    {
        UploadState.NEW: {UploadState.UPLOADING, UploadState.REFUSED},
        UploadState.UPLOADING: {UploadState.COMPLETE, UploadState.NEW},
    },
    final={UploadState.COMPLETE, UploadState.REFUSED},
    log=logger,
)


@dataclass
class FolderState:
    """What ``state.json`` keeps: the server's id for the recording, and the files it confirmed whole."""

    consultation_id: str
    recording_id: str | None = None
    complete: dict[str, str] = field(default_factory=dict)  # name -> SHA-256 the server confirmed
    refused: str | None = None  # why the server will not take this recording (kept, never retried)
    done: bool = False  # complete on the server, and kept here on purpose (--keep-recordings)

    @classmethod
    def load(cls, folder: Path) -> FolderState:
        try:
            data = json.loads((folder / STATE).read_text())
            return cls(
                folder.name,
                data.get("recording_id"),
                dict(data.get("complete") or {}),
                data.get("refused"),
                bool(data.get("done")),
            )
        except FileNotFoundError:
            return cls(folder.name)
        except (ValueError, TypeError, AttributeError):
            logger.warning("recording %s: unreadable %s; starting it afresh", folder.name, STATE)
            return cls(folder.name)

    @property
    def upload_state(self) -> UploadState:
        """The folder's upload state, from what ``state.json`` keeps (the one place that reads it as a state)."""
        if self.refused:
            return UploadState.REFUSED
        if self.done:
            return UploadState.COMPLETE
        return UploadState.UPLOADING if self.recording_id else UploadState.NEW

    def move(self, new: UploadState, *, recording_id: str | None = None, reason: str | None = None) -> None:
        """The one move of the folder's upload (IllegalMove if refused); the caller saves."""
        move(MACHINE, self.upload_state, new, entity_id=self.consultation_id)
        if new is UploadState.NEW:
            self.recording_id, self.complete = None, {}
        elif new is UploadState.UPLOADING:
            self.recording_id = recording_id
        elif new is UploadState.REFUSED:
            self.refused = reason or "refused"
        else:
            self.done = True

    def save(self, folder: Path) -> None:
        """Atomically (temporary file, fsync, rename)."""
        data = {
            "recording_id": self.recording_id,
            "complete": self.complete,
            "refused": self.refused,
            "done": self.done,
        }
        temporary = folder / f".{STATE}.tmp"
        with open(temporary, "w") as out:
            json.dump(data, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, folder / STATE)


def read_chunk(path: Path, offset: int, length: int) -> tuple[bytes, str]:
    """``length`` bytes at ``offset`` and their SHA-256 (hex)."""
    with open(path, "rb") as source:
        source.seek(offset)
        data = source.read(length)
    return data, hashlib.sha256(data).hexdigest()


def hash_file(path: Path) -> tuple[int, str]:
    """(size, SHA-256 hex) of the whole file."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as source:
        while block := source.read(HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


class Writing:
    """Which files recorders are still writing, per consultation. Thread-safe: a recorder marks a file before it
    creates it and unmarks it once it is closed, so the uploader never mistakes a growing file for a whole one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, set[str]] = {}

    def begin(self, consultation_id: str, *names: str) -> None:
        with self._lock:
            self._files.setdefault(consultation_id, set()).update(names)

    def end(self, consultation_id: str, *names: str) -> None:
        with self._lock:
            files = self._files.get(consultation_id, set())
            files.difference_update(names)
            if not names:
                files.clear()

    def names(self, consultation_id: str) -> set[str]:
        with self._lock:
            return set(self._files.get(consultation_id, ()))
