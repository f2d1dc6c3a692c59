"""A V4L2/UVC capture card (HDMI/SDI grabber on the scanner's video output) through OpenCV.

The card is asked for MJPG at the wanted size and rate, since most USB grabbers only reach 1080p30
compressed, and for a one-frame driver buffer, so `read()` returns what the scanner shows now rather than
what it showed a few frames ago. A failed read releases the device and raises `SourceError`; the next
`read()` reopens it, so a card that was unplugged and plugged back in recovers through the capture
thread's retry with backoff.
"""

from __future__ import annotations

import logging
import os
import re
import sys

import cv2
import numpy as np

from edge_capture.errors import SourceError
from edge_capture.sources.base import letterbox

logger = logging.getLogger(__name__)


def device_path(device: str | int) -> str | None:
    """The /dev node a device index or path refers to, when the platform has them (Linux)."""
    if isinstance(device, str):
        return device
    return f"/dev/video{device}" if sys.platform.startswith("linux") else None


def _open_target(device: str | int) -> str | int:
    """Index N for /dev/videoN (also through /dev/v4l/by-id symlinks): OpenCV's V4L2 backend opens
    indexes on every build, names only on some."""
    if isinstance(device, int):
        return device
    match = re.fullmatch(r"/dev/video(\d+)", os.path.realpath(device))
    return int(match.group(1)) if match else device


class DeviceSource:
    """Frames from a capture card; `read()` blocks on the device."""

    def __init__(self, device: str | int, width: int = 1280, height: int = 720, fps: float = 30.0) -> None:
        self.device = device
        self.width = width
        self.height = height
        self.fps = fps
        self._capture: cv2.VideoCapture | None = None
        self._open()

    def _open(self) -> None:
        path = device_path(self.device)
        if path is not None and not os.path.exists(path):
            raise SourceError("no_device", f"no capture device at {path}: is the capture card plugged in?")
        capture = cv2.VideoCapture(_open_target(self.device), cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise SourceError("no_device", f"{path or self.device} is not a capture device OpenCV can open")
        capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        capture.set(cv2.CAP_PROP_FPS, self.fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        got = (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        logger.info(
            "opened capture device %s: asked %s×%s@%s, got %s×%s@%s",
            path or self.device,
            self.width,
            self.height,
            self.fps,
            int(got[0]),
            int(got[1]),
            capture.get(cv2.CAP_PROP_FPS),
        )
        self._capture = capture

    def read(self) -> np.ndarray:
        if self._capture is None:
            self._open()
        assert self._capture is not None
        ok, image = self._capture.read()
        if not ok or image is None:
            self.close()
            raise SourceError("read_failed", f"capture device {self.device} delivered no frame")
        return letterbox(image, self.width, self.height)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
