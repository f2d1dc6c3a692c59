"""The edge's WebRTC connection to one page: video out, voice both ways, the two data channels.

(Every page of a consultation, each with its `Viewer`, is edge_capture/audience.py.)

The edge always offers (it is the one with the media). aiortc gathers its candidates before the offer is
sent, so the offer carries them; the page trickles its own, which arrive through `add_ice`. There is no ICE
restart in aiortc: a page that drops comes back as a new peer and gets a new `Viewer`.

Video: with H.264 and the consultation's `SharedH264Encoder`, the page gets a `PacketVideoTrack` (one encode
for every page, edge_capture/fanout.py); otherwise, or if the page's answer leaves H.264 out, a `RingVideoTrack`
with its own encoder. The answer is read before aiortc sees it: its sender starts only once ICE and DTLS connect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.codecs import CODECS
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcpeerconnection import find_common_codecs
from aiortc.sdp import SessionDescription, candidate_from_sdp

from edge_capture.datachannel import Frame, encode
from edge_capture.encoding import MIME_TYPES, Codec, VideoEncoding, prefer_codec
from edge_capture.fanout import PacketVideoTrack, SharedH264Encoder
from edge_capture.ring import FrameRing
from edge_capture.tracks import RingVideoTrack
from edge_capture.voice import VoiceHub
from signaling_server.signaling.messages import Peer

log = logging.getLogger(__name__)

TALKING_ROLES = ("expert", "sonographer")

MessageHandler = Callable[["Viewer", str, str], None]  # (viewer, channel label, text)


class Viewer:
    def __init__(
        self,
        consultation_id: str,
        peer: Peer,
        ring: FrameRing,
        voice: VoiceHub,
        encoding: VideoEncoding,
        configuration: RTCConfiguration,
        on_message: MessageHandler,
        on_channel_open: Callable[[Viewer, str], None],
        shared_video: SharedH264Encoder | None = None,
    ) -> None:
        self.cid = consultation_id
        self.peer = peer
        self.peer_id = peer.id
        self.role = peer.role
        self.voice = voice
        self._on_message = on_message
        self._on_channel_open = on_channel_open
        self.pc = RTCPeerConnection(configuration)
        self.ring = ring
        self.video: RingVideoTrack | PacketVideoTrack
        if shared_video is not None and encoding.codec == "h264":
            self.video = PacketVideoTrack(shared_video, on_frame=self._send_frame_time, name=self.peer_id)
        else:
            self.video = RingVideoTrack(ring, on_frame=self._send_frame_time, name=self.peer_id)
        self._video_sender: RTCRtpSender | None = None
        self.encoding = encoding
        self.channels: dict[str, RTCDataChannel] = {}
        self._sink = MediaBlackhole()
        self._sink_task: asyncio.Future[None] | None = None
        self.closed = False

    async def offer(self) -> str:
        pc = self.pc
        sender = self._video_sender = pc.addTrack(self.video)
        self.video.bind_sender(sender)
        video_transceiver = next(t for t in pc.getTransceivers() if t.sender is sender)
        video_transceiver.direction = "sendonly"
        prefer_codec(video_transceiver, self.encoding.codec)
        audio = pc.addTransceiver(self.voice.listener_track(self.peer_id), direction="sendrecv")
        audio.direction = "sendrecv"
        # aiortc puts every track of a connection in one MediaStream (one msid); Chromium then holds the video
        # back to lip-sync it with the voice (~15 ms measured in bench/live.py). Guidance video must not wait
        # for speech: the voice goes in a stream of its own (a private attribute: aiortc has no public option).
        audio.sender._stream_id = f"voice-{self.peer_id}"
        self._open_channel(pc.createDataChannel("guidance", ordered=True))
        self._open_channel(pc.createDataChannel("live", ordered=False, maxRetransmits=0))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and self.role in TALKING_ROLES:
                self.voice.add_talker(self.peer_id, track)
            else:  # an observer's page should not send; if it does, read and drop so nothing queues up
                self._sink.addTrack(track)
                self._sink_task = asyncio.ensure_future(self._sink.start())

        @pc.on("connectionstatechange")
        def on_state() -> None:
            log.info("consultation %s viewer %s: connection %s", self.cid, self.peer_id, pc.connectionState)

        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp

    def _open_channel(self, channel: RTCDataChannel) -> None:
        self.channels[channel.label] = channel

        @channel.on("open")
        def on_open() -> None:
            self._on_channel_open(self, channel.label)

        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            if isinstance(message, str):
                self._on_message(self, channel.label, message)

    async def accept_answer(self, sdp: str) -> None:
        if isinstance(self.video, PacketVideoTrack) and not answer_sends(sdp, "h264"):
            self._use_own_encoder()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    def _use_own_encoder(self) -> None:
        """The page cannot take H.264: send it a RingVideoTrack (its own encoder for the codec it chose)."""
        assert self._video_sender is not None
        log.info("consultation %s viewer %s: answer without H.264; own video encoder", self.cid, self.peer_id)
        self.video.stop()
        self.video = RingVideoTrack(self.ring, on_frame=self._send_frame_time, name=self.peer_id)
        self._video_sender.replaceTrack(self.video)
        self.video.bind_sender(self._video_sender)

    async def add_ice(self, candidate: dict[str, Any] | None) -> None:
        if candidate is None or not candidate.get("candidate"):
            return  # aiortc does not need end-of-candidates; it gathers and checks on its own schedule
        line = candidate["candidate"].removeprefix("candidate:")
        try:
            parsed = candidate_from_sdp(line)
        except (ValueError, IndexError):
            log.info("consultation %s viewer %s: unusable candidate %r", self.cid, self.peer_id, line[:80])
            return
        parsed.sdpMid = candidate.get("sdpMid")
        parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
        await self.pc.addIceCandidate(parsed)

    def send(self, label: str, text: str) -> None:
        channel = self.channels.get(label)
        if channel is not None and channel.readyState == "open":
            channel.send(text)

    def _send_frame_time(self, rtp: int, capture_ms: float) -> None:
        self.send("live", encode(Frame(rtp=rtp, capture_ms=capture_ms)))

    @property
    def stats(self) -> dict[str, Any]:
        return {
            "frames_sent": self.video.frames_sent,
            "frames_skipped": self.video.frames_skipped,
            "video_encoder": "shared" if isinstance(self.video, PacketVideoTrack) else "own",
            "connection": self.pc.connectionState,
        }

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.voice.remove(self.peer_id)
        self.video.stop()
        await self._sink.stop()
        await asyncio.shield(self.pc.close())


def answer_sends(sdp: str, codec: Codec) -> bool:
    """Whether aiortc, offering ``codec`` first, will send it given this answer (as it negotiates: the answer's
    video codecs that aiortc can send, in our order of preference)."""
    mime = MIME_TYPES[codec].lower()
    for media in SessionDescription.parse(sdp).media:
        if media.kind == "video":
            common = find_common_codecs(CODECS["video"], media.rtp.codecs)
            return any(c.mimeType.lower() == mime for c in common)
    return False
