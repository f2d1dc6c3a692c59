"""Frozen image (QC.md §1): consecutive frames whose mean absolute difference is below 0.5 grey, as runs.

A scanner put on freeze, a stuck capture card or a hung encoder repeats one picture for seconds. Real clips
also repeat *single* frames (a 25 or 24 fps scanner captured at 30 fps): those are runs of one repeat, a
fraction of a second long, and are not reported: only runs lasting `min_seconds` (1 s) or more are.

A run starts at the frame that got repeated and ends when the first different frame arrives: that is how long
the screen showed one picture. A video encoder keeps refining a picture for a few frames after it stopped
changing, so the decoded frames still differ by a grey level or two: differences below `settle` (2 grey) in the
`settle_seconds` (0.5 s) just before a run are taken as part of it. Times are seconds on any one clock (the media
clock, `monotonic_ns` / 1e9).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

FROZEN_DIFFERENCE = 0.5  # grey levels
MIN_FROZEN_SECONDS = 1.0
SETTLE_DIFFERENCE = 2.0  # grey levels: an encoder still refining a still picture
SETTLE_SECONDS = 0.5


def mean_abs_difference(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean |a − b| over the mask (the whole image when None) of two grey uint8 images of one shape.
    Range 0–255; 0 = identical, below 0.5 = frozen."""
    m = None if mask is None else mask.astype(np.uint8)
    return float(cv2.mean(cv2.absdiff(a, b), mask=m)[0])


@dataclass(frozen=True)
class FrozenRun:
    start: float  # when the repeated picture first appeared
    end: float  # when a different picture replaced it (or the last frame, when none did)
    repeats: int  # how many consecutive frames repeated it

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, float | int]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "seconds": round(self.seconds, 3),
            "repeats": self.repeats,
        }


class FreezeTracker:
    """Follows a stream of (time, difference from the previous frame) and collects the frozen runs.

    `frozen_since` is the start of the current run (None when the picture is moving); `runs` the finished runs
    that lasted at least `min_seconds`. Call :meth:`finish` at the end of a file to close a run still open.
    """

    def __init__(
        self,
        threshold: float = FROZEN_DIFFERENCE,
        min_seconds: float = MIN_FROZEN_SECONDS,
        settle: float = SETTLE_DIFFERENCE,
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        self.threshold, self.min_seconds = threshold, min_seconds
        self.settle, self.settle_seconds = settle, settle_seconds
        self.runs: list[FrozenRun] = []
        self.frozen_since: float | None = None
        self._repeats = 0
        self._recent: deque[tuple[float, float]] = deque(maxlen=256)  # (time, difference) of the last frames

    def update(self, t: float, difference: float) -> FrozenRun | None:
        """Add one frame; returns the run it ended, when one that long enough just ended."""
        ended = None
        self._recent.append((t, difference))
        if difference < self.threshold:
            if self.frozen_since is None:
                self.frozen_since = self._start(t)
                self._repeats = 0
            self._repeats += 1
        elif self.frozen_since is not None:
            ended = self._close(t)
        return ended

    def _start(self, t: float) -> float:
        """When the picture of a run beginning at `t` first showed: the frame before the first of the settling
        frames just before it (or before `t` itself)."""
        recent = list(self._recent)
        first = len(recent) - 1
        while first > 0 and recent[first - 1][1] < self.settle and t - recent[first - 1][0] <= self.settle_seconds:
            first -= 1
        return recent[first - 1][0] if first > 0 else recent[first][0]

    def frozen_for(self, now: float) -> float:
        """Seconds the current run has lasted at `now` (0 when moving)."""
        return 0.0 if self.frozen_since is None else now - self.frozen_since

    def finish(self, t: float | None = None) -> FrozenRun | None:
        """Close a run still open at the end of the stream (at `t`, default the last frame's time)."""
        end = t if t is not None else (self._recent[-1][0] if self._recent else None)
        return self._close(end) if self.frozen_since is not None and end is not None else None

    def _close(self, end: float) -> FrozenRun | None:
        assert self.frozen_since is not None
        run = FrozenRun(self.frozen_since, end, self._repeats)
        self.frozen_since = None
        if run.seconds >= self.min_seconds:
            self.runs.append(run)
            return run
        return None


def frozen_runs(
    times: Sequence[float],
    differences: Sequence[float],
    threshold: float = FROZEN_DIFFERENCE,
    min_seconds: float = MIN_FROZEN_SECONDS,
    end: float | None = None,
    settle: float = SETTLE_DIFFERENCE,
) -> list[FrozenRun]:
    """The frozen runs of a sequence: `differences[i]` is frame i against frame i − 1 (`differences[0]` is
    ignored); `end` is when the last frame stopped showing (default: its own time)."""
    if len(times) != len(differences):
        raise ValueError("one difference per frame time")
    tracker = FreezeTracker(threshold, min_seconds, settle)
    for i, (t, difference) in enumerate(zip(times, differences, strict=True)):
        tracker.update(t, float("inf") if i == 0 else difference)
    tracker.finish(end)
    return tracker.runs
