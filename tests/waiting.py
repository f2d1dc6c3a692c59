"""Waiting in tests for something to happen, instead of sleeping for as long as it usually takes.

Each wait polls its condition and ends as soon as it holds. The bounds are generous on purpose: the suite runs on
loaded two-core machines, where "usually 50 ms" can be seconds; a bound only decides how long a real failure takes
to report.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

TIMEOUT = 30.0


async def eventually(
    condition: Callable[[], T | Awaitable[T]], timeout: float = TIMEOUT, interval: float = 0.02, what: str = ""
) -> T:
    """Poll ``condition`` (plain or async) on the event loop until it returns something truthy, and return that.
    Raises AssertionError, naming ``what`` and the last value, after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or condition}; last: {value!r}")
        await asyncio.sleep(interval)


def wait_until(condition: Callable[[], object], timeout: float = TIMEOUT, interval: float = 0.01) -> bool:
    """The same for a thread (no event loop): True once ``condition()`` holds, False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
