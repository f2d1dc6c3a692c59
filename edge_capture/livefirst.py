"""Live first: the recorder encodes a frame only once the live encoder has encoded it.

At every captured frame two encoders want the CPU at the same instant: the live one (a page waits for its
packets) and the recorder's (nobody waits for it). On an edge with two cores that also runs the sonographer's
browser, letting them race moved the live glass-to-glass latency by 10–20 ms (bench/qc.py --edge). Lowering the
recorder's priority would need the privilege to raise it again when it falls behind; this handshake needs none:
the shared live encoder calls :meth:`LiveFirst.encoded` after each frame, and the recorder's thread calls
:meth:`LiveFirst.wait` before encoding frame ``index``. The wait ends when the live encoder has passed that frame,
after ``timeout`` seconds at most (a live encoder stuck or slow never holds the recording back for long), and at
once when no live encoder has encoded anything for ``idle_seconds`` (nobody is watching). Thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

TIMEOUT_SECONDS = 0.025  # under a frame interval at 30 fps: the recorder never falls a whole frame behind for it
IDLE_SECONDS = 1.0


class LiveFirst:
    def __init__(
        self,
        timeout: float = TIMEOUT_SECONDS,
        idle_seconds: float = IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,  # for idleness only; the wait itself is on the real clock
    ) -> None:
        self.timeout = timeout
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._condition = threading.Condition()
        self._done = -1
        self._last = float("-inf")  # monotonic time of the last live encode
        self.waits = self.timeouts = 0

    def encoded(self, index: int) -> None:
        """The live encoder is done with the ring's frame ``index`` (and every one before it)."""
        with self._condition:
            self._done = max(self._done, index)
            self._last = self._clock()
            self._condition.notify_all()

    def wait(self, index: int) -> bool:
        """Block until the live encoder has passed frame ``index``; False when it timed out or nobody is live."""
        with self._condition:
            if self._done >= index:
                return True
            if self._clock() - self._last > self.idle_seconds:
                return False
            self.waits += 1
            passed = self._condition.wait_for(lambda: self._done >= index, self.timeout)
            if not passed:
                self.timeouts += 1
            return passed
