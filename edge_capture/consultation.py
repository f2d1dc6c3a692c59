"""The edge in one consultation: what it does with each message of the room, in one place.

A `ConsultationLink` puts together, for one consultation:

- the signaling socket (edge_capture/signaling.py: join, typed messages, rejoin after drops);
- the pages watching (edge_capture/audience.py: one `Viewer` per page, negotiation, the guidance relay);
- the server's capture commands (edge_capture/capture_commands.py: stills and clips from the ring);
- the recording while the consultation is live and its site records (edge_capture/recording/session.py);
- live image QC and the exam's completeness, shown on every page (qc/live.py, qc/completeness.py).

The consultation as the server last described it (`welcome`, `state`) decides whether to record and whether the
link is done: an ended or cancelled consultation closes the socket for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from edge_capture import datachannel as dc
from edge_capture.audience import Audience
from edge_capture.capture_commands import CaptureCommands
from edge_capture.captures import CaptureKit
from edge_capture.client import ServerClient
from edge_capture.dicom.stills import CaptureResult
from edge_capture.encoding import SenderRate, VideoEncoding
from edge_capture.fanout import SharedH264Encoder
from edge_capture.guidance import GuidanceBoard
from edge_capture.ice import IceSource
from edge_capture.livefirst import LiveFirst
from edge_capture.recording.session import RecordingKit, SessionRecording
from edge_capture.ring import FrameRing
from edge_capture.signaling import SignalingSession
from edge_capture.viewer import Viewer
from edge_capture.voice import VoiceHub
from qc.completeness import completeness
from qc.live import Alert, LiveQc
from signaling_server.signaling import messages as m

log = logging.getLogger(__name__)

CLOSED_STATES = ("ended", "cancelled")


class ConsultationLink:
    def __init__(
        self,
        client: ServerClient,
        consultation_id: str,
        ring: FrameRing,
        encoding: VideoEncoding,
        ice: IceSource,
        shared_encoder: bool = True,
        captures: CaptureKit | None = None,
        recordings: RecordingKit | None = None,
        live_qc: bool = True,
        on_link_back: Callable[[], None] | None = None,
    ) -> None:
        self.cid = consultation_id
        self.on_link_back = on_link_back  # the agent retries its outbox and uploads at once
        self.ring = ring
        self.live_qc = live_qc
        self.voice = VoiceHub(name=consultation_id)
        self.shared_video: SharedH264Encoder | None = None
        self.live_first = LiveFirst()  # the live encoder takes each frame before the recorder does
        if shared_encoder and encoding.codec == "h264":
            self.shared_video = SharedH264Encoder(
                ring, preset=encoding.x264_preset, bitrate_bps=encoding.bitrate_bps, name=consultation_id,
                live_first=self.live_first, rate=SenderRate(encoding.bitrate_bps, encoding.degradation,
                                                            encoding.adaptive_rate),
            )  # fmt: skip
        self.signaling = SignalingSession(client, consultation_id, self._handle, self._link_down, live=self._is_live)
        self.audience = Audience(
            consultation_id, ring, self.voice, encoding, ice, self.shared_video,
            on_guidance=self._record_guidance, on_guidance_open=lambda viewer: self._send_qc(only=viewer),
        )  # fmt: skip
        self.captures = CaptureCommands(consultation_id, ring, captures, self.signaling.send, self._on_captured)
        self.recordings = recordings
        self.recording: SessionRecording | None = None  # while the consultation is live and its site records
        self.consultation: dict[str, Any] | None = None  # as the server last described it
        self.peer_id: str | None = None  # the edge's own, in this session of the room
        self.lost_since_ns: int | None = None  # the link to the room is down since (monotonic ns); None: up
        self.link_losses = 0  # how many times the link was lost and came back
        self._qc_alerts: dict[str, dict[str, Any]] = {}  # code → the raised alert
        self._captured_labels: list[dict[str, Any]] = []  # what completeness counts

    @property
    def viewers(self) -> dict[str, Viewer]:
        """Peer id → the `Viewer` of that page."""
        return self.audience.viewers

    @property
    def board(self) -> GuidanceBoard:
        return self.audience.board

    @property
    def finished(self) -> bool:
        return self.signaling.finished

    async def run(self) -> None:
        """Stay in the room until the consultation closes; rejoin after drops."""
        qc_task: asyncio.Task[None] | None = None
        if self.live_qc:
            live_qc = LiveQc(self.ring, on_alert=self._on_qc_alert, name=self.cid)
            qc_task = asyncio.create_task(live_qc.run(), name=f"qc-{self.cid}")
        try:
            await self.signaling.run()
        finally:
            if qc_task is not None:
                qc_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await qc_task
            await self._drop_all()
            await self._stop_recording()
            if self.shared_video is not None:
                await self.shared_video.close()
            self.voice.close()
            await self.voice.wait_closed()

    async def _handle(self, message: m.ServerMessage) -> None:
        if self.recording is not None:
            self.recording.signal(message)  # chat, joins and leaves, state changes: into the timeline
        if isinstance(message, m.Welcome):
            self.consultation = message.consultation
            self.peer_id = message.you.id
            log.info("consultation %s: edge joined as %s", self.cid, self.peer_id)
            await self._follow_recording(message.peers)
            self._link_back()
            for peer in message.peers:
                await self._offer_to(peer)
        elif isinstance(message, m.PeerJoined):
            await self._offer_to(message.peer)
        elif isinstance(message, m.PeerLeft):
            await self.audience.drop(message.peer_id)
        elif isinstance(message, m.RelayedAnswer):
            await self.audience.accept_answer(message.from_, message.sdp)
        elif isinstance(message, m.RelayedIce):
            await self.audience.add_ice(message.from_, message.candidate)
        elif isinstance(message, m.CaptureCommand):
            self.captures.take(message, self.consultation, self.board.marks)
        elif isinstance(message, m.StateChanged):
            self.consultation = message.consultation
            await self._follow_recording(self.audience.peers())
            if message.consultation.get("state") in CLOSED_STATES:
                await self.signaling.finish()
        elif isinstance(message, m.ErrorReply):
            log.warning("consultation %s: signaling error %s: %s", self.cid, message.code, message.message)

    async def _offer_to(self, peer: m.Peer) -> None:
        if not self.signaling.connected:
            return
        sdp = await self.audience.offer_to(peer)
        if sdp is not None:
            await self.signaling.send(m.Offer(to=peer.id, sdp=sdp))
            log.info("consultation %s: offered to %s %s", self.cid, peer.role, peer.id)

    async def _drop_all(self) -> None:
        await self.audience.drop_all()

    def _is_live(self) -> bool:
        return (self.consultation or {}).get("state") == "live"

    # ---- losing the link and getting it back (docs/LIVE.md, Reconnection) ---------------------------------------

    async def _link_down(self) -> None:
        """The signaling socket is gone (or one more attempt to reopen it failed): every call is closed, the pages
        get fresh offers when the edge is back in the room. The loss dates from the last moment the edge heard
        from the room: a message on the socket or on a page's data channel (pages ping every second)."""
        await self._drop_all()
        if self.lost_since_ns is not None or self.peer_id is None:
            return  # already lost, or never in the room
        heard = [t for t in (self.signaling.last_heard_ns, self.audience.last_heard_ns) if t is not None]
        self.lost_since_ns = max(heard) if heard else time.monotonic_ns()
        log.warning("consultation %s: link to the room lost", self.cid)
        if self.recording is not None:
            self.recording.link_lost("start", self.lost_since_ns)

    def _link_back(self) -> None:
        lost, self.lost_since_ns = self.lost_since_ns, None
        if lost is None:
            return
        self.link_losses += 1
        log.warning("consultation %s: back in the room after %.1f s", self.cid, (time.monotonic_ns() - lost) / 1e9)
        if self.recording is not None:
            self.recording.link_lost("end")
        if self.on_link_back is not None:
            self.on_link_back()

    # ---- the recording (recordings/RECORDINGS.md) -----------------------------------------------------

    async def _follow_recording(self, peers: list[m.Peer] | tuple[m.Peer, ...]) -> None:
        """Record while the consultation is live and its site's policy says so (the server's `recording`)."""
        consultation = self.consultation or {}
        wanted = consultation.get("state") == "live" and consultation.get("recording") is True
        if wanted and self.recording is None and self.recordings is not None:
            self.live_first.ask_keyframe = self._keyframe_asker()
            recording = SessionRecording(
                self.recordings, self.cid, self.ring, self.voice, self.viewers.values,
                live_first=self.live_first if self.shared_video is not None else None,
            )  # fmt: skip
            try:
                await recording.start("live", peers)
            except Exception:  # a full or read-only disk: the live session goes on unrecorded
                log.exception("consultation %s: the recording could not start", self.cid)
                return
            self.recording = recording
        elif not wanted and self.recording is not None:
            await self._stop_recording()

    def _keyframe_asker(self) -> Callable[[], None] | None:
        """How the recorder's thread asks the shared live encoder for a keyframe to start a copied segment on."""
        shared, loop = self.shared_video, asyncio.get_running_loop()
        if shared is None:
            return None

        def ask() -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to copy any more
                loop.call_soon_threadsafe(shared.request_keyframe, "a copied recording segment starts")

        return ask

    async def _stop_recording(self) -> None:
        recording, self.recording = self.recording, None
        if recording is not None:
            await recording.stop()

    def _record_guidance(self, message: dc.Mark | dc.Clear | dc.Pointer) -> None:
        if self.recording is not None:
            self.recording.guidance(message)

    def _on_captured(self, command: m.CaptureCommand, result: CaptureResult) -> None:
        self._captured_labels.append({"id": result.sop_instance_uid, "labels": command.labels})
        self._send_qc()
        if self.recording is not None:
            self.recording.capture(
                command.id, result.kind, command.labels, result.sop_instance_uid, result.number_of_frames
            )

    # ---- live QC (qc/live.py) and exam completeness, shown on every page ---------------------------------

    def _on_qc_alert(self, alert: Alert) -> None:
        if alert.state == "raised":
            self._qc_alerts[alert.code] = alert.to_dict()
        else:
            self._qc_alerts.pop(alert.code, None)
        self.record_qc_alert(alert.to_dict())
        self._send_qc()

    def _qc_message(self) -> str:
        exam = (self.consultation or {}).get("exam_type") or "thyroid"
        checklist = completeness(exam, self._captured_labels).to_dict()
        alerts = [{"code": a["code"], "text": a["text"], "state": "raised"} for a in self._qc_alerts.values()]
        return json.dumps({"type": "qc", "alerts": alerts, "completeness": checklist})

    def _send_qc(self, only: Viewer | None = None) -> None:
        self.audience.send(dc.GUIDANCE, self._qc_message(), only=only)

    def record_qc_alert(self, alert: dict[str, Any]) -> None:
        """Put a live QC alert in the recording's timeline: `{"code", "text", "state": "raised"|"cleared", "t"?}`
        (qc/live.py's `Alert.to_dict()`; `t`, the deciding frame's wall clock in s, places it on the media clock)."""
        if self.recording is not None:
            self.recording.qc_alert(alert)
