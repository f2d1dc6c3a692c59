"""edge_capture.recording.spool: the recordings folder, its state file, and recovery after a kill."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from edge_capture.recording.spool import (
    MACHINE,
    FolderState,
    UploadState,
    data_files,
    next_segment,
    readable_end,
    recover,
)
from edge_capture.sealing.keys import Keyring
from edge_capture.sealing.sealed import SealedReader, SealedWriter, is_sealed, read_sealed
from signaling_server.states import IllegalMove
from tests.edge_capture.recording.media import decode
from tests.edge_capture.recording.test_mp4 import write


def test_files_are_listed_segment_by_segment_and_the_next_segment_follows() -> None:
    folder = Path("/nonexistent-teleus-folder")
    assert data_files(folder) == [] and next_segment(folder) == 0


def test_listing_and_numbering(tmp_path: Path) -> None:
    for name in ("timeline.1.jsonl", "media.mp4", "media.1.mp4", "timeline.jsonl", "state.json", "media.jsonl",
                 "notes.txt", "media.10.mp4"):
        (tmp_path / name).write_bytes(b"x")
    assert data_files(tmp_path) == ["media.mp4", "timeline.jsonl", "media.1.mp4", "timeline.1.jsonl", "media.10.mp4"]
    assert next_segment(tmp_path) == 11


def growing(path: Path, data: bytes, keys: Keyring, torn: int = 0) -> None:
    """A sealed file as a killed recorder leaves it: whole records, no end, and ``torn`` bytes of a record cut."""
    writer = SealedWriter(path, keys.current, record_bytes=4096)
    writer.write(data)
    writer.abandon()
    if torn:
        with open(path, "r+b") as out:
            out.truncate(path.stat().st_size - torn)


def test_a_timeline_is_readable_up_to_its_last_whole_line(tmp_path: Path, spool_keys: Keyring) -> None:
    assert readable_end(io.BytesIO(b'{"a":1}\n{"b":2}\n{"c":'), ".jsonl") == 16
    assert readable_end(io.BytesIO(b'{"a":1}\n{"b":2}\n{"c":'), ".jsonl", 8) == 16  # resumed from a boundary
    assert readable_end(io.BytesIO(b'{"c":'), ".jsonl") == 0
    path = tmp_path / "timeline.jsonl"  # through a sealed file's plaintext view, as the uploader reads it
    growing(path, b'{"a":1}\n{"b":2}\n{"c":', spool_keys)
    with SealedReader(path, spool_keys) as view:
        assert readable_end(view, ".jsonl") == 16 and readable_end(view, ".jsonl", 8) == 16


def test_recovery_cuts_torn_tails_so_what_is_left_plays(tmp_path: Path, spool_keys: Keyring) -> None:
    whole = tmp_path / "whole.mp4"
    write(whole, 3.0)
    data = whole.read_bytes()
    folder = tmp_path / "recordings" / "c1"
    folder.mkdir(parents=True)
    growing(folder / "media.mp4", data[: len(data) * 2 // 3], spool_keys, torn=100)  # killed mid-fragment
    growing(folder / "timeline.jsonl", b'{"type":"header"}\n{"type":"st', spool_keys)
    growing(folder / "media.1.mp4", data[:20], spool_keys)  # killed before its first box was whole
    (folder / ".state.json.tmp").write_text("{")
    empty = tmp_path / "recordings" / "c2"
    empty.mkdir()
    growing(empty / "timeline.jsonl", b"{", spool_keys)

    assert recover(tmp_path / "recordings", spool_keys) == ["c1"]
    assert data_files(folder) == ["media.mp4", "timeline.jsonl"] and not (folder / ".state.json.tmp").exists()
    assert read_sealed(folder / "timeline.jsonl", spool_keys) == b'{"type":"header"}\n'  # whole and finished
    kept = read_sealed(folder / "media.mp4", spool_keys)
    assert data.startswith(kept) and len(kept) < len(data) * 2 // 3
    assert 0 < len(decode(folder / "media.mp4", spool_keys).video_pts) < 90
    sealed = (folder / "media.mp4").read_bytes()
    assert recover(tmp_path / "recordings", spool_keys) == ["c1"]
    assert (folder / "media.mp4").read_bytes() == sealed  # idempotent


def test_recovery_seals_what_an_older_version_left_in_clear(tmp_path: Path, spool_keys: Keyring) -> None:
    whole = tmp_path / "whole.mp4"
    write(whole, 2.0)
    data = whole.read_bytes()
    folder = tmp_path / "recordings" / "c1"
    folder.mkdir(parents=True)
    (folder / "media.mp4").write_bytes(data[: len(data) * 2 // 3])  # in clear, and torn
    (folder / "timeline.jsonl").write_bytes(b'{"type":"header"}\n{"type":"st')
    assert recover(tmp_path / "recordings", spool_keys) == ["c1"]
    assert is_sealed(folder / "media.mp4") and is_sealed(folder / "timeline.jsonl")
    assert data.startswith(read_sealed(folder / "media.mp4", spool_keys))
    assert read_sealed(folder / "timeline.jsonl", spool_keys) == b'{"type":"header"}\n'
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_recovery_leaves_a_file_that_fails_authentication_alone(tmp_path: Path, spool_keys: Keyring) -> None:
    folder = tmp_path / "recordings" / "c1"
    folder.mkdir(parents=True)
    growing(folder / "timeline.jsonl", b'{"type":"header"}\n' * 1000, spool_keys)
    with open(folder / "timeline.jsonl", "r+b") as out:  # someone changed a byte of the first record
        out.seek(100)
        byte = out.read(1)
        out.seek(100)
        out.write(bytes([byte[0] ^ 1]))
    before = (folder / "timeline.jsonl").read_bytes()
    assert recover(tmp_path / "recordings", spool_keys) == ["c1"]  # logged; the file is kept as it was
    assert (folder / "timeline.jsonl").read_bytes() == before
    other = Keyring.generate()
    growing(folder / "media.mp4", b"x" * 100, other)  # sealed under a key this edge does not hold
    assert recover(tmp_path / "recordings", spool_keys) == ["c1"] and (folder / "media.mp4").exists()


def test_the_state_file_round_trips_and_survives_garbage(tmp_path: Path) -> None:
    state = FolderState("c1", "r1", {"media.mp4": "ab" * 32}, None, False)
    state.save(tmp_path)
    assert json.loads((tmp_path / "state.json").read_text())["damaged"] is None
    assert FolderState.load(tmp_path) == FolderState("c1" if tmp_path.name == "c1" else tmp_path.name, "r1",
                                                     {"media.mp4": "ab" * 32})
    (tmp_path / "state.json").write_text("[not, json")
    assert FolderState.load(tmp_path).recording_id is None


def _folder_in(state: UploadState) -> FolderState:
    folder = FolderState("c1")
    if state is not UploadState.NEW:
        folder.recording_id = "r1"
    folder.refused = "recording_disabled: no" if state is UploadState.REFUSED else None
    folder.done = state is UploadState.COMPLETE
    folder.damaged = "spool_tampered: changed" if state is UploadState.DAMAGED else None
    assert folder.upload_state is state
    return folder


@pytest.mark.parametrize(("old", "new"), MACHINE.edges())
def test_every_declared_move_of_a_folder_upload_passes_and_is_kept(
    old: UploadState, new: UploadState, tmp_path: Path
) -> None:
    folder = _folder_in(old)
    folder.move(new, recording_id="r2", reason="not_found: gone")
    assert folder.upload_state is new
    folder.save(tmp_path)
    reloaded = FolderState.load(tmp_path)
    assert reloaded.upload_state is new
    if new is UploadState.NEW:  # the server lost it: everything it had confirmed is forgotten
        assert (reloaded.recording_id, reloaded.complete) == (None, {})


@pytest.mark.parametrize(
    ("old", "new"),
    [(UploadState.NEW, UploadState.COMPLETE), (UploadState.UPLOADING, UploadState.REFUSED),
     (UploadState.COMPLETE, UploadState.NEW), (UploadState.REFUSED, UploadState.UPLOADING),
     (UploadState.DAMAGED, UploadState.UPLOADING), (UploadState.COMPLETE, UploadState.DAMAGED)],
)
def test_other_moves_of_a_folder_upload_are_refused(old: UploadState, new: UploadState) -> None:
    folder = _folder_in(old)
    with pytest.raises(IllegalMove, match=f"a recording upload that is {old} cannot become {new}"):
        folder.move(new, recording_id="r2")
    assert folder.upload_state is old
