"""edge_capture.eventloop: the edge runs on uvloop by default, on asyncio's loop on request, and aiortc's pages relay
guidance through the edge on either."""

from __future__ import annotations

import asyncio

import pytest

from edge_capture import datachannel as dc
from edge_capture import eventloop
from edge_capture.audience import Audience
from edge_capture.encoding import VideoEncoding
from edge_capture.ice import IceSource
from edge_capture.ring import FrameRing
from edge_capture.voice import VoiceHub
from tests.edge_capture.test_audience import EXPERT, OBSERVER, join, loopback  # noqa: F401 (a fixture)


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_by_default_and_asyncio_on_request() -> None:
    assert eventloop.run(loop_module()).startswith("uvloop")
    assert eventloop.run(loop_module(), "asyncio").startswith("asyncio")


async def relay_a_pointer() -> dict[str, object]:
    voice = VoiceHub(name="c1")
    audience = Audience("c1", FrameRing(), voice, VideoEncoding(codec="vp8"), IceSource.fixed(), None)
    try:
        expert, observer = await join(audience, EXPERT), await join(audience, OBSERVER)
        for page in (expert, observer):  # both pages' channels open at the edge
            await page.next("marks")
            await asyncio.wait_for(page.open[dc.LIVE].wait(), 20)
        await expert.send(dc.LIVE, {"type": "pointer", "x": 0.5, "y": 0.25})
        pointer = await observer.next("pointer", dc.LIVE)
        for page in (expert, observer):
            await page.pc.close()
        return pointer
    finally:
        await audience.drop_all()
        voice.close()
        await voice.wait_closed()


@pytest.mark.parametrize("name", eventloop.EVENT_LOOPS)
def test_pages_connect_and_guidance_is_relayed_on_either_loop(loopback: None, name: eventloop.EventLoopName) -> None:  # noqa: F811
    pointer = eventloop.run(relay_a_pointer(), name)
    assert (pointer["x"], pointer["y"], pointer["from"]) == (0.5, 0.25, "p1")
