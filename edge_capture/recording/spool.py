"""The edge's recordings folder: one sub-folder per consultation, kept until the server has every file whole.

::

    <recordings>/<consultation id>/
        media.mp4        timeline.jsonl          segment 0
        media.1.mp4      timeline.1.jsonl        segment 1 (an agent restart, a new picture size, a size cap)
        state.json       what the uploader learnt: the server's recording id, the files it confirmed whole

The data files are sealed (edge_capture/sealing/: AES-256-GCM records, the spool key never leaves the edge); every
function here reads their plaintext through a :class:`~edge_capture.sealing.sealed.SealedReader`, and what goes to
the server is that plaintext (over TLS), so the server's sizes and SHA-256 are the plaintext's.

Every data file only ever grows, so the part of it the uploader may send is a prefix that never changes:
whole fragments of an MP4 (:func:`~edge_capture.recording.mp4.complete_prefix`), whole lines of a timeline.
A recorder that was killed leaves a torn tail; :func:`recover` cuts every file back to that prefix and seals its
end when the agent starts, before any recorder runs, so the copy the server assembles is exactly the edge's file and
plays (a file an older version left in clear is sealed there too). A file that fails authentication is left as it
is and never sent: its folder's upload becomes ``damaged``.

A folder's upload is a small state machine (:data:`MACHINE`), computed from ``state.json`` by
:attr:`FolderState.upload_state` and moved only by :meth:`FolderState.move`::

    new ──the server made its recording──▶ uploading ──the server says complete──▶ complete
     │  ◀──the server lost the recording (404): start over──┘ │
     ├──the server refuses the recording (403/404/409)──▶ refused (kept on disk, never retried)
     └──a file fails authentication or its key is unknown──┴──▶ damaged (kept on disk, never sent)

``complete``, ``refused`` and ``damaged`` are final; a complete folder is deleted unless --keep-recordings keeps it.
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

from edge_capture.errors import SealError
from edge_capture.recording.mp4 import Readable, complete_prefix
from edge_capture.sealing.keys import Keyring
from edge_capture.sealing.repairs import finish_at, seal_in_place
from edge_capture.sealing.sealed import SealedReader, is_sealed
from recordings.private_files import DIR_MODE, private_opener, tighten
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


def readable_end(source: Readable, suffix: str, known: int = 0) -> int:
    """How far the file (its plaintext) may be sent: the end of its whole fragments (``.mp4``) or lines (timeline).
    ``known`` is an earlier answer for the same file (a boundary): the scan resumes there."""
    if suffix == ".mp4":
        return complete_prefix(source, known)
    end = known
    source.seek(known)
    position = known
    while block := source.read(SCAN_BLOCK):
        newline = block.rfind(b"\n")
        if newline >= 0:
            end = position + newline + 1
        position += len(block)
    return end


def recover(root: Path, keys: Keyring) -> list[str]:
    """Before any recorder runs: cut torn tails and seal the files' ends, drop empty files, seal files left in clear,
    make every folder 0700. Returns the consultations with files left. A file that fails authentication is logged
    and left alone."""
    left = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else ():
        tighten(folder, DIR_MODE)  # an older version made it open to other accounts
        for stale in folder.glob(".*.tmp"):
            stale.unlink()
        for name in data_files(folder):
            try:
                _recover_file(folder / name, keys)
            except SealError as exc:
                logger.error("recording %s: %s is kept but will not be sent: %s", folder.name, name, exc)
        if data_files(folder):
            left.append(folder.name)
    return left


def _recover_file(path: Path, keys: Keyring) -> None:
    where = f"recording {path.parent.name}: {path.name}"
    if not is_sealed(path):  # written in clear by a version that did not seal
        with open(path, "rb") as source:
            end = readable_end(source, path.suffix)
        if end == 0:
            path.unlink()
            logger.info("%s held nothing usable; removed", where)
        else:
            seal_in_place(path, keys.current, end)
            logger.info("%s was in clear (an older version): sealed, %s bytes", where, end)
        return
    with SealedReader(path, keys) as view:
        if view.finished:
            return
        size, end = view.size, readable_end(view, path.suffix)
    if end == 0:
        path.unlink()
        logger.info("%s held nothing usable; removed", where)
    else:
        finish_at(path, keys, end)
        logger.info("%s cut from %s to %s bytes and finished (torn by a stop)", where, size, end)


class UploadState(StrEnum):
    NEW = "new"
    UPLOADING = "uploading"
    COMPLETE = "complete"
    REFUSED = "refused"
    DAMAGED = "damaged"


MACHINE = Machine(
    "recording upload",
    {
        UploadState.NEW: {UploadState.UPLOADING, UploadState.REFUSED, UploadState.DAMAGED},
        UploadState.UPLOADING: {UploadState.COMPLETE, UploadState.NEW, UploadState.DAMAGED},
    },
    final={UploadState.COMPLETE, UploadState.REFUSED, UploadState.DAMAGED},
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
    damaged: str | None = None  # a file failed authentication or its key is unknown (kept, never sent)

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
                data.get("damaged"),
            )
        except FileNotFoundError:
            return cls(folder.name)
        except (ValueError, TypeError, AttributeError):
            logger.warning("recording %s: unreadable %s; starting it afresh", folder.name, STATE)
            return cls(folder.name)

    @property
    def upload_state(self) -> UploadState:
        """The folder's upload state, from what ``state.json`` keeps (the one place that reads it as a state)."""
        if self.damaged:
            return UploadState.DAMAGED
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
        elif new is UploadState.DAMAGED:
            self.damaged = reason or "damaged"
        else:
            self.done = True

    def save(self, folder: Path) -> None:
        """Atomically (temporary file, fsync, rename)."""
        data = {
            "recording_id": self.recording_id,
            "complete": self.complete,
            "refused": self.refused,
            "done": self.done,
            "damaged": self.damaged,
        }
        temporary = folder / f".{STATE}.tmp"
        with open(temporary, "w", opener=private_opener) as out:
            json.dump(data, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, folder / STATE)


def read_chunk(view: SealedReader, offset: int, length: int) -> tuple[bytes, str]:
    """``length`` plaintext bytes at ``offset`` and their SHA-256 (hex); SealError when they fail authentication."""
    data = view.read_at(offset, length)
    return data, hashlib.sha256(data).hexdigest()


def hash_file(view: SealedReader) -> tuple[int, str]:
    """(size, SHA-256 hex) of the whole plaintext (every record authenticated on the way)."""
    digest = hashlib.sha256()
    for offset in range(0, view.size, HASH_BLOCK):
        digest.update(view.read_at(offset, HASH_BLOCK))
    return view.size, digest.hexdigest()


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
