"""Stills and clips on request: from the frame ring to DICOM objects in the upload outbox.

A capture is asked for over REST and reaches the edge as the server's ``capture`` command
(signaling_server/signaling/messages.py ``CaptureCommand``, PROTOCOL.md §4); :meth:`CaptureRequest.from_command` is
the one place the edge turns it into its own validated request. As JSON (:meth:`CaptureRequest.from_dict`)::

    {"kind": "still", "id": "c-17", "frame_ms": 1767000000123.4,
     "labels": {"side": "R", "structure": "CCA", "plane": "longitudinal", "mode": "b_mode"},
     "marks": [{"id": "m1", "kind": "arrow", "points": [[0.2, 0.3], [0.4, 0.5]], "color": "#ff0000"}]}
    {"kind": "clip", "id": "c-18", "seconds": 6, "labels": {...}}

``frame_ms`` is the ``capture_ms`` of the ``frame`` message for the video frame the expert was looking at
(edge clock): the still is the source frame captured closest to it, the latest frame when absent. ``marks``
(the page's marks when it asked) is optional: without it the caller passes the guidance board's marks.
``id`` makes a request idempotent: the same id gives the same SOP Instance UIDs and the same result.

The objects are built on a worker thread, spooled to the outbox, and the result returned at once: the
upload goes on in the background (``Outbox.acknowledged`` / listeners tell when the server has them).

Errors (edge_capture/errors.py; each ``code`` is answered as ``capture-failed``)::

    CaptureError
    ├── BadCaptureRequest   bad_capture_request (the JSON)
    ├── NoFrame             no_frame (the ring holds no or too few frames)
    ├── InvalidLabels       invalid_labels (the labels' own LabelsError, turned into the edge's)
    └── DicomBuildError     laterality_required, bad_frames, ...
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from edge_capture.datachannel import Mark
from edge_capture.dicom.annotations import build_presentation_state
from edge_capture.dicom.calibration import PresetCalibration
from edge_capture.dicom.outbox import Outbox
from edge_capture.dicom.ultrasound import LossyHistory, StudyContext, build_clip, build_still
from edge_capture.errors import BadCaptureRequest, InvalidLabels, MessageError, NoFrame
from edge_capture.frames import SourceFrame
from edge_capture.ring import FrameRing
from qc.labels import CaptureLabels, LabelsError
from signaling_server.signaling.messages import CaptureCommand

logger = logging.getLogger(__name__)

MAX_CLIP_SECONDS = 10.0
FAR_FRAME_NS = 1_000_000_000  # a still further than this from the asked time is logged
REMEMBERED_REQUESTS = 64


def _bad(message: str) -> BadCaptureRequest:
    return BadCaptureRequest(message)


@dataclass(frozen=True)
class CaptureRequest:
    kind: str  # still | clip
    labels: CaptureLabels
    id: str | None = None
    frame_ms: float | None = None  # still: the capture_ms of the frame the expert saw
    seconds: float | None = None  # clip: how far back
    marks: tuple[Mark, ...] | None = None  # still: the page's marks; None = the board's

    @classmethod
    def from_command(cls, command: CaptureCommand) -> CaptureRequest:
        """The server's ``capture`` command as the edge's request (the board's marks go on a still)."""
        return cls.from_dict(
            {
                "kind": command.kind,
                "id": command.id,
                "frame_ms": command.frame_capture_ms,
                "seconds": command.seconds,
                "labels": command.labels,
            }
        )

    @classmethod
    def from_dict(cls, data: Any) -> CaptureRequest:
        if not isinstance(data, dict):
            raise _bad("a capture request must be a JSON object")
        kind = data.get("kind")
        if kind not in ("still", "clip"):
            raise _bad("kind must be still or clip")
        request_id = data.get("id")
        if request_id is not None and not (isinstance(request_id, str) and 1 <= len(request_id) <= 64):
            raise _bad("id must be a string of 1 to 64 characters")
        frame_ms, seconds = data.get("frame_ms"), data.get("seconds")
        for name, value in (("frame_ms", frame_ms), ("seconds", seconds)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise _bad(f"{name} must be a number")
            if value is not None and not (math.isfinite(value) and value > 0):
                raise _bad(f"{name} must be positive")
        if kind == "clip" and seconds is None:
            raise _bad("a clip needs seconds")
        marks = data.get("marks")
        if marks is not None:
            if not isinstance(marks, list):
                raise _bad("marks must be a list")
            if not all(isinstance(m, dict) for m in marks):
                raise _bad("each mark must be an object")
            try:
                marks = tuple(Mark.from_dict(m) for m in marks)
            except MessageError as error:
                raise _bad(f"a mark: {error.message}") from None
        try:
            labels = CaptureLabels.from_dict(data.get("labels"))
        except LabelsError as error:
            raise InvalidLabels(error.message) from None
        return cls(kind, labels, request_id, frame_ms, seconds, marks)


@dataclass(frozen=True)
class CaptureResult:
    kind: str  # still | clip
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    number_of_frames: int
    frame_capture_time_ns: int  # the still's frame; a clip's first frame
    presentation_state_uid: str | None = None  # the marks, when there were any


def closest_frame(frames: Iterable[SourceFrame], capture_time_ns: int) -> SourceFrame | None:
    return min(frames, key=lambda f: abs(f.capture_time_ns - capture_time_ns), default=None)


class StillCapture:
    """Captures for one consultation: one ring, one study, one outbox."""

    def __init__(
        self,
        ring: FrameRing,
        context: StudyContext,
        outbox: Outbox,
        *,
        calibration: PresetCalibration | None = None,
        source_lossy: LossyHistory | None = None,
        max_clip_seconds: float = MAX_CLIP_SECONDS,
        clip_duty_cycle: float = 0.5,
        first_instance_number: int = 1,
        name: str = "",
    ) -> None:
        self.ring, self.context, self.outbox, self.name = ring, context, outbox, name
        self.calibration, self.source_lossy = calibration, source_lossy
        self.max_clip_seconds, self.clip_duty_cycle = max_clip_seconds, clip_duty_cycle
        self._next_instance = first_instance_number
        self._done: OrderedDict[str, CaptureResult] = OrderedDict()
        self._clip_encoder = asyncio.Lock()  # one clip encode at a time: the edge's CPU is for live video

    def _instance_number(self) -> int:
        number, self._next_instance = self._next_instance, self._next_instance + 1
        return number

    def _uid(self, capture_id: str | None, kind: str) -> str:
        if capture_id is None:
            return generate_uid()
        return generate_uid(entropy_srcs=[self.context.study_instance_uid, "teleus-capture", capture_id, kind])

    def _remember(self, capture_id: str | None, result: CaptureResult) -> CaptureResult:
        if capture_id is not None:
            self._done[capture_id] = result
            while len(self._done) > REMEMBERED_REQUESTS:
                self._done.popitem(last=False)
        return result

    def _all_frames(self) -> list[SourceFrame]:
        return self.ring.since(self.ring.history_seconds + 60.0)

    async def handle(self, request: CaptureRequest, board_marks: Iterable[object] = ()) -> CaptureResult:
        """Serve a decoded capture request; a still takes the request's marks, else the board's."""
        if request.kind == "clip":
            assert request.seconds is not None
            return await self.capture_clip(request.seconds, request.labels, capture_id=request.id)
        marks = request.marks if request.marks is not None else tuple(board_marks)
        frame_ns = None if request.frame_ms is None else round(request.frame_ms * 1e6)
        return await self.capture_still(request.labels, marks, frame_ns, capture_id=request.id)

    async def capture_still(
        self,
        labels: CaptureLabels,
        marks: Iterable[object] = (),
        frame_capture_time_ns: int | None = None,
        *,
        capture_id: str | None = None,
    ) -> CaptureResult:
        if capture_id is not None and capture_id in self._done:
            return self._done[capture_id]
        marks = tuple(marks)
        frame = (
            self.ring.latest()
            if frame_capture_time_ns is None
            else closest_frame(self._all_frames(), frame_capture_time_ns)
        )
        if frame is None:
            raise NoFrame("no frame has been captured yet")
        if frame_capture_time_ns is not None and abs(frame.capture_time_ns - frame_capture_time_ns) > FAR_FRAME_NS:
            logger.warning(
                "capture %s: the closest frame is %.1f s from the one asked for",
                self.name,
                (frame.capture_time_ns - frame_capture_time_ns) / 1e9,
            )
        uid = self._uid(capture_id, "still")
        instance = self._instance_number()
        image, marks_ps = await asyncio.to_thread(self._build_still, frame, labels, marks, uid, instance)
        await self.outbox.enqueue(image)
        if marks_ps is not None:
            await self.outbox.enqueue(marks_ps)
        result = CaptureResult(
            "still",
            uid,
            self.context.study_instance_uid,
            str(image.SeriesInstanceUID),
            1,
            frame.capture_time_ns,
            None if marks_ps is None else str(marks_ps.SOPInstanceUID),
        )
        logger.info("capture %s: still %s of frame %s (%s marks) spooled", self.name, uid, frame.index, len(marks))
        return self._remember(capture_id, result)

    def _build_still(
        self, frame: SourceFrame, labels: CaptureLabels, marks: tuple[object, ...], uid: str, instance: int
    ) -> tuple[Dataset, Dataset | None]:
        image = build_still(
            frame,
            self.context,
            labels,
            calibration=self.calibration,
            source_lossy=self.source_lossy,
            sop_instance_uid=uid,
            instance_number=instance,
        )
        marks_uid = generate_uid(entropy_srcs=[uid, "marks"])
        state = build_presentation_state(
            image, marks, self.context, frame.capture_time_ns, sop_instance_uid=marks_uid, instance_number=instance
        )
        return image, state

    async def capture_clip(
        self, seconds: float, labels: CaptureLabels, *, capture_id: str | None = None
    ) -> CaptureResult:
        if capture_id is not None and capture_id in self._done:
            return self._done[capture_id]
        seconds = min(seconds, self.max_clip_seconds, self.ring.history_seconds)
        frames = self._all_frames()
        if frames:  # the seconds before the newest frame (a stalled source still gives its last ones)
            newest = frames[-1]
            start_ns = newest.monotonic_ns - round(seconds * 1e9)
            # a source that changed size mid-clip: keep the frames of the newest size
            frames = [f for f in frames if f.monotonic_ns >= start_ns and f.image.shape == newest.image.shape]
        if len(frames) < 2:
            raise NoFrame(f"the last {seconds:g} s hold {len(frames)} frame(s); a clip needs two")
        uid = self._uid(capture_id, "clip")
        instance = self._instance_number()
        async with self._clip_encoder:
            clip = await asyncio.to_thread(
                build_clip,
                frames,
                self.context,
                labels,
                calibration=self.calibration,
                source_lossy=self.source_lossy,
                sop_instance_uid=uid,
                instance_number=instance,
                duty_cycle=self.clip_duty_cycle,
            )
        await self.outbox.enqueue(clip)
        result = CaptureResult(
            "clip",
            uid,
            self.context.study_instance_uid,
            str(clip.SeriesInstanceUID),
            len(frames),
            frames[0].capture_time_ns,
        )
        logger.info("capture %s: clip %s of %s frames over %.1f s spooled", self.name, uid, len(frames), seconds)
        return self._remember(capture_id, result)
