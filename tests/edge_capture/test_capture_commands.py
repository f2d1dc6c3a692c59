"""edge_capture.capture_commands: the server's capture commands become stills and clips in the outbox, answered
`captured` or `capture-failed` with the stable codes of PROTOCOL.md §4. The socket is the seam: what would be
sent on it is collected; the ring, the DICOM and the outbox are the real ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest

from edge_capture.capture_commands import CaptureCommands
from edge_capture.captures import CaptureKit
from edge_capture.dicom.calibration import for_synthetic
from edge_capture.dicom.outbox import Outbox
from edge_capture.dicom.stills import CaptureResult
from edge_capture.dicom.stow import StowClient
from edge_capture.ring import FrameRing
from edge_capture.sealing.keys import Keyring
from edge_capture.sealing.sealed import read_sealed
from edge_capture.sources.synthetic import SyntheticSource
from signaling_server.signaling import messages as m
from tests.edge_capture.dicom.conftest import make_source, synthetic_frames

CONSULTATION = {
    "id": "c1",
    "state": "live",
    "exam_type": "carotid",
    "study_uid": "1.2.826.0.1.3680043.8.498.1",
    "patient": {"id": "P-1", "name": "Wang^Fang", "sex": "F", "birth_date": "1970-05-01"},
    "started_at": "2026-01-02T03:04:05Z",
}
LABELS = {"side": "R", "structure": "CCA", "plane": "transverse"}


@pytest.fixture(scope="module")
def carotid() -> SyntheticSource:
    return make_source("carotid")


@pytest.fixture
async def kit(tmp_path: Path, carotid: SyntheticSource, spool_keys: Keyring) -> AsyncIterator[CaptureKit]:
    stow = StowClient("http://127.0.0.1:9", "dev_x_y")  # nobody there: the files stay in the outbox
    outbox = Outbox(tmp_path / "outbox", stow, keys=spool_keys, base_delay=10.0, max_delay=10.0)
    yield CaptureKit(outbox, for_synthetic(carotid), None, "north-us-1")
    await outbox.close()
    await stow.close()


@pytest.fixture
def ring(carotid: SyntheticSource) -> FrameRing:
    ring = FrameRing(history_seconds=5.0)
    for frame in synthetic_frames(carotid, 30):
        ring.put(frame)
    return ring


class Room:
    """What the edge would send on the signaling socket, and what it reported as captured."""

    def __init__(self) -> None:
        self.sent: asyncio.Queue[m.ClientMessage] = asyncio.Queue()
        self.captured: list[tuple[m.CaptureCommand, CaptureResult]] = []

    async def send(self, message: m.ClientMessage) -> None:
        self.sent.put_nowait(message)

    def on_captured(self, command: m.CaptureCommand, result: CaptureResult) -> None:
        self.captured.append((command, result))

    async def answer(self) -> m.ClientMessage:
        return await asyncio.wait_for(self.sent.get(), 30)


def command(capture_id: str, kind: str = "still", seconds: float | None = None, **labels: Any) -> m.CaptureCommand:
    return m.CaptureCommand(capture_id, kind, seconds, labels or LABELS, None, "Dr Wang", "expert")


async def test_a_still_is_taken_spooled_and_answered_captured(kit: CaptureKit, ring: FrameRing) -> None:
    room = Room()
    captures = CaptureCommands("c1", ring, kit, room.send, room.on_captured)
    newest = ring.latest()
    assert newest is not None
    captures.take(command("c-1"), CONSULTATION, board_marks=())
    answer = await room.answer()
    assert isinstance(answer, m.Captured) and answer.id == "c-1" and answer.frames == 1
    assert answer.frame_capture_ms == newest.capture_time_ns / 1e6
    image = pydicom.dcmread(BytesIO(read_sealed(kit.outbox.folder / f"{answer.sop_uid}.dcm", kit.outbox.keys)))
    assert image.StudyInstanceUID == CONSULTATION["study_uid"] and image.Laterality == "R"
    assert [(c.id, r.sop_instance_uid) for c, r in room.captured] == [("c-1", answer.sop_uid)]


async def test_a_clip_is_answered_with_its_frame_count(kit: CaptureKit, ring: FrameRing) -> None:
    room = Room()
    CaptureCommands("c1", ring, kit, room.send).take(command("c-2", "clip", 0.5), CONSULTATION, ())
    answer = await room.answer()
    assert isinstance(answer, m.Captured) and answer.id == "c-2" and answer.frames >= 10


@pytest.mark.parametrize(
    ("consultation", "asked", "code"),
    [
        ({**CONSULTATION, "study_uid": None}, command("c-3"), "captures_off"),
        (CONSULTATION, command("c-4", side="up"), "invalid_labels"),
        (CONSULTATION, command("c-5", structure="ICA"), "laterality_required"),
    ],
)
async def test_refusals_are_answered_with_their_codes(
    kit: CaptureKit, ring: FrameRing, consultation: dict[str, Any], asked: m.CaptureCommand, code: str
) -> None:
    room = Room()
    CaptureCommands("c1", ring, kit, room.send, room.on_captured).take(asked, consultation, ())
    answer = await room.answer()
    assert isinstance(answer, m.CaptureFailed)
    assert (answer.id, answer.code) == (asked.id, code) and answer.message
    assert room.captured == [] and list(kit.outbox.folder.glob("*.dcm")) == []


async def test_an_edge_without_captures_and_an_empty_ring_refuse_too(kit: CaptureKit) -> None:
    room = Room()
    CaptureCommands("c1", FrameRing(), None, room.send).take(command("c-6"), CONSULTATION, ())
    assert (await room.answer()) == m.CaptureFailed(
        "c-6", "captures_off", "this edge does not capture for this consultation"
    )
    CaptureCommands("c1", FrameRing(), kit, room.send).take(command("c-7", "clip", 2.0), CONSULTATION, ())
    answer = await room.answer()
    assert isinstance(answer, m.CaptureFailed) and answer.code == "no_frame"
    assert answer.message == "the last 2 s hold 0 frame(s); a clip needs two"
