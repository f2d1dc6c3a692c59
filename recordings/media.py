"""Frames from files, for offline scoring: an MP4 (PyAV) or a DICOM image or cine (pydicom).

Both give the same small interface (:class:`Media`): `info`, `probe(count)` (a few frames spread over the whole
file, to find the field of view from what changes even when the file starts frozen or without contact) and
`frames()` (every frame in order with its time in seconds on the media clock).

A video's frames are its luma plane as decoded, without any colour conversion: what QC needs is grey and the
conversion would cost more than the decoding. Most H.264 is limited range (black 16, white 235), so
`levels` is the 256-entry table that maps the plane to full-range grey (None when it is full range already).
Decoding is most of the cost of scoring a video, so by default only the frames other frames refer to are decoded
(H.264 non-reference B-frames are skipped: three frames in four in the edge's recordings, which have three fixed
non-reference B-frames, edge_capture/recording/mp4.py; about a third with x264's usual settings; nothing without
B-frames): freezes are still compared at least every fourth frame (133 ms at 30 fps), start and end to within
three frames, and a single repeated frame still cannot look like a run. `all_frames=True` decodes every frame.
`fast=True` also skips the deblocking filter, about a fifth of what is left: freezes are found the same, but
block edges then read as a little more sharpness.
DICOM frames are BGR, decoded as the edge's DICOM source decodes them (OpenCV for JPEG baseline, else pydicom).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.errors import InvalidDicomError
from pydicom.pixels.processing import apply_color_lut
from pydicom.pixels.utils import pixel_array
from pydicom.uid import JPEGBaseline8Bit, JPEGExtended12Bit

from qc.offline import MediaInfo
from qc.regions import CalibrationError, regions_from_dataset

FULL_RANGE_FORMATS = ("yuvj420p", "yuvj422p", "yuvj444p", "gray")
_QUIET = threading.Lock()
LIMITED_RANGE_LEVELS = np.clip((np.arange(256) - 16) * 255.0 / 219.0, 0, 255).round().astype(np.uint8)


class MediaError(Exception):
    """A file that cannot be scored: `code` is stable ("unreadable", "no_video", "no_pixels")."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@contextmanager
def quiet_pydicom() -> Iterator[list[warnings.WarningMessage]]:
    """Silence (and collect) pydicom's warnings about odd values: a sender's quirks are not our errors.

    `warnings.catch_warnings` is process-wide state, so callers in worker threads take turns.
    """
    with _QUIET, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def cine_fps(ds: Dataset) -> float | None:
    """The cine's playback rate from its DICOM attributes, or None when none is given."""
    frame_time_ms = float(ds.get("FrameTime", 0) or 0)
    if frame_time_ms > 0:
        return 1000.0 / frame_time_ms
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        rate = float(ds.get(keyword, 0) or 0)
        if rate > 0:
            return rate
    vector = [float(v) for v in (ds.get("FrameTimeVector") or [])[1:]]
    if vector and sum(vector) > 0:
        return 1000.0 * len(vector) / sum(vector)
    return None


def to_bgr(pixels: np.ndarray, ds: Dataset) -> np.ndarray:
    """One frame decoded by pydicom as 8-bit BGR: palette expanded, wide grey scaled by Bits Stored,
    MONOCHROME1 inverted. pydicom already converts YBR colour to RGB."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
        bits = 16 if pixels.dtype != np.uint8 else 8
    else:
        bits = int(ds.get("BitsStored", 8))
    if pixels.dtype != np.uint8:
        scale = 255.0 / float((1 << bits) - 1)
        pixels = np.clip(pixels.astype(np.float32) * scale, 0, 255).astype(np.uint8)
    if pixels.ndim == 2:
        if photometric == "MONOCHROME1":
            pixels = 255 - pixels
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)


def jpeg_frames(ds: Dataset, frame_count: int) -> list[bytes] | None:
    """The encapsulated JPEG codestreams, one per frame, when OpenCV can decode them exactly as the
    standard says (8-bit lossy JPEG, colour or MONOCHROME2); None otherwise."""
    file_meta = getattr(ds, "file_meta", None)
    syntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if syntax not in (JPEGBaseline8Bit, JPEGExtended12Bit) or int(ds.get("BitsStored", 8)) != 8:
        return None
    if str(ds.get("PhotometricInterpretation", "")) in ("MONOCHROME1", "PALETTE COLOR"):
        return None
    try:
        frames = list(generate_frames(ds.PixelData, number_of_frames=frame_count))
    except ValueError:
        return None
    return frames if len(frames) == frame_count else None


def _luma(frame: av.VideoFrame) -> np.ndarray:
    if frame.format.name.startswith(("yuv", "gray", "nv12")):
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
        return rows[:, : plane.width]
    return frame.to_ndarray(format="gray")


class VideoFile:
    """An MP4 (or any video PyAV opens); the first video stream."""

    def __init__(self, path: str | Path, fast: bool = False, all_frames: bool = False) -> None:
        self.path = str(path)
        self.fast, self.all_frames = fast, all_frames
        try:
            with av.open(self.path) as container:
                if not container.streams.video:
                    raise MediaError("no_video", f"{path} holds no video stream")
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate
                fps = float(rate) if rate else None
                duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
                if duration is None and container.duration:
                    duration = container.duration / av.time_base
                first = next(container.decode(stream))
                full = first.format.name in FULL_RANGE_FORMATS or first.color_range == 2
                # read while the container is open (PyAV 18.1.1 refuses a closed container's stream)
                counted = int(stream.frames)
        except (av.FFmpegError, StopIteration, OSError) as exc:
            raise MediaError("unreadable", f"{path} is not a readable video: {exc}") from exc
        self.levels = None if full else LIMITED_RANGE_LEVELS
        frames = counted or (round(duration * fps) if duration and fps else None)
        self.info = MediaInfo(self.path, "mp4", first.width, first.height, fps, frames, duration)

    def _open(self, threads: int = 0) -> tuple[av.container.InputContainer, av.VideoStream]:
        """The container and its video stream, decoded by `threads` threads (0: as many as cores)."""
        container = av.open(self.path)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        if self.fast:
            stream.codec_context.options = {"skip_loop_filter": "all"}
        return container, stream

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        container, stream = self._open()
        if not self.all_frames:
            stream.codec_context.skip_frame = "NONREF"
        with container:
            start: float | None = None
            for index, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if frame.time is not None else index / (self.info.fps or 30.0)
                start = t if start is None else start
                yield t - start, _luma(frame)

    def probe(self, count: int) -> list[np.ndarray]:
        """Up to `count` keyframes spread over the file (found by demuxing alone, then one seek and one decode
        each), topped up with every 3rd of the first 12 frames when the file has fewer than 4 keyframes."""
        container, stream = self._open(threads=1)  # one frame per seek: threads would only add latency
        stream.codec_context.options = {"skip_loop_filter": "all"}  # what changes does not need deblocking
        with container:
            keys = [p.pts for p in container.demux(stream) if p.is_keyframe and p.pts is not None]
            picks = sorted({keys[round(k * (len(keys) - 1) / max(1, count - 1))] for k in range(count)}) if keys else []
            found: list[np.ndarray] = []
            for pts in picks:
                try:
                    container.seek(pts, stream=stream, backward=True)
                    found.append(_luma(next(container.decode(stream))).copy())
                except (av.FFmpegError, StopIteration):
                    continue
            if len(found) < 4:
                container.seek(stream.start_time or 0, stream=stream, backward=True)
                for index, frame in zip(range(12), container.decode(stream), strict=False):
                    if index % 3 == 0:
                        found.append(_luma(frame).copy())
        return found


class DicomFile:
    """A single-frame or multi-frame DICOM image."""

    levels: np.ndarray | None = None

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self.ds = pydicom.dcmread(self.path)
        except (InvalidDicomError, OSError, ValueError) as exc:
            raise MediaError("unreadable", f"{path} is not a readable DICOM file: {exc}") from exc
        if "PixelData" not in self.ds:
            raise MediaError("no_pixels", f"{path} is DICOM without an image (no Pixel Data)")
        self.count = int(self.ds.get("NumberOfFrames", 1) or 1)
        self._jpeg = jpeg_frames(self.ds, self.count)
        fps = cine_fps(self.ds) if self.count > 1 else None
        try:
            regions = regions_from_dataset(self.ds)
        except (CalibrationError, AttributeError, TypeError, ValueError):
            regions = ()
        duration = self.count / fps if fps else None
        rows, columns = int(self.ds.Rows), int(self.ds.Columns)
        self.info = MediaInfo(self.path, "dicom", columns, rows, fps, self.count, duration, regions)

    def frame(self, index: int) -> np.ndarray:
        if self._jpeg is not None:
            image = cv2.imdecode(np.frombuffer(self._jpeg[index], np.uint8), cv2.IMREAD_COLOR)
            if image is not None:
                return image
        try:
            pixels = pixel_array(self.ds, index=index if self.count > 1 else None)
        except (RuntimeError, ValueError, NotImplementedError) as exc:
            raise MediaError("unreadable", f"cannot decode frame {index} of {self.path}: {exc}") from exc
        return to_bgr(pixels, self.ds)

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        period = 1.0 / self.info.fps if self.info.fps else 0.0
        for index in range(self.count):
            yield index * period, self.frame(index)

    def probe(self, count: int) -> list[np.ndarray]:
        picks = sorted({round(k * (self.count - 1) / max(1, count - 1)) for k in range(min(count, self.count))})
        return [self.frame(i) for i in picks]


def open_media(path: str | Path, fast: bool = False, all_frames: bool = False) -> VideoFile | DicomFile:
    """A DICOM file (by its preamble) or a video (`fast`, `all_frames`: see the module docstring)."""
    p = Path(path)
    if not p.is_file():
        raise MediaError("unreadable", f"{path} is not a file")
    with p.open("rb") as f:
        head = f.read(132)
    if head[128:132] == b"DICM" or p.suffix.lower() in (".dcm", ".dicom"):
        return DicomFile(p)
    return VideoFile(p, fast, all_frames)
