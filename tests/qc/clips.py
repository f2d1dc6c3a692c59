"""Helpers for the QC tests: synthetic scanners (with faults) built once per session, clips and MP4 files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np

from edge_capture.sources.synthetic import SyntheticSource

CLOCK = 1_780_000_000.0
_SOURCES: dict[tuple[str, str | None, int, int], SyntheticSource] = {}


def synthetic(
    preset: str = "thyroid", fault: str | None = None, width: int = 1280, height: int = 720
) -> SyntheticSource:
    """One unpaced synthetic scanner per (preset, fault, size), built once per test session (a 1 s cycle)."""
    key = (preset, fault, width, height)
    if key not in _SOURCES:
        _SOURCES[key] = SyntheticSource(
            preset, width, height, 30.0, cycle_seconds=1.0, paced=False, fault=fault, clock=lambda: CLOCK
        )
    return _SOURCES[key]


def truth_mask(source: SyntheticSource) -> np.ndarray:
    mask = np.zeros((source.height, source.width), bool)
    mask[source.fov.slices] = True
    return mask


def write_mp4(path: Path, frames: Iterable[np.ndarray], fps: int = 30, preset: str = "ultrafast") -> Path:
    """Frames (BGR) to an H.264 MP4 (yuv420p, limited range); ultrafast has no B-frames, veryfast (the edge
    recorder's) has."""
    with av.open(str(path), "w") as container:
        stream: av.VideoStream | None = None
        for image in frames:
            if stream is None:
                stream = container.add_stream("libx264", rate=fps)
                stream.width, stream.height = image.shape[1], image.shape[0]
                stream.pix_fmt = "yuv420p"
                stream.options = {"preset": preset, "crf": "20"}
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        assert stream is not None
        for packet in stream.encode():
            container.mux(packet)
    return path


def clip(source: SyntheticSource, seconds: float, fps: int = 30) -> list[np.ndarray]:
    """`seconds` of the moving picture (cycle frame k at time k / fps)."""
    return [source.render(k, CLOCK + k / fps) for k in range(round(seconds * fps))]


def faulty_clip() -> list[np.ndarray]:
    """10 s at 640×360 and 30 fps with known faults: held still 2–4 s, probe in air 5–6.5 s, black 7.5–9 s."""
    normal = synthetic("thyroid", None, 640, 360)
    in_air = synthetic("thyroid", "no_contact", 640, 360)
    black = synthetic("thyroid", "black", 640, 360)
    frames = []
    for k in range(300):
        t = k / 30
        source = in_air if 5.0 <= t < 6.5 else black if 7.5 <= t < 9.0 else normal
        cycle = 65 if 2.0 <= t < 4.0 else k  # cycle frame 5 held; frame 120 (cycle 0) differs from it
        frames.append(source.render(cycle, CLOCK + t))
    return frames
