"""edge_capture.recording.spool: the recordings folder, its state file, and recovery after a kill."""

from __future__ import annotations

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


def test_a_timeline_is_readable_up_to_its_last_whole_line(tmp_path: Path) -> None:
    path = tmp_path / "timeline.jsonl"
    path.write_bytes(b'{"a":1}\n{"b":2}\n{"c":')
    assert readable_end(path) == 16
    assert readable_end(path, 8) == 16  # resumed from an earlier boundary
    path.write_bytes(b'{"c":')
    assert readable_end(path) == 0


def test_recovery_cuts_torn_tails_so_what_is_left_plays(tmp_path: Path) -> None:
    whole = tmp_path / "whole.mp4"
    write(whole, 3.0)
    data = whole.read_bytes()
    folder = tmp_path / "recordings" / "c1"
    folder.mkdir(parents=True)
    (folder / "media.mp4").write_bytes(data[: len(data) * 2 // 3])  # killed in the middle of a fragment
    (folder / "timeline.jsonl").write_bytes(b'{"type":"header"}\n{"type":"st')
    (folder / "media.1.mp4").write_bytes(data[:20])  # killed before its first box was whole
    (folder / ".state.json.tmp").write_text("{")
    empty = tmp_path / "recordings" / "c2"
    empty.mkdir()
    (empty / "timeline.jsonl").write_bytes(b"{")

    assert recover(tmp_path / "recordings") == ["c1"]
    assert data_files(folder) == ["media.mp4", "timeline.jsonl"] and not (folder / ".state.json.tmp").exists()
    assert (folder / "timeline.jsonl").read_bytes() == b'{"type":"header"}\n'
    kept = (folder / "media.mp4").read_bytes()
    assert data.startswith(kept) and len(kept) < len(data) * 2 // 3
    assert 0 < len(decode(folder / "media.mp4").video_pts) < 90
    assert recover(tmp_path / "recordings") == ["c1"] and (folder / "media.mp4").read_bytes() == kept  # idempotent


def test_the_state_file_round_trips_and_survives_garbage(tmp_path: Path) -> None:
    state = FolderState("c1", "r1", {"media.mp4": "ab" * 32}, None, False)
    state.save(tmp_path)
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
     (UploadState.COMPLETE, UploadState.NEW), (UploadState.REFUSED, UploadState.UPLOADING)],
)
def test_other_moves_of_a_folder_upload_are_refused(old: UploadState, new: UploadState) -> None:
    folder = _folder_in(old)
    with pytest.raises(IllegalMove, match=f"a recording upload that is {old} cannot become {new}"):
        folder.move(new, recording_id="r2")
    assert folder.upload_state is old
