"""A console page without a browser, for recording tests: it joins the room over the real signaling socket,
answers the edge's offer with aiortc (a tone for its microphone), and speaks on the data channels."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aiohttp
from aiortc import MediaStreamTrack, RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole

from tests.conftest import Api
from tests.edge_capture.test_voice import ToneTrack


class RtcPage:
    def __init__(self, api: Api, cid: str, tone_hz: float | None = 440.0) -> None:
        self.api, self.cid = api, cid
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.microphone = ToneTrack(tone_hz) if tone_hz is not None else None
        self.sink = MediaBlackhole()
        self.channels: dict[str, RTCDataChannel] = {}
        self.received: list[tuple[float, dict[str, Any]]] = []  # (wall clock ms, message) from the data channels
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.welcome: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None
        self._opened = asyncio.Event()

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.sink.addTrack(track)

        @self.pc.on("datachannel")
        def on_channel(channel: RTCDataChannel) -> None:
            self.channels[channel.label] = channel

            @channel.on("message")
            def on_message(text: str | bytes) -> None:
                if isinstance(text, str):
                    self.received.append((time.time() * 1000, json.loads(text)))

            if {"guidance", "live"} <= set(self.channels):
                self._opened.set()

    async def join(self) -> dict[str, Any]:
        self.ws = await self.api.ws(f"/api/v1/consultations/{self.cid}/signal")
        await self.ws.send_json({"type": "join"})
        while True:
            message = await self.ws.receive_json()
            if message["type"] == "welcome":
                self.welcome = message
                break
        self._task = asyncio.create_task(self._read())
        return self.welcome

    async def _read(self) -> None:
        assert self.ws is not None
        async for frame in self.ws:
            message = json.loads(frame.data)
            if message["type"] == "offer":
                await self.pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer"))
                if self.microphone is not None:
                    self.pc.addTrack(self.microphone)  # answers the edge's sendrecv audio with this microphone
                    self.microphone = None  # one offer per page in these tests
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                await self.sink.start()
                answer = {"type": "answer", "to": message["from"], "sdp": self.pc.localDescription.sdp}
                await self.ws.send_json(answer)

    async def connected(self, timeout: float = 15.0) -> None:
        await asyncio.wait_for(self._opened.wait(), timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(c.readyState != "open" for c in self.channels.values()):
            assert loop.time() < deadline, "the data channels did not open"
            await asyncio.sleep(0.02)

    def send(self, label: str, message: dict[str, Any]) -> None:
        self.channels[label].send(json.dumps(message))

    async def chat(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send_json({"type": "chat", "text": text})

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.sink.stop()
        await self.pc.close()
