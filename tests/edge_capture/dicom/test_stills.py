"""StillCapture: the right frame from the ring, clips of the last seconds, straight into the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pydicom
import pytest

from edge_capture.datachannel import Mark
from edge_capture.dicom.calibration import for_synthetic
from edge_capture.dicom.outbox import Outbox
from edge_capture.dicom.stills import CaptureRequest, StillCapture, closest_frame
from edge_capture.dicom.stow import StowClient
from edge_capture.errors import BadCaptureRequest, CaptureError, DicomBuildError, InvalidLabels, NoFrame
from edge_capture.ring import FrameRing
from edge_capture.sealing.keys import Keyring
from edge_capture.sealing.sealed import read_sealed
from edge_capture.sources.synthetic import SyntheticSource
from qc.labels import CaptureLabels
from qc.regions import distance_mm, regions_from_dataset
from signaling_server.signaling.messages import CaptureCommand
from tests.edge_capture.dicom.conftest import StowServer, context, dciodvfy, synthetic_frames

LABELS = CaptureLabels(side="R", structure="CCA", plane="transverse")
ARROW = Mark("a1", "arrow", ((0.3, 0.3), (0.5, 0.5)), "#ff0000")


@pytest.fixture
async def outbox(stow_server: StowServer, tmp_path: Path, spool_keys: Keyring) -> AsyncIterator[Outbox]:
    client = StowClient(stow_server.url, stow_server.credential)
    outbox = Outbox(tmp_path / "spool", client, keys=spool_keys, base_delay=0.01, max_delay=0.05)
    yield outbox
    await outbox.close()
    await client.close()


@pytest.fixture
def ring(carotid: SyntheticSource) -> FrameRing:
    ring = FrameRing(history_seconds=5.0)
    for frame in synthetic_frames(carotid, 30):  # one second at 30 fps, the newest captured now
        ring.put(frame)
    return ring


def capture(ring: FrameRing, outbox: Outbox, source: SyntheticSource, **options: object) -> StillCapture:
    return StillCapture(ring, context("carotid"), outbox, calibration=for_synthetic(source), **options)  # type: ignore[arg-type]


def spool(outbox: Outbox, uid: str) -> Path:
    """The spooled file's plaintext, as a file of its own beside the spool (the spool itself is sealed)."""
    plain = outbox.folder.parent / f"{uid}.opened.dcm"
    plain.write_bytes(read_sealed(outbox.folder / f"{uid}.dcm", outbox.keys))
    return plain


async def test_still_of_the_frame_the_expert_saw_with_its_marks(
    ring: FrameRing, outbox: Outbox, carotid: SyntheticSource
) -> None:
    frames = ring.since(10)
    seen = frames[12]
    asked = seen.capture_time_ns + 9_000_000  # the console's clock rounding: 9 ms off
    result = await capture(ring, outbox, carotid).capture_still(LABELS, [ARROW], asked)
    assert result.frame_capture_time_ns == seen.capture_time_ns
    assert result.kind == "still" and result.number_of_frames == 1
    assert result.study_instance_uid == context("carotid").study_instance_uid
    # spooled before the result came back; valid; lossless; calibrated
    image = pydicom.dcmread(spool(outbox, result.sop_instance_uid))
    assert dciodvfy(spool(outbox, result.sop_instance_uid)) == []
    assert image.SeriesInstanceUID == result.series_instance_uid
    assert np.array_equal(image.pixel_array, seen.image[..., ::-1])
    p0, p1 = carotid.to_pixels(2.0, 2.0), carotid.to_pixels(2.0, 32.0)
    assert distance_mm(regions_from_dataset(image), p0, p1) == pytest.approx(30.0, abs=carotid.mm_per_pixel)
    assert result.presentation_state_uid is not None
    marks = pydicom.dcmread(spool(outbox, result.presentation_state_uid))
    assert dciodvfy(spool(outbox, result.presentation_state_uid)) == []
    referenced = marks.ReferencedSeriesSequence[0].ReferencedImageSequence[0]
    assert referenced.ReferencedSOPInstanceUID == result.sop_instance_uid


async def test_without_a_time_the_still_is_the_latest_frame(
    ring: FrameRing, outbox: Outbox, carotid: SyntheticSource
) -> None:
    result = await capture(ring, outbox, carotid).capture_still(LABELS)
    latest = ring.latest()
    assert latest is not None and result.frame_capture_time_ns == latest.capture_time_ns
    assert result.presentation_state_uid is None


async def test_a_clip_of_the_last_seconds_clamped_to_the_ring(
    ring: FrameRing, outbox: Outbox, carotid: SyntheticSource
) -> None:
    still_capture = capture(ring, outbox, carotid, max_clip_seconds=10.0)
    result = await still_capture.capture_clip(30.0, LABELS)  # asks for more than the ring holds
    assert result.kind == "clip" and result.number_of_frames == 30
    assert result.frame_capture_time_ns == ring.since(10)[0].capture_time_ns
    path = spool(outbox, result.sop_instance_uid)
    assert dciodvfy(path) == []
    clip = pydicom.dcmread(path)
    assert clip.NumberOfFrames == 30 and clip.FrameTime == pytest.approx(33.333, abs=0.001)
    short = await still_capture.capture_clip(0.5, LABELS)
    assert short.number_of_frames == 16  # 0.5 s back from the newest frame, both ends included


async def test_captures_are_uploaded(
    ring: FrameRing, outbox: Outbox, carotid: SyntheticSource, stow_server: StowServer
) -> None:
    await outbox.start()
    result = await capture(ring, outbox, carotid).capture_still(LABELS, [ARROW])
    assert result.presentation_state_uid is not None
    await asyncio.wait_for(outbox.acknowledged(result.presentation_state_uid), 5)
    assert set(stow_server.stored) == {result.sop_instance_uid, result.presentation_state_uid}


async def test_a_request_id_makes_the_capture_idempotent(
    ring: FrameRing, outbox: Outbox, carotid: SyntheticSource
) -> None:
    still_capture = capture(ring, outbox, carotid)
    first = await still_capture.capture_still(LABELS, [ARROW], capture_id="c-17")
    again = await still_capture.capture_still(LABELS, [ARROW], capture_id="c-17")
    other = await still_capture.capture_still(LABELS, [ARROW], capture_id="c-18")
    assert again == first and other.sop_instance_uid != first.sop_instance_uid
    # a new StillCapture (an agent restart) answering the same id makes the same UIDs
    restarted = await capture(ring, outbox, carotid).capture_still(LABELS, [ARROW], capture_id="c-17")
    assert restarted.sop_instance_uid == first.sop_instance_uid
    assert restarted.presentation_state_uid == first.presentation_state_uid
    assert outbox.status.pending == 4  # c-17 and c-18, each an image and its marks


async def test_an_empty_ring_has_nothing_to_capture(outbox: Outbox, carotid: SyntheticSource) -> None:
    still_capture = capture(FrameRing(), outbox, carotid)
    with pytest.raises(NoFrame) as caught:
        await still_capture.capture_still(LABELS)
    assert caught.value.code == "no_frame"
    with pytest.raises(NoFrame, match="a clip needs two"):
        await still_capture.capture_clip(3.0, LABELS)


async def test_a_carotid_still_without_side_is_refused(
    ring: FrameRing, outbox: Outbox, carotid: SyntheticSource
) -> None:
    with pytest.raises(DicomBuildError) as caught:
        await capture(ring, outbox, carotid).capture_still(CaptureLabels(structure="ICA"))
    assert caught.value.code == "laterality_required"
    assert outbox.status.pending == 0


async def test_handle_serves_requests_with_the_page_or_the_board_marks(
    ring: FrameRing, outbox: Outbox, carotid: SyntheticSource
) -> None:
    still_capture = capture(ring, outbox, carotid)
    seen = ring.since(10)[5]
    request = CaptureRequest.from_dict(
        {
            "kind": "still",
            "id": "c-1",
            "frame_ms": seen.capture_time_ns / 1e6,
            "labels": {"side": "R", "structure": "bulb", "mode": "pw_doppler", "doppler_angle": 60},
            "marks": [{"id": "m1", "kind": "circle", "points": [[0.5, 0.5], [0.6, 0.5]]}],
        }
    )
    result = await still_capture.handle(request, board_marks=[ARROW])
    assert result.frame_capture_time_ns == seen.capture_time_ns
    assert result.presentation_state_uid is not None
    marks = pydicom.dcmread(spool(outbox, result.presentation_state_uid))
    assert marks.GraphicAnnotationSequence[0].GraphicObjectSequence[0].GraphicType == "CIRCLE"
    from_board = await still_capture.handle(
        CaptureRequest.from_dict({"kind": "still", "labels": {"side": "L"}}), [ARROW]
    )
    assert from_board.presentation_state_uid is not None
    clip = await still_capture.handle(
        CaptureRequest.from_dict({"kind": "clip", "seconds": 0.3, "labels": {"side": "L"}})
    )
    assert clip.kind == "clip" and clip.number_of_frames >= 8


@pytest.mark.parametrize(
    ("request_json", "message"),
    [
        ([], "a capture request must be a JSON object"),
        ({"kind": "movie"}, "kind must be still or clip"),
        ({"kind": "clip"}, "a clip needs seconds"),
        ({"kind": "clip", "seconds": -1}, "seconds must be positive"),
        ({"kind": "still", "frame_ms": "now"}, "frame_ms must be a number"),
        ({"kind": "still", "id": ""}, "id must be a string of 1 to 64 characters"),
        ({"kind": "still", "marks": {}}, "marks must be a list"),
        ({"kind": "still", "marks": [1]}, "each mark must be an object"),
        (
            {"kind": "still", "marks": [{"id": "m", "kind": "arrow", "points": [[0, 0]]}]},
            "a mark: a arrow has 2 points",
        ),
    ],
)
def test_malformed_requests_are_refused(request_json: object, message: str) -> None:
    with pytest.raises(BadCaptureRequest) as caught:
        CaptureRequest.from_dict(request_json)
    assert caught.value.code == "bad_capture_request"
    assert caught.value.message.startswith(message)


def test_a_request_with_bad_labels_is_refused_as_labels() -> None:
    with pytest.raises(InvalidLabels) as caught:
        CaptureRequest.from_dict({"kind": "still", "labels": {"side": "up"}})
    assert isinstance(caught.value, CaptureError) and caught.value.code == "invalid_labels"
    assert caught.value.message.startswith("side")


def test_the_servers_capture_command_is_the_edges_request() -> None:
    labels = {"side": "R", "structure": "CCA", "plane": "longitudinal"}
    still = CaptureRequest.from_command(CaptureCommand("c-1", "still", None, labels, 1767000000123.5, "Dr W", "expert"))
    assert (still.kind, still.id, still.frame_ms, still.seconds, still.marks) == (
        "still",
        "c-1",
        1767000000123.5,
        None,
        None,
    )
    assert still.labels == CaptureLabels.from_dict(labels)
    clip = CaptureRequest.from_command(CaptureCommand("c-2", "clip", 6.0, {}, None, "Li", "sonographer"))
    assert (clip.kind, clip.seconds, clip.labels) == ("clip", 6.0, CaptureLabels())
    with pytest.raises(InvalidLabels):
        CaptureRequest.from_command(CaptureCommand("c-3", "still", None, {"mode": "x"}, None, "Li", "sonographer"))


def test_closest_frame(carotid: SyntheticSource) -> None:
    frames = synthetic_frames(carotid, 3, start_ns=1_000, step_ns=100)
    assert closest_frame(frames, 1_140) is frames[1]
    assert closest_frame(frames, 0) is frames[0] and closest_frame([], 5) is None
