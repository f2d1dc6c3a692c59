"""The edge's event loop: uvloop where it is installed (the default), asyncio's own otherwise or on request.

Every page's RTP, RTCP, voice and data channels (the pointer and marks among them) go through the edge's one event
loop. asyncio's selector loop reads one datagram per ready socket per turn of the loop, so when the loop is busy a
page's inbound packets wait in the kernel behind one another: a pointer move waits behind that page's voice
packets. uvloop (libuv) reads up to 32 datagrams per readiness and runs each turn with less Python overhead. aiortc
and aioice use only the public asyncio API (``create_datagram_endpoint``, transports, futures), which uvloop
implements; ``--event-loop asyncio`` keeps asyncio's loop (e.g. to compare, or where uvloop has no build).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

log = logging.getLogger(__name__)

EventLoopName = Literal["uvloop", "asyncio"]
EVENT_LOOPS: tuple[EventLoopName, ...] = ("uvloop", "asyncio")
T = TypeVar("T")


def loop_factory(name: EventLoopName) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the loop called ``name`` (None: asyncio's default); uvloop falls back to asyncio's if missing."""
    if name == "asyncio":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        log.warning("uvloop is not installed: the edge runs on asyncio's own event loop")
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], name: EventLoopName = "uvloop") -> T:
    """``asyncio.run(main)`` on the event loop called ``name``."""
    with asyncio.Runner(loop_factory=loop_factory(name)) as runner:
        loop = runner.get_loop()
        log.info("event loop: %s.%s", type(loop).__module__, type(loop).__name__)
        return runner.run(main)
