"""The server's `capture` commands in one consultation (PROTOCOL.md §4): each becomes a still or a clip taken from
the edge's own ring, spooled for upload, and answered with `captured` or `capture-failed`.

Not to be confused with edge_capture/capture.py (the thread that reads the source into the ring) or
edge_capture/captures.py (what every consultation's captures share: the outbox, the calibration, the study).

The command is the server's typed message (`CaptureCommand`); `CaptureRequest.from_command` makes the edge's
validated request of it. A refusal answers with its `CaptureError` code (edge_capture/errors.py); anything else
that goes wrong answers `capture_failed`, so the room never waits for a capture that will not come.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from edge_capture.captures import CaptureKit, still_capture_for
from edge_capture.dicom.stills import CaptureRequest, CaptureResult, StillCapture
from edge_capture.errors import CaptureError, CapturesOff
from edge_capture.ring import FrameRing
from signaling_server.signaling.messages import CaptureCommand, Captured, CaptureFailed, ClientMessage

log = logging.getLogger(__name__)

MAX_FAILURE_MESSAGE = 500


class CaptureCommands:
    def __init__(
        self,
        consultation_id: str,
        ring: FrameRing,
        kit: CaptureKit | None,
        send: Callable[[ClientMessage], Awaitable[None]],
        on_captured: Callable[[CaptureCommand, CaptureResult], None] = lambda command, result: None,
    ) -> None:
        self.cid = consultation_id
        self.ring = ring
        self.kit = kit
        self._send = send
        self._on_captured = on_captured
        self._stills: StillCapture | None = None  # made at the first capture, for the consultation's study
        self._tasks: set[asyncio.Task[None]] = set()

    def take(self, command: CaptureCommand, consultation: dict[str, Any] | None, board_marks: Iterable[object]) -> None:
        """Start on the command at once (the signaling socket goes on reading while the DICOM is built)."""
        marks = tuple(board_marks)  # the marks on the board when the capture was asked for
        task = asyncio.create_task(self._capture(command, consultation, marks), name=f"capture-{self.cid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _capture(
        self, command: CaptureCommand, consultation: dict[str, Any] | None, marks: tuple[object, ...]
    ) -> None:
        try:
            result = await self._take(command, consultation, marks)
        except CaptureError as exc:
            log.info("consultation %s: capture %s refused: %s %s", self.cid, command.id, exc.code, exc.message)
            await self._send(CaptureFailed(command.id, exc.code, exc.message[:MAX_FAILURE_MESSAGE]))
            return
        except Exception as exc:  # a full disk, a bug: the room hears it failed rather than waiting
            log.exception("consultation %s: capture %s failed", self.cid, command.id)
            failed = CaptureError(f"the capture failed on the edge ({type(exc).__name__})")
            await self._send(CaptureFailed(command.id, failed.code, failed.message))
            return
        log.info(
            "consultation %s: capture %s: %s %s (%d frames)",
            self.cid,
            command.id,
            result.kind,
            result.sop_instance_uid,
            result.number_of_frames,
        )
        self._on_captured(command, result)
        frame_ms = result.frame_capture_time_ns / 1e6
        await self._send(Captured(command.id, result.sop_instance_uid, result.number_of_frames, frame_ms))

    async def _take(
        self, command: CaptureCommand, consultation: dict[str, Any] | None, marks: tuple[object, ...]
    ) -> CaptureResult:
        if self.kit is None or consultation is None or not consultation.get("study_uid"):
            raise CapturesOff("this edge does not capture for this consultation")
        if self._stills is None:
            self._stills = still_capture_for(self.kit, self.ring, consultation)
        return await self._stills.handle(CaptureRequest.from_command(command), board_marks=marks)
