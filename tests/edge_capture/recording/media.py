"""Helpers for the recording tests: pictures, voice, and reading an MP4 back with PyAV."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from edge_capture.sealing.keys import Keyring
from edge_capture.sealing.sealed import read_sealed
from edge_capture.sources.base import Pacer
from tests.waiting import wait_until

__all__ = ["Decoded", "PatternCard", "decode", "peak_frequency", "picture", "tone", "wait_until"]


def picture(index: int, width: int = 320, height: int = 240) -> np.ndarray:
    """A BGR picture that moves a little every frame (so the encoder has something to encode)."""
    y, x = np.mgrid[0:height, 0:width]
    image = ((x + 4 * index) % 256).astype(np.uint8)
    return np.dstack([image, ((y + index) % 256).astype(np.uint8), np.full_like(image, 128)])


def tone(start_sample: int, samples: int, frequency: float = 440.0) -> np.ndarray:
    """Interleaved s16 stereo samples of a sine tone, continuing from ``start_sample``."""
    t = (start_sample + np.arange(samples)) / 48_000
    return np.repeat((8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16), 2)


class PatternCard:
    """The capture-card seam: moving pictures at ``fps``; ``resize_at`` frames in, the picture size changes."""

    def __init__(self, width: int, height: int, fps: float = 30.0, resize_at: int | None = None) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.resize_at = resize_at
        self.frames = 0
        self._pacer = Pacer(fps)

    def read(self) -> np.ndarray:
        self._pacer.wait()
        self.frames += 1
        if self.resize_at is not None and self.frames > self.resize_at:
            return picture(self.frames, self.width // 2, self.height // 2)
        return picture(self.frames, self.width, self.height)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Decoded:
    width: int
    height: int
    video_pts: list[float]  # seconds
    keyframes: list[float]  # seconds
    audio: np.ndarray  # mono float samples at 48 kHz (empty without a voice track)


def decode(path: Path, keys: Keyring | None = None) -> Decoded:
    """Every picture's pts, the keyframes and the voice of an MP4 (raises if any of it does not decode); a sealed
    file (the edge's spool) is opened with ``keys``."""
    data = read_sealed(path, keys) if keys is not None else path.read_bytes()
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        pts, keys = [], []
        for frame in container.decode(video=0):
            assert frame.pts is not None and frame.time_base is not None
            pts.append(float(frame.pts * frame.time_base))
            if frame.key_frame:
                keys.append(pts[-1])
    audio = np.zeros(0, np.float32)
    with av.open(io.BytesIO(data), "r") as container:
        if container.streams.audio:
            chunks = [f.to_ndarray()[0] for f in container.decode(audio=0)]
            audio = np.concatenate(chunks) if chunks else audio
    return Decoded(width, height, pts, keys, audio)


def peak_frequency(samples: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    return float(np.fft.rfftfreq(len(samples), 1 / 48_000)[int(np.argmax(power[1:])) + 1])
