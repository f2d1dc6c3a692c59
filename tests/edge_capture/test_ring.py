"""FrameRing: latest-frame-wins, bounded history, waiters on several loops, close."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from edge_capture.frames import SourceFrame
from edge_capture.ring import FrameRing, RingClosed, RingReader

IMAGE = np.zeros((8, 8, 3), np.uint8)


def frame(index: int, monotonic_ns: int | None = None) -> SourceFrame:
    now = time.monotonic_ns() if monotonic_ns is None else monotonic_ns
    return SourceFrame(index, time.time_ns(), now, IMAGE.copy())


def put_later(ring: FrameRing, frames: list[SourceFrame], delay: float = 0.05) -> threading.Thread:
    """Put frames from another thread, as the capture thread does."""

    def run() -> None:
        time.sleep(delay)
        for f in frames:
            ring.put(f)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_latest_is_the_newest_frame() -> None:
    ring = FrameRing()
    assert ring.latest() is None
    for i in range(3):
        ring.put(frame(i))
    latest = ring.latest()
    assert latest is not None and latest.index == 2
    assert ring.frames_put == 3


def test_indexes_must_increase() -> None:
    ring = FrameRing()
    ring.put(frame(4))
    with pytest.raises(ValueError):
        ring.put(frame(4))


async def test_next_after_skips_to_the_newest_and_the_reader_counts_skips() -> None:
    ring = FrameRing()
    reader = RingReader(ring)
    ring.put(frame(0))
    assert (await reader.next()).index == 0
    for i in range(1, 10):
        ring.put(frame(i))
    got = await ring.next_after(3)
    assert got.index == 9
    assert (await reader.next()).index == 9
    assert reader.frames_skipped == 8
    assert reader.frames_read == 2


async def test_next_after_none_returns_at_once_when_a_frame_exists() -> None:
    ring = FrameRing()
    ring.put(frame(0))
    assert (await asyncio.wait_for(ring.next_after(None), 0.5)).index == 0


async def test_waiter_is_woken_by_a_put_from_another_thread() -> None:
    ring = FrameRing()
    ring.put(frame(0))
    thread = put_later(ring, [frame(1)])
    got = await asyncio.wait_for(ring.next_after(0), 2.0)
    thread.join()
    assert got.index == 1


async def test_a_woken_waiter_gets_the_newest_frame_at_delivery() -> None:
    ring = FrameRing()
    task = asyncio.ensure_future(ring.next_after(None))
    await asyncio.sleep(0)
    assert ring.waiting == 1
    ring.put(frame(0))
    ring.put(frame(1))  # lands before the loop runs the wake-up
    assert (await asyncio.wait_for(task, 1.0)).index == 1


def test_waiters_on_two_loops_in_two_threads_are_all_woken() -> None:
    ring = FrameRing()
    results: dict[str, int] = {}
    ready = threading.Barrier(3)

    def consumer(name: str) -> None:
        async def main() -> None:
            waiter = asyncio.ensure_future(ring.next_after(None))
            await asyncio.sleep(0)
            ready.wait()
            results[name] = (await asyncio.wait_for(waiter, 2.0)).index

        asyncio.run(main())

    threads = [threading.Thread(target=consumer, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    ready.wait()
    deadline = time.monotonic() + 2.0
    while ring.waiting < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    ring.put(frame(0))
    for t in threads:
        t.join(3.0)
    assert results == {"a": 0, "b": 0}


async def test_close_wakes_waiters_with_ring_closed() -> None:
    ring = FrameRing()
    ring.put(frame(0))
    waiters = [asyncio.ensure_future(ring.next_after(0)) for _ in range(3)]
    await asyncio.sleep(0)
    threading.Thread(target=ring.close).start()
    for waiter in waiters:
        with pytest.raises(RingClosed):
            await asyncio.wait_for(waiter, 1.0)
    assert ring.closed
    with pytest.raises(RingClosed):
        ring.put(frame(1))
    with pytest.raises(RingClosed):
        await ring.next_after(None)
    ring.close()  # idempotent


async def test_cancelled_waiter_is_forgotten() -> None:
    ring = FrameRing()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ring.next_after(None), 0.02)
    assert ring.waiting == 0
    ring.put(frame(0))  # no stale future to resolve


def test_history_is_bounded_by_time() -> None:
    ring = FrameRing(history_seconds=10.0)
    start = time.monotonic_ns() - 50_000_000_000
    for i in range(51):  # 50 s of frames at 1 fps, the newest captured now
        ring.put(frame(i, start + i * 1_000_000_000))
    assert len(ring) == 11  # newest plus the 10 before it: 10 s
    assert ring.frames_evicted == 40
    recent = ring.since(4.5)
    assert [f.index for f in recent] == [46, 47, 48, 49, 50]
    assert ring.since(100.0)[0].index == 40


def test_history_is_bounded_by_bytes() -> None:
    ring = FrameRing(history_seconds=60.0, max_bytes=10 * IMAGE.nbytes)
    for i in range(100):
        ring.put(frame(i))
    assert len(ring) == 10
    latest = ring.latest()
    assert latest is not None and latest.index == 99
