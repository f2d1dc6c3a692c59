"""edge_capture.audience: real aiortc pages in one process (only ICE is kept to loopback). Each page gets an offer
and its own `Viewer`; the data channels relay guidance between pages, answer pings, and refuse with the stable
codes of PROTOCOL.md §3."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import aioice.ice
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from edge_capture import datachannel as dc
from edge_capture.audience import Audience
from edge_capture.encoding import VideoEncoding
from edge_capture.fanout import SharedH264Encoder
from edge_capture.frames import SourceFrame
from edge_capture.ice import IceSource
from edge_capture.net import use_loopback_only
from edge_capture.ring import FrameRing
from edge_capture.voice import VoiceHub
from signaling_server.signaling.messages import Peer
from tests.edge_capture.test_tracks import put_frames

EXPERT = Peer("p1", "expert", "Dr Wang", "u1")
OBSERVER = Peer("p2", "observer", "Zhao Min", "u2")


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    use_loopback_only()


class Page:
    """A browser page's side: answers the edge's offer and keeps what arrives on each data channel."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channels: dict[str, RTCDataChannel] = {}
        self.received: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.open = {dc.GUIDANCE: asyncio.Event(), dc.LIVE: asyncio.Event()}

        @self.pc.on("datachannel")
        def on_channel(channel: RTCDataChannel) -> None:
            self.channels[channel.label] = channel
            channel.on("message", lambda text: self.received.put_nowait((channel.label, json.loads(text))))
            if channel.readyState == "open":
                self.open[channel.label].set()
            else:
                channel.on("open", self.open[channel.label].set)

    async def answer(self, offer: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    async def next(self, kind: str, channel: str = dc.GUIDANCE) -> dict[str, Any]:
        while True:
            label, message = await asyncio.wait_for(self.received.get(), 20)
            if label == channel and message["type"] == kind:
                return message

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        await asyncio.wait_for(self.open[channel].wait(), 20)
        self.channels[channel].send(json.dumps(message))


@pytest.fixture
async def room(loopback: None) -> AsyncIterator[tuple[Audience, list[dc.Mark | dc.Clear | dc.Pointer], list[str]]]:
    relayed: list[dc.Mark | dc.Clear | dc.Pointer] = []
    opened: list[str] = []
    voice = VoiceHub(name="c1")
    audience = Audience(
        "c1", FrameRing(), voice, VideoEncoding(codec="vp8", encoder="libvpx VP8"), IceSource.fixed(), None,
        on_guidance=relayed.append, on_guidance_open=lambda viewer: opened.append(viewer.peer_id),
    )  # fmt: skip
    yield audience, relayed, opened
    await audience.drop_all()
    voice.close()
    await voice.wait_closed()


async def join(audience: Audience, peer: Peer) -> Page:
    page = Page()
    offer = await audience.offer_to(peer)
    assert offer is not None and offer.startswith("v=0")
    await audience.accept_answer(peer.id, await page.answer(offer))
    return page


async def test_pages_get_offers_and_guidance_is_relayed_between_them(room: Any) -> None:
    audience, relayed, opened = room
    assert await audience.offer_to(Peer("p0", "edge", "north-us-1")) is None  # the edge does not call itself
    expert, observer = await join(audience, EXPERT), await join(audience, OBSERVER)
    assert audience.peers() == [EXPERT, OBSERVER]
    assert (await expert.next("marks"))["marks"] == [] and (await observer.next("marks"))["marks"] == []

    arrow = {"type": "mark", "id": "a1", "kind": "arrow", "points": [[0.2, 0.3], [0.4, 0.5]], "from": "forged"}
    await expert.send(dc.GUIDANCE, arrow)
    seen = await observer.next("mark")
    assert seen["id"] == "a1" and seen["from"] == "p1" and seen["at"] > 0  # the edge stamps who and when
    assert (await expert.next("mark"))["id"] == "a1"  # the drawer sees it come back, as everyone does
    assert [m.id for m in audience.board.marks] == ["a1"] and isinstance(relayed[0], dc.Mark)

    await expert.send(dc.LIVE, {"type": "pointer", "x": 0.5, "y": 0.25})
    pointer = await observer.next("pointer", dc.LIVE)
    assert (pointer["x"], pointer["y"], pointer["from"]) == (0.5, 0.25, "p1")

    await observer.send(dc.LIVE, {"type": "ping", "id": "k1", "t": 1000.0})
    pong = await observer.next("pong", dc.LIVE)
    assert pong["id"] == "k1" and pong["t"] == 1000.0 and pong["edge_ms"] > 0
    assert pong["encoder"] == "libvpx VP8"  # the encoder in use, for the link panel
    assert sorted(opened) == ["p1", "p2"]

    late = await join(audience, Peer("p3", "sonographer", "Li Na", "u3"))
    assert [m["id"] for m in (await late.next("marks"))["marks"]] == ["a1"]  # what is drawn already
    for page in (expert, observer, late):
        await page.pc.close()


async def test_refusals_are_sent_back_with_their_codes(room: Any) -> None:
    audience, relayed, _ = room
    observer = await join(audience, OBSERVER)
    await observer.next("marks")
    await observer.send(dc.GUIDANCE, {"type": "clear"})
    refused = await observer.next("error")
    assert refused["code"] == "not_allowed" and "view-only" in refused["message"]
    await observer.send(dc.GUIDANCE, {"type": "marks", "marks": []})
    assert (await observer.next("error"))["code"] == "not_allowed"  # marks are the edge's to send
    await observer.send(dc.GUIDANCE, {"type": "mark", "id": "m", "kind": "arrow", "points": [[0, 0]]})
    assert (await observer.next("error"))["code"] == "bad_message"
    assert relayed == [] and audience.board.marks == ()

    await audience.drop(OBSERVER.id)
    assert audience.viewers == {}
    await audience.add_ice(OBSERVER.id, None)  # a late candidate for a page that left: nothing to do
    await observer.pc.close()


class StalledFrame(SourceFrame):
    """A picture whose colour conversion (the first step of its encode, in x264's worker thread) hangs until released:
    a video stage stalled the way a saturated edge stalls it."""

    started = threading.Event()
    release = threading.Event()

    def i420(self) -> np.ndarray:
        StalledFrame.started.set()
        StalledFrame.release.wait(60)
        return super().i420()


async def test_guidance_is_relayed_while_a_frame_is_stalled_in_the_video_path(loopback: None) -> None:
    """Guidance first: pointer moves and marks go from page to page while the shared encoder is stuck on a frame,
    and the frames captured meanwhile are skipped (latest wins), not queued behind it."""
    ring, voice = FrameRing(), VoiceHub(name="c2")
    shared = SharedH264Encoder(ring, bitrate_bps=1_000_000, name="c2")
    audience = Audience("c2", ring, voice, VideoEncoding(codec="h264"), IceSource.fixed(), shared)
    StalledFrame.started.clear()
    StalledFrame.release.clear()
    try:
        expert, observer = await join(audience, EXPERT), await join(audience, OBSERVER)
        await expert.next("marks")
        await observer.next("marks")
        index = 0
        while shared.frames_encoded == 0:  # the pages' senders read: the encoder runs
            put_frames(ring, range(index, index + 1), start_ns=time.monotonic_ns() - index * 33_333_333)
            index += 1
            assert index < 600, "the pages' video never started"
            await asyncio.sleep(0.05)
        image = np.zeros((48, 64, 3), np.uint8)
        ring.put(StalledFrame(index, time.time_ns(), time.monotonic_ns(), image))
        assert await asyncio.to_thread(StalledFrame.started.wait, 30)
        encoded = shared.frames_encoded
        put_frames(ring, range(index + 1, index + 21), start_ns=time.monotonic_ns() - (index + 1) * 33_333_333)

        await expert.send(dc.LIVE, {"type": "pointer", "x": 0.25, "y": 0.75})
        assert (await observer.next("pointer", dc.LIVE))["x"] == 0.25
        circle = {"type": "mark", "id": "m1", "kind": "circle", "points": [[0.5, 0.5], [0.6, 0.5]]}
        await expert.send(dc.GUIDANCE, circle)
        assert (await observer.next("mark"))["id"] == "m1"
        assert not StalledFrame.release.is_set() and shared.frames_encoded == encoded  # the video is still stuck

        skipped = shared.frames_skipped
        StalledFrame.release.set()
        for _ in range(200):
            if shared.frames_encoded >= encoded + 2:
                break
            await asyncio.sleep(0.05)
        assert shared.frames_encoded >= encoded + 2
        assert shared.frames_skipped - skipped >= 19  # straight to the newest frame: the 19 before it never waited
        for page in (expert, observer):
            await page.pc.close()
    finally:
        StalledFrame.release.set()
        await audience.drop_all()
        await shared.close()
        voice.close()
        await voice.wait_closed()
        ring.close()
