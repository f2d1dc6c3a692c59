"""A DICOM cine loop (multi-frame) or still (single frame) replayed as a live source.

The playback rate comes from the cine's Frame Time (0018,1063), else Cine Rate (0018,0040), else
Recommended Display Frame Rate (0008,2144), else Frame Time Vector (0018,1065); a still is repeated at the
requested rate.

Most ultrasound cines are JPEG baseline. Their frames are split out of the encapsulated Pixel Data once
and each is decoded by OpenCV's libjpeg-turbo when shown (about 2 ms for 640×480, against tens of ms
through pydicom's generic path), so nothing large is kept in memory. Every other transfer syntax goes
through pydicom (Pillow decodes JPEG 2000) and its decoded frames are cached up to `cache_bytes`.
"""

from __future__ import annotations

import logging
import time

import cv2
import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels.utils import pixel_array

from edge_capture.errors import SourceError
from edge_capture.sources.base import PaceClock, Pacer, letterbox
from recordings.media import cine_fps, jpeg_frames, to_bgr

logger = logging.getLogger(__name__)

CACHE_BYTES = 256 << 20


class DicomCineSource:
    """A multi-frame DICOM (cine loop) or a single-frame DICOM (a still repeated at `fps`)."""

    def __init__(
        self,
        path: str,
        width: int,
        height: int,
        fps: float = 30.0,
        *,
        loop: bool = True,
        paced: bool = True,
        pace_clock: PaceClock = time,
        cache_bytes: int = CACHE_BYTES,
    ) -> None:
        self.path, self.width, self.height, self.loop = path, width, height, loop
        self.cache_bytes = cache_bytes
        try:
            self._ds = pydicom.dcmread(path)
        except (InvalidDicomError, OSError, ValueError) as exc:
            raise SourceError("unreadable", f"{path} is not a readable DICOM file: {exc}") from exc
        if "PixelData" not in self._ds:
            raise SourceError("unreadable", f"{path} is DICOM without an image (no Pixel Data)")
        self.frame_count = int(self._ds.get("NumberOfFrames", 1) or 1)
        self.fps = (cine_fps(self._ds) if self.frame_count > 1 else None) or fps
        self._jpeg = jpeg_frames(self._ds, self.frame_count)
        self._cache: dict[int, np.ndarray] = {}
        self._cached_bytes = 0
        self._position = 0
        self._decode(0)  # fail now, with a clear message, rather than on the capture thread
        self._pacer = Pacer(self.fps, pace_clock) if paced else None
        logger.info(
            "DICOM %s: %s frame(s) %s×%s at %.3f fps (%s)",
            path,
            self.frame_count,
            self._ds.get("Columns"),
            self._ds.get("Rows"),
            self.fps,
            "OpenCV JPEG" if self._jpeg else "pydicom",
        )

    def _decode(self, index: int) -> np.ndarray:
        if self._jpeg is not None:
            image = cv2.imdecode(np.frombuffer(self._jpeg[index], np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise SourceError("unreadable", f"frame {index} of {self.path} is not a decodable JPEG")
            return image
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        try:
            pixels = pixel_array(self._ds, index=index if self.frame_count > 1 else None)
        except (RuntimeError, ValueError, NotImplementedError) as exc:
            raise SourceError("unreadable", f"cannot decode the pixels of {self.path}: {exc}") from exc
        image = to_bgr(pixels, self._ds)
        if self._cached_bytes + image.nbytes <= self.cache_bytes:
            self._cache[index] = image
            self._cached_bytes += image.nbytes
        return image

    def read(self) -> np.ndarray | None:
        if self._position >= self.frame_count:
            if not self.loop:
                return None
            self._position = 0
        image = letterbox(self._decode(self._position), self.width, self.height)
        self._position += 1
        if self._pacer is not None:
            self._pacer.wait()
        return image

    def close(self) -> None:
        self._cache.clear()
        self._cached_bytes = 0
