"""The password hashing pool: a fixed number of threads for Argon2, and a bounded queue in front of them.

Each Argon2 computation holds 46 MiB (passwords.py) and a core for ~60 ms. A flood of sign-in attempts must not
spend the server's memory or starve its other work, so at most `workers` run at once (the memory bound is
workers × 46 MiB) and at most `queue` more wait; anything past that is refused at once with 503 `server_busy`
before any hashing starts.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from aiohttp import web

from signaling_server import errors
from signaling_server.appkeys import SETTINGS

T = TypeVar("T")


class HashingPool:
    def __init__(self, workers: int, queue: int) -> None:
        self.workers, self.queue = max(1, workers), max(0, queue)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="argon2")
        self._lock = threading.Lock()
        self.admitted = 0  # running or waiting; changed on the event loop only
        self.running = 0  # inside the function now (counted by the worker threads)
        self.peak_running = 0  # the most ever run at once: never more than `workers`
        self.calls = 0  # computations started, ever

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` on a hashing thread; ServerBusy when `workers + queue` calls are admitted already."""
        if self.admitted >= self.workers + self.queue:
            raise errors.ServerBusy("the server is checking too many passwords at once: try again shortly", 1)
        loop = asyncio.get_running_loop()
        self.admitted += 1
        # Released when the thread is done, not when the awaiting request goes away: `admitted` counts real work.
        future: Future[T] = self._executor.submit(self._measured, fn, *args)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._release))
        return await asyncio.wrap_future(future)

    def _release(self) -> None:
        self.admitted -= 1

    def _measured(self, fn: Callable[..., T], *args: object) -> T:
        with self._lock:
            self.running += 1
            self.calls += 1
            self.peak_running = max(self.peak_running, self.running)
        try:
            return fn(*args)
        finally:
            with self._lock:
                self.running -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


HASHING = web.AppKey("hashing", HashingPool)


async def hashing_pool(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = HashingPool(settings.hash_workers, settings.hash_queue)
    app[HASHING] = pool
    yield
    await asyncio.to_thread(pool.shutdown)
