"""What a frame source is, how a spec string names one, and the helpers every source shares.

A source hands out BGR frames of exactly the size it was asked for, one per `read()`. A real device
blocks until the card delivers a frame; a synthetic or file source paces itself to its frame rate, so the
capture thread downstream never needs to know which kind it has. Source specs:

    synthetic:thyroid | synthetic:carotid   the B-mode generator (synthetic.py)
    file:/path/video.mp4 | file:/path/cine.dcm   a video or DICOM file, looped (file.py)
    device:/dev/video0 | device:0             a V4L2/UVC capture card (device.py)

Errors are `SourceError` (edge_capture/errors.py) with a stable `code` and a readable message:

    SourceError         code
    ├── bad spec        bad_spec      the string names no known source
    ├── missing file    not_found
    ├── unreadable      unreadable    a file that is neither a video nor a DICOM image
    ├── no device       no_device     nothing at that path or index, or it does not open
    └── read failure    read_failed   a device stopped delivering (the capture thread retries)
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from edge_capture.errors import SourceError


@runtime_checkable
class FrameSource(Protocol):
    width: int
    height: int
    fps: float

    def read(self) -> np.ndarray | None:
        """Block until the next H×W×3 uint8 BGR frame; None once a non-looping file has ended."""
        ...

    def close(self) -> None: ...


class PaceClock(Protocol):
    """Where a pacer reads the time and how it waits: the `time` module itself, or a test's clock."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float, /) -> None: ...


class Pacer:
    """Sleeps until the next frame deadline so a file or synthetic source runs at its frame rate.

    Deadlines advance by whole periods from the first frame, so sleep jitter does not accumulate into
    drift; when the reader fell behind by more than a period the schedule restarts from now instead of
    bursting frames to catch up (a live source would have dropped them too).
    """

    def __init__(self, fps: float, clock: PaceClock = time) -> None:
        if fps <= 0:
            raise ValueError("fps must be > 0")
        self.period = 1.0 / fps
        self.clock = clock
        self._next: float | None = None

    def wait(self) -> None:
        now = self.clock.monotonic()
        if self._next is None or now - self._next > self.period:
            self._next = now
        elif self._next > now:
            self.clock.sleep(self._next - now)
        self._next += self.period


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Grey (H×W or H×W×1) or BGRA to 3-channel BGR; BGR passes through."""
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Fit `image` into width×height keeping its aspect ratio, with black bars.

    Never stretch: an ultrasound picture distorted in one axis corrupts every distance measured on it.
    """
    image = to_bgr(image)
    src_h, src_w = image.shape[:2]
    if (src_w, src_h) == (width, height):
        return image
    scale = min(width / src_w, height / src_h)
    new_w, new_h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    out = np.zeros((height, width, 3), np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    out[top : top + new_h, left : left + new_w] = resized
    return out


def open_source(spec: str, width: int = 1280, height: int = 720, fps: float = 30.0) -> FrameSource:
    """Open the source named by `spec`. `fps` paces synthetic sources and single DICOM stills; files
    play at their own rate and devices are asked for it."""
    if width % 2 or height % 2 or width <= 0 or height <= 0:
        raise SourceError("bad_spec", f"frame size must be positive and even, got {width}×{height}")
    kind, sep, target = spec.partition(":")
    if not sep or not target:
        raise SourceError("bad_spec", f"source spec {spec!r} is not kind:target (synthetic, file, device)")
    if kind == "synthetic":
        from edge_capture.sources.synthetic import SyntheticSource

        return SyntheticSource(target, width, height, fps)
    if kind == "file":
        from edge_capture.sources.file import open_file

        return open_file(target, width, height, fps)
    if kind == "device":
        from edge_capture.sources.device import DeviceSource

        device: str | int = int(target) if target.isdigit() else target
        return DeviceSource(device, width, height, fps)
    raise SourceError("bad_spec", f"unknown source kind {kind!r} in {spec!r} (synthetic, file, device)")
