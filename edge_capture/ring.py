"""The one ring buffer between the capture thread and every consumer of the picture.

Live video must be latest-frame-wins: a queue in front of a slow encoder makes latency grow without end
(aiortc issues #1192, #104, #749). So `put` never waits and never queues for a consumer: it appends the
frame to a bounded history and wakes whoever is waiting. A consumer asks for the newest frame after the
one it last handled (`next_after`) and learns from the index gap how many it skipped.

`put` runs on the capture thread; consumers await on one or more asyncio loops. Waiters are woken with
`loop.call_soon_threadsafe`, and the future is resolved on its own loop with the newest frame at that
moment, so a consumer never starts on a frame that is already stale.

The history (`since`, for clips) is bounded by time and, as a guard against memory exhaustion at high
resolutions, by bytes: 10 s of 1080p30 BGR is about 1.9 GB.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from edge_capture.errors import RingClosed
from edge_capture.frames import SourceFrame

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1 << 30


@dataclass
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[SourceFrame]
    after: int | None


class FrameRing:
    """Thread-safe latest-frame-wins ring with a bounded history of recent frames."""

    def __init__(self, history_seconds: float = 10.0, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if history_seconds <= 0:
            raise ValueError("history_seconds must be > 0")
        self.history_seconds = history_seconds
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._frames: deque[SourceFrame] = deque()
        self._bytes = 0
        self._waiters: list[_Waiter] = []
        self._closed = False
        self._byte_cap_logged = False
        self.frames_put = 0
        self.frames_evicted = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    def put(self, frame: SourceFrame) -> None:
        """Add the newest frame and wake every waiter it satisfies. Never blocks on consumers."""
        with self._lock:
            if self._closed:
                raise RingClosed("ring is closed")
            if self._frames and frame.index <= self._frames[-1].index:
                raise ValueError(f"frame index {frame.index} does not follow {self._frames[-1].index}")
            self._frames.append(frame)
            self._bytes += frame.image.nbytes
            self.frames_put += 1
            self._evict(frame.monotonic_ns)
            ready = [w for w in self._waiters if w.after is None or frame.index > w.after]
            if ready:
                self._waiters = [w for w in self._waiters if not (w.after is None or frame.index > w.after)]
        for waiter in ready:
            self._wake(waiter)

    def _evict(self, newest_ns: int) -> None:
        oldest_kept_ns = newest_ns - int(self.history_seconds * 1e9)
        frames = self._frames
        while len(frames) > 1 and (frames[0].monotonic_ns < oldest_kept_ns or self._bytes > self.max_bytes):
            if frames[0].monotonic_ns >= oldest_kept_ns and not self._byte_cap_logged:
                self._byte_cap_logged = True
                logger.warning(
                    "ring history capped at %s bytes: keeps fewer than %s s", self.max_bytes, self.history_seconds
                )
            self._bytes -= frames.popleft().image.nbytes
            self.frames_evicted += 1

    def _wake(self, waiter: _Waiter) -> None:
        try:
            waiter.loop.call_soon_threadsafe(self._resolve, waiter.future)
        except RuntimeError:
            # The consumer's loop is already closed: nobody is left to tell.
            logger.debug("waiter's loop is closed; dropped")

    def _resolve(self, future: asyncio.Future[SourceFrame]) -> None:
        """Runs on the waiter's own loop: hand over the newest frame (or the close) right now."""
        if future.done():
            return
        with self._lock:
            newest = self._frames[-1] if self._frames else None
            closed = self._closed
        if closed or newest is None:
            future.set_exception(RingClosed("ring is closed"))
        else:
            future.set_result(newest)

    def latest(self) -> SourceFrame | None:
        with self._lock:
            return self._frames[-1] if self._frames else None

    async def next_after(self, index: int | None) -> SourceFrame:
        """The newest frame whose index is greater than `index` (any frame if None), waiting if needed.

        Older frames are skipped on purpose: the caller counts `frame.index - index - 1` as dropped.
        Raises `RingClosed` when the ring is, or gets, closed. Cancelling the await is safe.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise RingClosed("ring is closed")
            newest = self._frames[-1] if self._frames else None
            if newest is not None and (index is None or newest.index > index):
                return newest
            waiter = _Waiter(loop, loop.create_future(), index)
            self._waiters.append(waiter)
        try:
            return await waiter.future
        finally:
            if not waiter.future.done() or waiter.future.cancelled():
                with self._lock:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)

    def since(self, seconds: float) -> list[SourceFrame]:
        """The frames captured in the last `seconds` (monotonic clock), oldest first."""
        cutoff_ns = time.monotonic_ns() - int(seconds * 1e9)
        with self._lock:
            return [f for f in self._frames if f.monotonic_ns >= cutoff_ns]

    def close(self) -> None:
        """Refuse further frames and fail every waiter with `RingClosed`. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            waiters, self._waiters = self._waiters, []
        logger.info("ring closed after %s frames (%s waiters released)", self.frames_put, len(waiters))
        for waiter in waiters:
            self._wake(waiter)

    @property
    def waiting(self) -> int:
        """Number of consumers currently awaiting a frame."""
        with self._lock:
            return len(self._waiters)


class RingReader:
    """One consumer's cursor on the ring: returns ever newer frames and counts the ones it skipped."""

    def __init__(self, ring: FrameRing) -> None:
        self.ring = ring
        self.last_index: int | None = None
        self.frames_read = 0
        self.frames_skipped = 0

    async def next(self) -> SourceFrame:
        frame = await self.ring.next_after(self.last_index)
        if self.last_index is not None:
            self.frames_skipped += frame.index - self.last_index - 1
        self.last_index = frame.index
        self.frames_read += 1
        return frame
