"""edge_capture.consultation: one `ConsultationLink` against the real server and a real aiortc page. The link
offers to the page that joins, takes its answer, greets it on the guidance channel with the marks and the QC
state, answers a capture it cannot take with its code, and leaves when the consultation ends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from edge_capture.client import ServerClient
from edge_capture.consultation import ConsultationLink
from edge_capture.encoding import VideoEncoding
from edge_capture.ice import IceSource
from edge_capture.net import use_loopback_only
from edge_capture.ring import FrameRing
from tests.conftest import THYROID_REQUEST


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    use_loopback_only()


async def receive(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        message = await ws.receive_json(timeout=20)
        if message["type"] == kind:
            return dict(message)


async def test_the_link_offers_greets_refuses_a_capture_and_leaves_when_ended(people: Any, loopback: None) -> None:
    client, world, open_api = people
    sono, expert = await open_api("sono_a"), await open_api("expert")
    _, consultation = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    cid = consultation["id"]
    async with aiohttp.ClientSession() as session:
        server = ServerClient(str(client.make_url("/")), world.device_a_credential, session)
        link = ConsultationLink(server, cid, FrameRing(), VideoEncoding(codec="vp8"), IceSource.fixed(), live_qc=False)
        running = asyncio.create_task(link.run())

        room = await expert.ws(f"/api/v1/consultations/{cid}/signal")
        await room.send_json({"type": "join"})
        me = (await receive(room, "welcome"))["you"]
        offer = await receive(room, "offer")
        assert offer["from"] == link.peer_id and list(link.viewers) == [me["id"]]

        page = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        guidance: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        @page.on("datachannel")
        def on_channel(channel: RTCDataChannel) -> None:
            if channel.label == "guidance":
                channel.on("message", lambda text: guidance.put_nowait(json.loads(text)))

        await page.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        await page.setLocalDescription(await page.createAnswer())
        await room.send_json({"type": "answer", "to": offer["from"], "sdp": page.localDescription.sdp})
        greeting = [await asyncio.wait_for(guidance.get(), 20) for _ in range(2)]
        assert greeting[0] == {"type": "marks", "marks": []}
        assert greeting[1]["type"] == "qc" and greeting[1]["alerts"] == []
        assert greeting[1]["completeness"]["value"] == 0

        status, asked = await expert.post(f"/api/v1/consultations/{cid}/captures", {"kind": "still", "labels": {}})
        assert status == 202
        failed = await receive(room, "capture-status")
        while failed["state"] != "failed":
            failed = await receive(room, "capture-status")
        assert failed["id"] == asked["id"]
        assert failed["detail"] == {
            "code": "captures_off",
            "message": "this edge does not capture for this consultation",
        }

        status, _ = await expert.post(f"/api/v1/consultations/{cid}/end")
        assert status == 200
        await asyncio.wait_for(running, 20)
        assert link.finished and link.viewers == {} and link.consultation is not None
        assert link.consultation["state"] == "ended"
        await page.close()
        await room.close()
