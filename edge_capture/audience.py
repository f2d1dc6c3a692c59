"""Every page in one consultation's room, one `Viewer` each (edge_capture/viewer.py), and what they say to each
other over the data channels (PROTOCOL.md §3).

Negotiation: the edge offers to every page that joins (it is the one with the media), takes the page's answer
and its trickled candidates; a page that leaves, or the edge losing the room, closes its `Viewer`.

The data channels go through the edge: it relays guidance marks (ordered, reliable) and the pointer
(unordered, lossy) from whoever draws to everyone else, answers clock pings, and keeps the authoritative set of
marks (`GuidanceBoard`) so a page that joins late sees what is already drawn. With H.264, every page's video
comes from one `SharedH264Encoder` (one encode per frame, however many pages).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from edge_capture import datachannel as dc
from edge_capture.encoding import VideoEncoding
from edge_capture.errors import MessageError
from edge_capture.fanout import SharedH264Encoder
from edge_capture.guidance import GuidanceBoard, check_may_draw
from edge_capture.ice import IceSource
from edge_capture.ring import FrameRing
from edge_capture.viewer import Viewer
from edge_capture.voice import VoiceHub
from signaling_server.signaling.messages import Peer

log = logging.getLogger(__name__)

Relayed = dc.Mark | dc.Clear | dc.Pointer


def now_ms() -> float:
    return time.time() * 1000.0


class Audience:
    def __init__(
        self,
        consultation_id: str,
        ring: FrameRing,
        voice: VoiceHub,
        encoding: VideoEncoding,
        ice: IceSource,
        shared_video: SharedH264Encoder | None,
        on_guidance: Callable[[Relayed], None] = lambda message: None,
        on_guidance_open: Callable[[Viewer], None] = lambda viewer: None,
    ) -> None:
        self.cid = consultation_id
        self.ring, self.voice, self.encoding = ring, voice, encoding
        self.ice = ice
        self.shared_video = shared_video
        self.board = GuidanceBoard(name=consultation_id)
        self.viewers: dict[str, Viewer] = {}  # peer id → its Viewer
        self.last_heard_ns: int | None = None  # time.monotonic_ns() of the last data-channel message from a page
        self._on_guidance = on_guidance  # every relayed mark, clear and pointer, stamped (for the recording)
        self._on_guidance_open = on_guidance_open  # a page's guidance channel opened (to send it the QC state)

    def peers(self) -> list[Peer]:
        return [viewer.peer for viewer in self.viewers.values()]

    # ---- negotiation (PROTOCOL.md §2) --------------------------------------------------------------------

    async def offer_to(self, peer: Peer) -> str | None:
        """A fresh `Viewer` for the page (closing any older one) and its SDP offer; None for the edge itself."""
        if peer.role == "edge":
            return None
        await self.drop(peer.id)
        configuration = await self.ice.configuration()  # a fresh TURN credential for each peer connection
        viewer = Viewer(
            self.cid,
            peer,
            self.ring,
            self.voice,
            self.encoding,
            configuration,
            self._on_message,
            self._on_open,
            shared_video=self.shared_video,
        )
        self.viewers[peer.id] = viewer
        return await viewer.offer()

    async def accept_answer(self, peer_id: str, sdp: str) -> None:
        viewer = self.viewers.get(peer_id)
        if viewer is not None:
            await viewer.accept_answer(sdp)

    async def add_ice(self, peer_id: str, candidate: dict[str, Any] | None) -> None:
        viewer = self.viewers.get(peer_id)
        if viewer is not None:
            await viewer.add_ice(candidate)

    async def drop(self, peer_id: str) -> None:
        viewer = self.viewers.pop(peer_id, None)
        if viewer is not None:
            await viewer.close()

    async def drop_all(self) -> None:
        viewers, self.viewers = list(self.viewers.values()), {}
        for viewer in viewers:
            await viewer.close()

    # ---- data channels (PROTOCOL.md §3) ------------------------------------------------------------------

    def send(self, label: str, text: str, only: Viewer | None = None) -> None:
        """To every page's channel ``label`` that is open (or to one page)."""
        for viewer in [only] if only is not None else list(self.viewers.values()):
            viewer.send(label, text)

    def _on_open(self, viewer: Viewer, label: str) -> None:
        if label == dc.GUIDANCE:
            viewer.send(dc.GUIDANCE, dc.encode(self.board.snapshot()))
            self._on_guidance_open(viewer)

    def _on_message(self, viewer: Viewer, label: str, text: str) -> None:
        self.last_heard_ns = time.monotonic_ns()
        try:
            message = dc.decode(text, channel=label)
            if isinstance(message, dc.Ping):
                viewer.send(dc.LIVE, dc.encode(message.pong(now_ms(), self.encoding.encoder or None)))
                return
            if not isinstance(message, Relayed):
                raise MessageError("not_allowed", f"{message.TYPE} is sent by the edge, not to it")
            check_may_draw(viewer.role)
        except MessageError as exc:
            viewer.send(dc.GUIDANCE, dc.encode(dc.GuidanceError.of(exc)))
            return
        stamped = replace(message, from_=viewer.peer_id, at=now_ms())
        self._on_guidance(stamped)
        text = dc.encode(stamped)
        if isinstance(stamped, dc.Pointer):
            for other in self.viewers.values():
                if other is not viewer:
                    other.send(dc.LIVE, text)
            return
        self.board.apply(stamped)
        self.send(dc.GUIDANCE, text)
