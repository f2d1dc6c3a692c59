"""The one QC adapter that knows frames arrive live: it samples a live frame source and raises alerts.

:class:`LiveQc` reads the newest frame from a :class:`FrameSource` (the edge passes its capture ring) about
`sample_hz` (5) times a second, and does the numeric work (qc.frame, qc.freeze) in a worker thread, one sample at a
time, so the event loop never waits on it. It keeps a short history: the last thumbnails (to find the field of view
from what changes, re-estimated every `fov_refresh` samples) and the freeze tracker.

Alerts have a stable code and a human text, and hysteresis: raised once when the condition has held for
`hold_seconds`, cleared once when the recovery condition has held as long (between the raise and clear
thresholds nothing changes). Codes, most specific first:

    no_contact  "no contact"        the probe is in air (qc.contact)
    dark        "too dark"          dark fraction ≥ `dark_raise` (85 %), cleared below `dark_clear` (70 %)
    saturated   "gain saturated"    saturation ≥ `saturated_raise` (5 %), cleared below `saturated_clear` (2 %)
    frozen      "image frozen for 2 s"   no change above 0.5 grey for `frozen_seconds` (2 s), or no new frame at
                                    all for as long; cleared on the first moving sample

A dark or probe-in-air picture hardly changes, so it never counts as frozen: its own alert says more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from qc.contact import ContactThresholds
from qc.fov import best_fov, mask_iou
from qc.frame import SCALE, THUMB_STRIDE, FrameAnalyser, FrameMetrics, to_grey
from qc.freeze import FreezeTracker

log = logging.getLogger(__name__)


class LiveFrame(Protocol):
    """One captured frame as live QC reads it (edge_capture.frames.SourceFrame fits)."""

    @property
    def index(self) -> int: ...  # increasing; a gap means frames were skipped

    @property
    def capture_time_ns(self) -> int: ...  # wall clock of the capture

    @property
    def monotonic_ns(self) -> int: ...  # monotonic clock of the capture

    @property
    def image(self) -> np.ndarray: ...  # BGR, height × width × 3, uint8


class FrameSource(Protocol):
    """Where live frames come from (edge_capture.ring.FrameRing fits)."""

    async def next_after(self, index: int | None) -> LiveFrame:
        """The newest frame after `index` (any if None), waiting for one; raises EOFError when none will come."""
        ...


@dataclass(frozen=True)
class LiveThresholds:
    sample_hz: float = 5.0
    frozen_seconds: float = 2.0
    frozen_difference: float = 0.5  # mean |Δgrey| below which two samples are the same picture
    stall_seconds: float = 0.5  # no new frame for this long: count the time as frozen
    saturated_raise: float = 0.05
    saturated_clear: float = 0.02
    dark_raise: float = 0.85
    dark_clear: float = 0.7
    hold_seconds: float = 1.0
    fov_warmup: int = 10  # samples before the first estimate from what changes
    fov_refresh: int = 50  # samples between re-estimates
    # The metrics are computed on a copy about this many rows high (at least halved, qc.frame.SCALE): a 1080p
    # frame is reduced by 3, as much work as a 720p one, with the same verdicts (every alert's metric is a share
    # of the field of view; tests/qc/test_live.py compares them).
    work_rows: int = 360
    contact: ContactThresholds = field(default_factory=ContactThresholds)


def alert_text(code: str, thresholds: LiveThresholds) -> str:
    return {
        "frozen": f"image frozen for {thresholds.frozen_seconds:g} s",
        "saturated": "gain saturated",
        "no_contact": "no contact",
        "dark": "too dark",
    }[code]


@dataclass(frozen=True)
class Alert:
    code: str  # frozen | saturated | no_contact | dark
    state: str  # raised | cleared
    text: str
    t: float  # wall clock of the deciding sample (LiveFrame.capture_time_ns / 1e9)
    frame_index: int | None  # None when decided without a new frame (a stalled source)
    value: float | None = None  # the metric behind it (frozen seconds, saturation, dark fraction)

    def to_dict(self) -> dict[str, Any]:
        value = None if self.value is None else round(self.value, 4)
        return {"code": self.code, "state": self.state, "text": self.text, "t": round(self.t, 3),
                "frame_index": self.frame_index, "value": value}  # fmt: skip


class Hysteresis:
    """Raised when `bad` has held for `raise_after` s, cleared when `good` has held for `clear_after` s."""

    def __init__(self, raise_after: float, clear_after: float) -> None:
        self.raise_after, self.clear_after = raise_after, clear_after
        self.active = False
        self._since: float | None = None

    def update(self, t: float, bad: bool, good: bool) -> str | None:
        waiting_for = good if self.active else bad
        if not waiting_for:
            self._since = None
            return None
        if self._since is None:
            self._since = t
        if t - self._since < (self.clear_after if self.active else self.raise_after):
            return None
        self.active, self._since = not self.active, None
        return "raised" if self.active else "cleared"


class LiveQc:
    """Samples `source` and calls `on_alert(alert)` on the event loop's thread; :meth:`snapshot` any time."""

    CODES = ("no_contact", "dark", "saturated", "frozen")

    def __init__(
        self,
        source: FrameSource,
        on_alert: Callable[[Alert], None] | None = None,
        thresholds: LiveThresholds = LiveThresholds(),
        fov_mask: np.ndarray | None = None,
        name: str = "",
    ) -> None:
        self.source = source
        self.last_index: int | None = None  # of the newest frame sampled
        self.on_alert = on_alert
        self.thresholds = t = thresholds
        self.name = name  # the consultation id, for the logs
        self.fixed_fov = fov_mask
        self.samples = 0
        self.alerts: list[Alert] = []
        self._states = {code: Hysteresis(t.hold_seconds, t.hold_seconds) for code in self.CODES}
        self._states["frozen"] = Hysteresis(0.0, 0.0)
        self._tracker = FreezeTracker(t.frozen_difference, t.frozen_seconds)
        self._thumbs: deque[np.ndarray] = deque(maxlen=t.fov_warmup)
        self._analyser: FrameAnalyser | None = None
        self._fov_how = "none"
        self._fov_age = 0
        # the last sample: its picture, and its thumbnail as the analyser that made it cut it
        self._previous: tuple[np.ndarray, FrameAnalyser, np.ndarray] | None = None
        self._metrics: FrameMetrics | None = None
        self._snapshot: dict[str, Any] = {"samples": 0, "metrics": None, "active": [], "fov": None}

    @property
    def active(self) -> frozenset[str]:
        return frozenset(code for code, state in self._states.items() if state.active)

    def snapshot(self) -> dict[str, Any]:
        """The latest sample's metrics, the field of view, the frozen time and the active alert codes."""
        return self._snapshot

    async def run(self) -> None:
        """Sample until the source ends (or the task is cancelled)."""
        period = 1.0 / self.thresholds.sample_hz
        log.info("%s: live QC sampling at %s Hz", self.name, self.thresholds.sample_hz)
        while True:
            started = time.monotonic()
            try:
                frame = await asyncio.wait_for(self.source.next_after(self.last_index), self.thresholds.stall_seconds)
            except TimeoutError:
                self._emit(self._stalled(time.monotonic(), time.time()))
                continue
            except EOFError:
                log.info("%s: live QC stopped after %s samples", self.name, self.samples)
                return
            self.last_index = frame.index
            self._emit(await asyncio.to_thread(self.process, frame))
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))

    def _emit(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self.alerts.append(alert)
            log.info("%s: QC %s %s (%s)", self.name, alert.code, alert.state, alert.text)
            if self.on_alert is not None:
                try:
                    self.on_alert(alert)
                except Exception:
                    log.exception("%s: on_alert failed for %s", self.name, alert.code)

    def process(self, frame: LiveFrame) -> list[Alert]:
        """One sample (the worker thread's part; also callable directly, one caller at a time)."""
        image = frame.image
        self.samples += 1
        self._update_fov(image)
        assert self._analyser is not None
        analyser = self._analyser
        thumb = analyser.thumbnail(image)
        difference = float("inf")
        if self._previous is not None and self._previous[0].shape == image.shape:
            before, made_by, before_thumb = self._previous
            if made_by is not analyser:  # a new field of view since: cut the same way
                before_thumb = analyser.thumbnail(before)
            difference = analyser.difference(before_thumb, thumb)
        self._previous = (image, analyser, thumb)
        metrics = self._metrics = analyser.measure(image)
        blank = metrics.no_contact or metrics.dark_fraction >= self.thresholds.dark_clear
        t = frame.monotonic_ns / 1e9
        self._tracker.update(t, float("inf") if blank else difference)
        alerts = self._evaluate(t, frame.capture_time_ns / 1e9, frame.index, metrics)
        self._publish(frame.index, t)
        return alerts

    def _stalled(self, now: float, wall: float) -> list[Alert]:
        """No new frame: the picture on screen is the last one, frozen."""
        if self._metrics is None:
            return []
        self._tracker.update(now, 0.0)
        alerts = self._evaluate(now, wall, None, self._metrics)
        self._publish(self.last_index, now)
        return alerts

    def _evaluate(self, t: float, wall: float, index: int | None, m: FrameMetrics) -> list[Alert]:
        th = self.thresholds
        frozen_for = self._tracker.frozen_for(t)
        conditions = {
            "no_contact": (m.no_contact, not m.no_contact, None),
            "dark": (m.dark_fraction >= th.dark_raise and not m.no_contact,
                     m.dark_fraction < th.dark_clear or m.no_contact, m.dark_fraction),
            "saturated": (m.saturation >= th.saturated_raise, m.saturation < th.saturated_clear, m.saturation),
            "frozen": (frozen_for >= th.frozen_seconds, self._tracker.frozen_since is None, frozen_for),
        }  # fmt: skip
        alerts = []
        for code, (bad, good, value) in conditions.items():
            state = self._states[code].update(t, bad, good)
            if state is not None:
                alerts.append(Alert(code, state, alert_text(code, th), wall, index, value))
        return alerts

    def _update_fov(self, image: np.ndarray) -> None:
        th = self.thresholds
        thumb = to_grey(np.ascontiguousarray(image[::THUMB_STRIDE, ::THUMB_STRIDE]))
        self._thumbs.append(thumb)
        self._fov_age += 1
        shape = image.shape[:2]
        if self.fixed_fov is not None:
            if self._analyser is None:
                self._set_fov(self.fixed_fov, "given")
            return
        if self._analyser is not None and self._analyser.frame_shape != shape:
            self._analyser, self._thumbs = None, deque([thumb], maxlen=th.fov_warmup)
        due = self._fov_age >= (th.fov_warmup if self._fov_how != "temporal" else th.fov_refresh)
        if self._analyser is not None and not (due and len(self._thumbs) >= th.fov_warmup):
            return
        mask, how = best_fov(shape, list(self._thumbs))
        current = self._analyser.fov_mask if self._analyser is not None else None
        if current is None or self._fov_how != "temporal":
            self._set_fov(mask, how)
        elif how == "temporal" and (mask.sum() >= 0.8 * current.sum() or mask_iou(mask, current) >= 0.6):
            self._set_fov(mask, how)  # a shrunken estimate (probe lifted, gain down) is not believed
        self._fov_age = 0

    def scale_for(self, height: int) -> int:
        """How much a frame ``height`` rows high is reduced for the metrics: to about ``work_rows``, at least halved."""
        return max(SCALE, round(height / self.thresholds.work_rows))

    def _set_fov(self, mask: np.ndarray, how: str) -> None:
        if how != self._fov_how:
            log.info("%s: field of view %s -> %s", self.name, self._fov_how, how)
        self._analyser = FrameAnalyser(mask, scale=self.scale_for(mask.shape[0]), contact=self.thresholds.contact)
        self._fov_how = how

    def _publish(self, index: int | None, t: float) -> None:
        box = self._analyser.box if self._analyser is not None else None
        self._snapshot = {
            "samples": self.samples,
            "frame_index": index,
            "t": round(t, 3),
            "metrics": None if self._metrics is None else self._metrics.to_dict(),
            "frozen_s": round(self._tracker.frozen_for(t), 3),
            "fov": None if box is None else {"box": [box.x, box.y, box.w, box.h], "how": self._fov_how},
            "active": sorted(self.active),
        }
