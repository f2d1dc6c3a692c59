"""Offline scoring of a file: image metrics, freezes and no-contact stretches over a whole video or DICOM cine.

One decoding pass, sampled cleverly so that a 720p recording scores many times faster than real time:

- the field of view comes first, from a few frames spread over the whole file (`probe`), so a file that starts
  frozen or without contact still finds it; the DICOM regions bound it when the file has some;
- every decoded frame is compared with the one before on a thumbnail (every 4th pixel of the field of view's
  box) for freezes (qc.freeze): a freeze is a run of frames, a sparse subsample would blur where it starts and
  ends (a video decodes its reference frames, recordings.media: at least every fourth frame);
- the full per-frame metric set (qc.frame) runs on `metrics_per_second` frames a second (default 2).

A frame that is mostly dark (≥ 80 % of the thumbnail) never counts as frozen: dark and no-contact stretches are
reported as such. Metric summaries are given over all samples and over the *imaging* ones (neither dark nor no
contact), which are what the image-quality items of qc.score use.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from qc.contact import DEFAULT_CONTACT, ContactThresholds
from qc.depth import depth_mm
from qc.fov import best_fov
from qc.frame import THUMB_STRIDE, FrameAnalyser, FrameMetrics, summarise, to_grey
from qc.freeze import FROZEN_DIFFERENCE, MIN_FROZEN_SECONDS, FreezeTracker, FrozenRun
from qc.regions import UltrasoundRegion

Progress = Callable[[float], None]  # fraction done, 0–1


@dataclass(frozen=True)
class MediaInfo:
    path: str
    kind: str  # "mp4" | "dicom"
    width: int
    height: int
    fps: float | None
    frames: int | None  # None when the container does not say
    duration_s: float | None  # None for a single still
    regions: tuple[UltrasoundRegion, ...] = field(default=(), repr=False)


class Media(Protocol):
    info: MediaInfo
    levels: np.ndarray | None

    def probe(self, count: int) -> list[np.ndarray]: ...

    def frames(self) -> Iterator[tuple[float, np.ndarray]]: ...


@dataclass(frozen=True)
class OfflineConfig:
    metrics_per_second: float = 2.0
    frozen_difference: float = FROZEN_DIFFERENCE
    min_frozen_seconds: float = MIN_FROZEN_SECONDS
    dark_stretch: float = 0.85  # dark fraction from which a sample belongs to a dark stretch
    blank_share: float = 0.8  # thumbnail dark share from which a frame cannot be frozen
    probe_frames: int = 6
    contact: ContactThresholds = field(default_factory=lambda: DEFAULT_CONTACT)


@dataclass(frozen=True)
class Stretch:
    start: float
    end: float
    samples: int

    def to_dict(self) -> dict[str, float | int]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "samples": self.samples}


def stretches(times: Sequence[float], flags: Sequence[bool], period: float) -> list[Stretch]:
    """Runs of flagged samples; each ends at the next unflagged sample (or one `period` after the last)."""
    found: list[Stretch] = []
    start: int | None = None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            end = times[i] if i < len(times) else times[-1] + period
            found.append(Stretch(times[start], end, i - start))
            start = None
    return found


@dataclass
class MediaReport:
    path: str
    kind: str
    width: int
    height: int
    fps: float | None
    duration_s: float | None
    frames: int = 0
    fov: dict[str, Any] = field(default_factory=dict)
    samples: list[tuple[float, FrameMetrics]] = field(default_factory=list, repr=False)
    freezes: list[FrozenRun] = field(default_factory=list)
    no_contact: list[Stretch] = field(default_factory=list)
    dark: list[Stretch] = field(default_factory=list)
    depth_mm: float | None = None
    elapsed_s: float = 0.0

    def imaging(self, config: OfflineConfig = OfflineConfig()) -> list[FrameMetrics]:
        return [m for _, m in self.samples if not m.no_contact and m.dark_fraction < config.dark_stretch]

    def to_dict(self, config: OfflineConfig = OfflineConfig()) -> dict[str, Any]:
        media_s = self.duration_s or 0.0
        return {
            "path": self.path,
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "fps": None if self.fps is None else round(self.fps, 3),
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "frames": self.frames,
            "samples": len(self.samples),
            "fov": self.fov,
            "depth_mm": None if self.depth_mm is None else round(self.depth_mm, 2),
            "metrics": summarise([m for _, m in self.samples]),
            "imaging_metrics": summarise(self.imaging(config)),
            "freezes": [run.to_dict() for run in self.freezes],
            "no_contact": [s.to_dict() for s in self.no_contact],
            "dark": [s.to_dict() for s in self.dark],
            "elapsed_s": round(self.elapsed_s, 3),
            "realtime_factor": round(media_s / self.elapsed_s, 1) if media_s and self.elapsed_s else None,
        }


def _fov(media: Media, config: OfflineConfig) -> tuple[np.ndarray, str]:
    info = media.info
    probe = media.probe(config.probe_frames)
    thumbs = [to_grey(np.ascontiguousarray(f[::THUMB_STRIDE, ::THUMB_STRIDE])) for f in probe]
    return best_fov((info.height, info.width), thumbs, info.regions)


def analyse(media: Media, config: OfflineConfig = OfflineConfig(), progress: Progress | None = None) -> MediaReport:
    """One pass over `media`: the report of its frames (see the module docstring)."""
    started = time.perf_counter()
    info = media.info
    mask, how = _fov(media, config)
    analyser = FrameAnalyser(mask, contact=config.contact, levels=media.levels)
    box = analyser.box
    report = MediaReport(info.path, info.kind, info.width, info.height, info.fps, info.duration_s)
    report.fov = {"box": [box.x, box.y, box.w, box.h], "how": how, "area": round(float(mask.mean()), 4)}
    report.depth_mm = depth_mm(info.regions)
    tracker = FreezeTracker(config.frozen_difference, config.min_frozen_seconds)
    period = 1.0 / config.metrics_per_second
    next_sample = 0.0
    previous: np.ndarray | None = None
    last_t = 0.0
    step = max(1, round((info.fps or 30.0) * 2))
    for index, (t, image) in enumerate(media.frames()):
        thumb = analyser.thumbnail(image)
        difference = float("inf") if previous is None else analyser.difference(previous, thumb)
        if difference < config.frozen_difference and analyser.dark_share(thumb) >= config.blank_share:
            difference = float("inf")  # a blank picture is dark or without contact, not frozen
        tracker.update(t, difference)
        previous, last_t = thumb, t
        if t >= next_sample:
            report.samples.append((t, analyser.measure(image)))
            next_sample = max(next_sample + period, t)
        report.frames = index + 1
        if progress is not None and info.duration_s and index % step == 0:
            progress(min(1.0, t / info.duration_s))
    frame_period = 1.0 / info.fps if info.fps else 0.0
    tracker.finish(last_t + frame_period)
    if report.duration_s is None and last_t + frame_period > 0 and report.frames > 1:
        report.duration_s = last_t + frame_period  # the container did not say: as decoded
    report.freezes = tracker.runs
    times = [t for t, _ in report.samples]
    metrics = [m for _, m in report.samples]
    report.no_contact = stretches(times, [m.no_contact for m in metrics], period)
    dark = [m.dark_fraction >= config.dark_stretch and not m.no_contact for m in metrics]
    report.dark = stretches(times, dark, period)
    report.elapsed_s = time.perf_counter() - started
    if progress is not None:
        progress(1.0)
    return report
