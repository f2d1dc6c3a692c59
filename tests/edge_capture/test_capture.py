"""CaptureThread: gap-free stamped frames into the ring, off the event loop, errors retried."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import numpy as np

from edge_capture.capture import CaptureThread
from edge_capture.ring import FrameRing, RingReader
from edge_capture.sources.base import Pacer, SourceError
from edge_capture.sources.synthetic import SyntheticSource
from tests.waiting import wait_until


class ScriptedCard:
    """The capture-card seam: delivers a scripted sequence of frames (an int: a grey level), failures
    (a SourceError) and the end of a recording (None), paced at `fps`."""

    def __init__(self, script: list[int | SourceError | None], fps: float = 100.0) -> None:
        self.width, self.height, self.fps = 32, 16, fps
        self.script = list(script)
        self.closed = False
        self._pacer = Pacer(fps)

    def read(self) -> np.ndarray | None:
        self._pacer.wait()
        step = self.script.pop(0) if self.script else None
        if isinstance(step, SourceError):
            raise step
        if step is None:
            return None
        return np.full((self.height, self.width, 3), step, np.uint8)

    def close(self) -> None:
        self.closed = True


def wait_for(condition: Callable[[], object]) -> None:
    assert wait_until(condition)


def test_frames_are_gap_free_stamped_and_the_run_ends_with_the_source() -> None:
    ring = FrameRing()
    card = ScriptedCard([10, 20, 30, 40, None])
    capture = CaptureThread(card, ring, name="test")
    before_wall, before_mono = time.time_ns(), time.monotonic_ns()
    capture.start()
    wait_for(lambda: not capture.running)
    frames = ring.since(60.0)
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 20, 30, 40]
    assert all(before_wall <= f.capture_time_ns <= time.time_ns() for f in frames)
    assert all(before_mono <= f.monotonic_ns for f in frames)
    assert [f.monotonic_ns for f in frames] == sorted(f.monotonic_ns for f in frames)
    stats = capture.stats()
    assert (stats.frames_captured, stats.read_errors, stats.running) == (4, 0, False)
    assert card.closed


def test_read_errors_are_counted_and_retried_with_backoff() -> None:
    ring = FrameRing()
    failure = SourceError("read_failed", "capture device 0 delivered no frame")
    card = ScriptedCard([1, failure, failure, 2, None])
    capture = CaptureThread(card, ring, backoff_initial=0.02, backoff_max=0.05)
    capture.start()
    wait_for(lambda: not capture.running)
    stats = capture.stats()
    assert stats.read_errors == 2
    assert stats.last_error == "read_failed: capture device 0 delivered no frame"
    assert [f.index for f in ring.since(60.0)] == [0, 1]


def test_stop_ends_an_endless_source_and_closes_it() -> None:
    card = ScriptedCard([7] * 10_000)
    capture = CaptureThread(card, FrameRing())
    capture.start()
    wait_for(lambda: capture.stats().frames_captured >= 5)
    assert capture.stop(timeout=2.0)
    assert not capture.running
    assert card.closed


def test_stop_before_start_closes_the_source() -> None:
    card = ScriptedCard([])
    assert CaptureThread(card, FrameRing()).stop()
    assert card.closed


def test_closing_the_ring_ends_the_capture() -> None:
    ring = FrameRing()
    capture = CaptureThread(ScriptedCard([5] * 10_000), ring)
    capture.start()
    wait_for(lambda: ring.frames_put >= 3)
    ring.close()
    wait_for(lambda: not capture.running)
    assert not capture.running


def test_a_second_run_on_the_same_ring_continues_the_indexes() -> None:
    ring = FrameRing()
    first = CaptureThread(ScriptedCard([1, 2, None]), ring)
    first.start()
    wait_for(lambda: not first.running)
    second = CaptureThread(ScriptedCard([3, None]), ring)
    second.start()
    wait_for(lambda: not second.running)
    assert [f.index for f in ring.since(60.0)] == [0, 1, 2]


class ThreadNoting(SyntheticSource):
    """The synthetic scanner, noting which thread each read (and its pacing sleep) ran on."""

    def __init__(self) -> None:
        super().__init__("carotid", 640, 360, 30.0, cycle_seconds=1.0)
        self.threads: set[int] = set()

    def read(self) -> np.ndarray:
        self.threads.add(threading.get_ident())
        return super().read()


async def test_live_synthetic_capture_feeds_an_async_consumer_without_blocking_the_loop() -> None:
    ring = FrameRing()
    source = await asyncio.to_thread(ThreadNoting)
    capture = CaptureThread(source, ring, name="synthetic")
    capture.start()
    reader = RingReader(ring)
    ticks: list[int] = []

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(0.01)
            ticks.append(ring.frames_put)

    beat = asyncio.ensure_future(heartbeat())
    indexes = [(await asyncio.wait_for(reader.next(), 30)).index for _ in range(36)]
    beat.cancel()
    assert await asyncio.to_thread(capture.stop)
    assert indexes == sorted(set(indexes))
    assert reader.frames_skipped == indexes[-1] - indexes[0] - (len(indexes) - 1)
    # Every read and pacing sleep ran on the capture thread, and the loop kept running while frames came.
    assert source.threads == {capture._thread.ident} and threading.get_ident() not in source.threads
    assert len(set(ticks)) >= 5  # the heartbeat ran between frames, again and again
    assert capture.stats().frames_captured >= 36
    latest = ring.latest()
    assert latest is not None and latest.image.shape == (360, 640, 3)
