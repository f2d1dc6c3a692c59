"""In-process probes for the bench's sender processes: event-loop lag and the names of native threads.

Both senders (bench/floor_sender.py, bench/stamped_edge.py) run :class:`LoopLag` and report
:func:`thread_names` so that the bench can split a process's CPU time by thread (``/proc/<pid>/task``) and say
how late the event loop runs its callbacks (a late loop delays RTP sends, data-channel messages, pointer relays).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque


def thread_names() -> dict[str, str]:
    """native thread id → Python thread name, for every live Python thread of this process."""
    return {str(t.native_id): t.name for t in threading.enumerate() if t.native_id is not None}


class LoopLag:
    """Wakes every ``period`` s and records how late it woke (ms): the event loop's scheduling lag."""

    def __init__(self, period: float = 0.01, keep: int = 6000) -> None:
        self.period = period
        self.lags: deque[float] = deque(maxlen=keep)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.period)
            self.lags.append((time.perf_counter() - started - self.period) * 1000)

    def drain(self) -> list[float]:
        """The lags (ms, 0.01 ms resolution) seen since the last drain."""
        values = [round(v, 2) for v in self.lags]
        self.lags.clear()
        return values

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
