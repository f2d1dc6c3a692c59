"""The one frame type every consumer of the capture ring sees.

A `SourceFrame` is created once by the capture thread and then shared, without copies, by every WebRTC
track, the still capture, the recorder and QC, possibly on several threads. It is therefore immutable:
the dataclass is frozen and the pixel array is made read-only, so no consumer can scribble on another's
picture. The I420 planes that the video encoders want are computed lazily, once, and cached on the
frame, so N viewers cost one colour conversion instead of N.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass(frozen=True, eq=False)
class SourceFrame:
    """One captured picture with the two clocks stamped right after the source returned it.

    `capture_time_ns` is the wall clock (`time.time_ns()`), comparable across machines once the clock
    offset is known: it feeds glass-to-glass latency. `monotonic_ns` (`time.monotonic_ns()`) never jumps
    and feeds presentation timestamps. `index` counts frames of one capture run without gaps, so a consumer
    that sees index 7 after 4 knows it skipped two frames.
    """

    index: int
    capture_time_ns: int
    monotonic_ns: int
    image: np.ndarray
    _i420: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        image = self.image
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 uint8 BGR image, got {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        if height % 2 or width % 2:
            # yuv420p subsamples chroma 2×2: odd sizes cannot be encoded without cropping.
            raise ValueError(f"frame size must be even for yuv420p, got {width}×{height}")
        if self.index < 0:
            raise ValueError(f"frame index must be >= 0, got {self.index}")
        image.flags.writeable = False

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    def i420(self) -> np.ndarray:
        """The (H*3/2)×W uint8 yuv420p planes (Y, then U, then V), as PyAV's `VideoFrame.from_ndarray`
        takes them with format "yuv420p".

        Computed on first use and cached. Two threads racing on the first call both compute the same
        planes and one result wins; that costs one extra conversion, never a wrong picture, and keeps
        every frame free of a lock.
        """
        cached = self._i420
        if cached is None:
            cached = cv2.cvtColor(self.image, cv2.COLOR_BGR2YUV_I420)
            cached.flags.writeable = False
            object.__setattr__(self, "_i420", cached)
        return cached

    @property
    def nbytes(self) -> int:
        """Bytes held by this frame's pixels (the BGR image plus the I420 planes once computed)."""
        cached = self._i420
        return int(self.image.nbytes + (cached.nbytes if cached is not None else 0))
