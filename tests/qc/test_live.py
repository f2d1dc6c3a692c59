"""The live adapter on a real ring: alerts raised once and cleared once, the loop never blocked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
import pytest

from edge_capture.capture import CaptureThread
from edge_capture.frames import SourceFrame
from edge_capture.ring import FrameRing
from edge_capture.sources.synthetic import SyntheticSource
from qc.live import Alert, Hysteresis, LiveQc, LiveThresholds
from tests.qc.clips import CLOCK, synthetic
from tests.waiting import eventually

FAST = LiveThresholds(frozen_seconds=1.0, fov_warmup=5)


class HeldSource:
    """The synthetic scanner with its picture held still from frame `start` to frame `stop` (a frozen scanner)."""

    def __init__(self, source: SyntheticSource, start: int, stop: int) -> None:
        self.source, self.start, self.stop = source, start, stop
        self.width, self.height, self.fps = source.width, source.height, source.fps
        self.count = 0
        self.held: np.ndarray | None = None

    def read(self) -> np.ndarray:
        image = self.source.read()
        n, self.count = self.count, self.count + 1
        if self.start <= n < self.stop:
            self.held = image if self.held is None else self.held
            return self.held
        return image

    def close(self) -> None:
        self.source.close()


async def wait_for(condition: Callable[[], object], seconds: float) -> None:
    await eventually(condition, max(seconds, 30.0))


async def test_a_frozen_scanner_raises_and_clears_frozen() -> None:
    source = SyntheticSource("thyroid", 640, 360, 30.0, cycle_seconds=1.0, seed=3)  # paced: real time
    ring = FrameRing(history_seconds=1.0)
    capture = CaptureThread(HeldSource(source, start=45, stop=90), ring)  # held from 1.5 s to 3 s
    alerts: list[Alert] = []
    qc = LiveQc(ring, alerts.append, FAST, name="test")
    capture.start()
    task = asyncio.create_task(qc.run())
    try:
        await wait_for(lambda: any(a.state == "cleared" for a in alerts), 10.0)
    finally:
        ring.close()
        await asyncio.wait_for(task, 2.0)
        await asyncio.to_thread(capture.stop)
    assert [(a.code, a.state) for a in alerts] == [("frozen", "raised"), ("frozen", "cleared")]
    raised, cleared = alerts
    assert raised.text == "image frozen for 1 s" and raised.value is not None and raised.value >= 1.0
    # Raised on a frame of the held stretch once it has been still for a second (measured on the frames' clock, so on a
    # busy machine, where the paced source skips frames, fewer than 30 frames into it), cleared on the first moving one.
    assert raised.frame_index is not None and 45 < raised.frame_index < 90
    assert cleared.frame_index is not None and 90 <= cleared.frame_index <= 90 + 15
    snapshot = qc.snapshot()
    assert snapshot["fov"]["how"] == "temporal" and snapshot["metrics"]["dark_fraction"] < 0.5
    assert snapshot["active"] == []
    assert raised.to_dict()["code"] == "frozen"


async def test_a_stalled_source_is_frozen_too() -> None:
    source = synthetic("carotid", width=640, height=360)
    ring = FrameRing()
    alerts: list[Alert] = []
    qc = LiveQc(ring, alerts.append, LiveThresholds(frozen_seconds=0.6, stall_seconds=0.2))
    task = asyncio.create_task(qc.run())
    for k in range(10):
        ring.put(SourceFrame(k, time.time_ns(), time.monotonic_ns(), source.render(k, CLOCK)))
        await asyncio.sleep(0.05)
    await wait_for(lambda: alerts, 3.0)
    ring.close()
    await asyncio.wait_for(task, 2.0)
    assert (alerts[0].code, alerts[0].state, alerts[0].frame_index) == ("frozen", "raised", None)


def frames(fault: str | None, start: int, count: int, step_s: float = 0.2) -> list[SourceFrame]:
    source = synthetic("thyroid", fault, 640, 360)
    return [
        SourceFrame(k, int((CLOCK + k * step_s) * 1e9), int(k * step_s * 1e9), source.render(k, CLOCK))
        for k in range(start, start + count)
    ]


@pytest.mark.parametrize(("fault", "code", "text"), [
    ("saturated", "saturated", "gain saturated"),
    ("no_contact", "no_contact", "no contact"),
    ("black", "dark", "too dark"),
])  # fmt: skip
def test_picture_faults_raise_once_and_clear_once(fault: str, code: str, text: str) -> None:
    qc = LiveQc(FrameRing(), thresholds=LiveThresholds(fov_warmup=5))
    sequence = frames(None, 0, 10) + frames(fault, 10, 15) + frames(None, 25, 15)  # 2 s, 3 s, 3 s
    alerts = [a for frame in sequence for a in qc.process(frame)]
    assert [(a.code, a.state) for a in alerts] == [(code, "raised"), (code, "cleared")]
    assert alerts[0].text == text
    assert 10 + 5 <= (alerts[0].frame_index or 0) <= 10 + 6  # held for 1 s (5 samples) first
    assert 25 + 5 <= (alerts[1].frame_index or 0) <= 25 + 6


def test_hysteresis_band() -> None:
    state = Hysteresis(raise_after=1.0, clear_after=0.5)
    assert state.update(0.0, bad=True, good=False) is None
    assert state.update(0.9, bad=True, good=False) is None
    assert state.update(1.0, bad=True, good=False) == "raised"
    assert state.update(1.5, bad=True, good=False) is None  # raised once
    assert state.update(2.0, bad=False, good=False) is None  # between the thresholds: no change
    assert state.update(2.1, bad=False, good=True) is None
    assert state.update(2.6, bad=False, good=True) == "cleared"
    assert not state.active


def frames_at(fault: str | None, start: int, count: int, width: int, height: int) -> list[SourceFrame]:
    source = synthetic("thyroid", fault, width, height)
    return [
        SourceFrame(k, int((CLOCK + k * 0.2) * 1e9), int(k * 0.2 * 1e9), source.render(k, CLOCK))
        for k in range(start, start + count)
    ]


@pytest.mark.parametrize("fault", ["saturated", "no_contact", "black", "dark"])
def test_at_1080p_the_metrics_on_a_third_size_copy_give_the_halved_copys_verdicts(fault: str) -> None:
    """A 1080p frame is measured on a copy reduced by 3 (as much work as 720p's halving): the same alerts at the
    same frames as on the halved copy, and every share an alert is decided on within 5 % of it (or 0.01)."""
    assert LiveQc(FrameRing()).scale_for(720) == 2 and LiveQc(FrameRing()).scale_for(1080) == 3
    halved = LiveQc(FrameRing(), thresholds=LiveThresholds(fov_warmup=5, work_rows=10_000))
    third = LiveQc(FrameRing(), thresholds=LiveThresholds(fov_warmup=5))
    sequence = frames_at(None, 0, 10, 1920, 1080) + frames_at(fault, 10, 15, 1920, 1080)
    sequence += frames_at(None, 25, 10, 1920, 1080)
    verdicts: dict[str, list[tuple[str, str, int | None]]] = {"halved": [], "third": []}
    for frame in sequence:
        for name, qc in (("halved", halved), ("third", third)):
            verdicts[name] += [(a.code, a.state, a.frame_index) for a in qc.process(frame)]
        a, b = halved.snapshot()["metrics"], third.snapshot()["metrics"]
        assert a["no_contact"] == b["no_contact"], frame.index
        for share in ("saturation", "dark_fraction"):
            assert b[share] == pytest.approx(a[share], rel=0.05, abs=0.01), (share, frame.index)
    assert halved._analyser is not None and third._analyser is not None
    assert (halved._analyser.scale, third._analyser.scale) == (2, 3)
    assert verdicts["third"] == verdicts["halved"] and verdicts["third"]  # the fault raised (and cleared) alike


def test_a_frozen_1080p_picture_is_frozen_on_the_third_size_copy_too() -> None:
    """The freeze comparison is unchanged by the reduction (thumbnails of the full frame): a picture held for 3 s
    raises frozen at the same sample as with the halved copy."""
    moving = frames_at(None, 0, 10, 1920, 1080)
    held = [SourceFrame(k, int((CLOCK + k * 0.2) * 1e9), int(k * 0.2 * 1e9), moving[-1].image) for k in range(10, 25)]
    raised = []
    for thresholds in (LiveThresholds(fov_warmup=5, work_rows=10_000), LiveThresholds(fov_warmup=5)):
        qc = LiveQc(FrameRing(), thresholds=thresholds)
        raised.append([(a.code, a.state, a.frame_index) for f in moving + held for a in qc.process(f)])
    assert raised[0] == raised[1] and ("frozen", "raised") in {(c, s) for c, s, _ in raised[1]}
