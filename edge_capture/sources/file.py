"""Recorded sources: a video file (PyAV, here) or a DICOM cine or still (dicom.py), replayed as if live.

Used for demos, tests and training sessions on recorded exams. Both loop by default and pace themselves
to the recording's own frame rate (`paced=False` replays as fast as decoding allows, for offline QC).
Frames are letterboxed, never stretched, to the requested size.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
from pydicom.misc import is_dicom

from edge_capture.errors import SourceError
from edge_capture.sources.base import FrameSource, PaceClock, Pacer, letterbox
from edge_capture.sources.dicom import DicomCineSource

logger = logging.getLogger(__name__)


def open_file(
    path: str,
    width: int,
    height: int,
    fps: float = 30.0,
    *,
    loop: bool = True,
    paced: bool = True,
    pace_clock: PaceClock = time,
) -> FrameSource:
    """A DICOM source when the file is DICOM (preamble, or a .dcm name), a video source otherwise.
    `paced=False` replays as fast as decoding allows (offline QC, tests)."""
    if not os.path.isfile(path):
        raise SourceError("not_found", f"no such file: {path}")
    if is_dicom(path) or Path(path).suffix.lower() == ".dcm":
        return DicomCineSource(path, width, height, fps, loop=loop, paced=paced, pace_clock=pace_clock)
    return VideoFileSource(path, width, height, loop=loop, paced=paced, pace_clock=pace_clock)


class VideoFileSource:
    """Any container/codec FFmpeg decodes, replayed at its average frame rate."""

    def __init__(
        self,
        path: str,
        width: int,
        height: int,
        *,
        loop: bool = True,
        paced: bool = True,
        pace_clock: PaceClock = time,
    ) -> None:
        self.path = path
        self.width = width
        self.height = height
        self.loop = loop
        self._container: av.container.InputContainer | None = None
        self._decoded: Iterator[av.VideoFrame] = iter(())
        stream = self._open()
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 30.0
        self.frame_count = int(stream.frames)
        # Decode the first frame now: a truncated or corrupt file fails here, not on the capture thread.
        try:
            self._pending: av.VideoFrame | None = self._next_frame()
            if self._pending is None:
                raise SourceError("unreadable", f"{path} has no decodable frame")
        except SourceError:
            self.close()
            raise
        self._pacer = Pacer(self.fps, pace_clock) if paced else None
        logger.info(
            "video file %s: %s×%s at %.3f fps, %s frames",
            path,
            stream.codec_context.width,
            stream.codec_context.height,
            self.fps,
            self.frame_count or "unknown",
        )

    def _open(self) -> av.VideoStream:
        self.close()
        try:
            container = av.open(self.path)
        except (av.FFmpegError, UnicodeDecodeError) as exc:
            raise SourceError("unreadable", f"{self.path} is not a video FFmpeg can read: {exc}") from exc
        # FFmpeg's "tty" demuxer renders any .txt file as ANSI-art video: text is never a recording.
        if not container.streams.video or container.format.name == "tty":
            container.close()
            raise SourceError("unreadable", f"{self.path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        self._container = container
        self._decoded = container.decode(stream)
        return stream

    def _next_frame(self) -> av.VideoFrame | None:
        for attempt in range(2):
            try:
                return next(self._decoded)
            except StopIteration:
                if not self.loop:
                    return None
                if attempt:
                    raise SourceError("unreadable", f"{self.path} has no decodable frame") from None
                self._open()
            except av.FFmpegError as exc:
                raise SourceError("read_failed", f"decoding {self.path} failed: {exc}") from exc
        return None

    def read(self) -> np.ndarray | None:
        frame = self._pending if self._pending is not None else self._next_frame()
        self._pending = None
        if frame is None:
            return None
        image = letterbox(frame.to_ndarray(format="bgr24"), self.width, self.height)
        if self._pacer is not None:
            self._pacer.wait()
        return image

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
            self._decoded = iter(())
