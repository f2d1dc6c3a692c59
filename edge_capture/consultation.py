"""The edge in one consultation's room: the signaling socket, one `Viewer` per page, guidance relay.

The edge is the hub of the live session: it offers to every page that joins, relays guidance marks (ordered,
reliable) and the pointer (unordered, lossy) from whoever draws to everyone else, answers clock pings, and keeps
the authoritative set of marks so a page that joins late sees what is already drawn. If the signaling socket
drops, every peer connection is closed and the edge rejoins as a new peer; pages then get fresh offers.
With H.264, every page's video comes from one `SharedH264Encoder` (one encode per frame, however many pages).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import replace
from typing import Any

import aiohttp

from edge_capture import datachannel as dc
from edge_capture.captures import CaptureKit, still_capture_for
from edge_capture.client import ServerClient
from edge_capture.dicom.stills import CaptureRequest, StillCapture
from edge_capture.encoding import VideoEncoding
from edge_capture.errors import CaptureError, CapturesOff, MessageError, ServerError
from edge_capture.fanout import SharedH264Encoder
from edge_capture.guidance import GuidanceBoard, check_may_draw
from edge_capture.livefirst import LiveFirst
from edge_capture.recording.session import RecordingKit, SessionRecording
from edge_capture.ring import FrameRing
from edge_capture.viewer import Viewer
from edge_capture.voice import VoiceHub
from qc.completeness import completeness
from qc.live import Alert, LiveQc

log = logging.getLogger(__name__)

CLOSED_STATES = ("ended", "cancelled")
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)


def now_ms() -> float:
    return time.time() * 1000.0


class ConsultationLink:
    def __init__(
        self,
        client: ServerClient,
        consultation_id: str,
        ring: FrameRing,
        encoding: VideoEncoding,
        ice_servers: list[dict[str, Any]],
        shared_encoder: bool = True,
        captures: CaptureKit | None = None,
        recordings: RecordingKit | None = None,
        live_qc: bool = True,
    ) -> None:
        self.client = client
        self.live_qc = live_qc
        self.cid = consultation_id
        self.ring = ring
        self.encoding = encoding
        self.ice_servers = ice_servers
        self.viewers: dict[str, Viewer] = {}
        self.voice = VoiceHub(name=consultation_id)
        self.board = GuidanceBoard(name=consultation_id)
        self.shared_video: SharedH264Encoder | None = None
        self.live_first = LiveFirst()  # the live encoder takes each frame before the recorder does
        if shared_encoder and encoding.codec == "h264":
            self.shared_video = SharedH264Encoder(
                ring, preset=encoding.x264_preset, bitrate_bps=encoding.bitrate_bps, name=consultation_id,
                live_first=self.live_first,
            )
        self.captures = captures
        self.recordings = recordings
        self.recording: SessionRecording | None = None  # while the consultation is live and its site records
        self.consultation: dict[str, Any] | None = None  # as the server last described it
        self._stills: StillCapture | None = None
        self._qc_alerts: dict[str, dict[str, Any]] = {}  # code → the raised alert
        self._captured_labels: list[dict[str, Any]] = []  # what completeness counts
        self._capture_tasks: set[asyncio.Task[None]] = set()
        self.peer_id: str | None = None
        self.finished = False
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    # ---- signaling ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Stay in the room until the consultation closes; rejoin after drops."""
        attempt = 0
        qc_task: asyncio.Task[None] | None = None
        if self.live_qc:
            live_qc = LiveQc(self.ring, on_alert=self._on_qc_alert, name=self.cid)
            qc_task = asyncio.create_task(live_qc.run(), name=f"qc-{self.cid}")
        try:
            while not self.finished:
                try:
                    self._ws = await self.client.signal(self.cid)
                    attempt = 0
                    await self._session(self._ws)
                except ServerError as exc:
                    if exc.status in (401, 404, 409) or exc.fatal:
                        log.info("consultation %s: the server refused the edge: %s", self.cid, exc)
                        return
                except (aiohttp.ClientError, OSError) as exc:
                    log.info("consultation %s: signaling lost: %s", self.cid, exc)
                finally:
                    await self._drop_all()
                if not self.finished:
                    await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
                    attempt += 1
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

    async def _session(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await ws.send_json({"type": "join"})
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            try:
                message = json.loads(frame.data)
                await self._handle(message)
            except Exception:  # one bad message must not take the edge out of the room
                log.exception("consultation %s: failed to handle %r", self.cid, frame.data[:200])
        if ws.close_code == 4001:
            log.info("consultation %s: closed by the server (%s)", self.cid, ws.close_code)
            with contextlib.suppress(ServerError, aiohttp.ClientError):
                still_open = {c["id"] for c in await self.client.open_consultations()}
                self.finished = self.cid not in still_open

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if self.recording is not None:
            self.recording.signal(message)  # chat, joins and leaves, state changes: into the timeline
        if kind == "welcome":
            self.consultation = message.get("consultation") or self.consultation
            self.peer_id = message["you"]["id"]
            log.info("consultation %s: edge joined as %s", self.cid, self.peer_id)
            await self._follow_recording(message["peers"])
            for peer in message["peers"]:
                await self._offer_to(peer)
        elif kind == "peer-joined":
            await self._offer_to(message["peer"])
        elif kind == "peer-left":
            viewer = self.viewers.pop(message["peer_id"], None)
            if viewer is not None:
                await viewer.close()
        elif kind == "answer":
            viewer = self.viewers.get(message["from"])
            if viewer is not None:
                await viewer.accept_answer(message["sdp"])
        elif kind == "ice":
            viewer = self.viewers.get(message["from"])
            if viewer is not None:
                await viewer.add_ice(message.get("candidate"))
        elif kind == "capture":
            task = asyncio.create_task(self._capture(message), name=f"capture-{self.cid}")
            self._capture_tasks.add(task)
            task.add_done_callback(self._capture_tasks.discard)
        elif kind == "state":
            self.consultation = message["consultation"]
            await self._follow_recording([v.peer for v in self.viewers.values()])
            if message["consultation"]["state"] in CLOSED_STATES:
                self.finished = True
                if self._ws is not None:
                    await self._ws.close()
        elif kind == "error":
            log.warning(
                "consultation %s: signaling error %s: %s", self.cid, message.get("code"), message.get("message")
            )

    # ---- the recording (recordings/RECORDINGS.md) -----------------------------------------------------

    async def _follow_recording(self, peers: list[dict[str, Any]]) -> None:
        """Record while the consultation is live and its site's policy says so (the server's `recording`)."""
        consultation = self.consultation or {}
        wanted = consultation.get("state") == "live" and consultation.get("recording") is True
        if wanted and self.recording is None and self.recordings is not None:
            recording = SessionRecording(
                self.recordings, self.cid, self.ring, self.voice, self.viewers.values,
                live_first=self.live_first if self.shared_video is not None else None,
            )
            try:
                await recording.start("live", peers)
            except Exception:  # a full or read-only disk: the live session goes on unrecorded
                log.exception("consultation %s: the recording could not start", self.cid)
                return
            self.recording = recording
        elif not wanted and self.recording is not None:
            await self._stop_recording()

    async def _stop_recording(self) -> None:
        recording, self.recording = self.recording, None
        if recording is not None:
            await recording.stop()

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
        text = self._qc_message()
        for viewer in [only] if only is not None else list(self.viewers.values()):
            viewer.send("guidance", text)

    def record_qc_alert(self, alert: dict[str, Any]) -> None:
        """Put a live QC alert in the recording's timeline: `{"code", "text", "state": "raised"|"cleared", "t"?}`
        (qc/live.py's `Alert.to_dict()`; `t`, the deciding frame's wall clock in s, places it on the media clock)."""
        if self.recording is not None:
            self.recording.qc_alert(alert)

    # ---- captures (PROTOCOL.md §4) ---------------------------------------------------------------------

    async def _capture(self, command: dict[str, Any]) -> None:
        """Take the still or clip the server asked for from the ring, spool it for upload, and say so."""
        capture_id = str(command.get("id", ""))[:64]
        try:
            if self.captures is None or self.consultation is None or not self.consultation.get("study_uid"):
                raise CapturesOff("this edge does not capture for this consultation")
            if self._stills is None:
                self._stills = still_capture_for(self.captures, self.ring, self.consultation)
            request = CaptureRequest.from_dict(
                {
                    "kind": command.get("kind"),
                    "id": capture_id or None,
                    "frame_ms": command.get("frame_capture_ms"),
                    "seconds": command.get("seconds"),
                    "labels": command.get("labels") or {},
                }
            )
            result = await self._stills.handle(request, board_marks=self.board.marks)
        except CaptureError as exc:
            code, text = exc.code, exc.message
            log.info("consultation %s: capture %s refused: %s %s", self.cid, capture_id, code, text)
            await self._send({"type": "capture-failed", "id": capture_id, "code": code, "message": text[:500]})
            return
        log.info(
            "consultation %s: capture %s: %s %s (%d frames)",
            self.cid,
            capture_id,
            result.kind,
            result.sop_instance_uid,
            result.number_of_frames,
        )
        labels = command.get("labels")
        labels = labels if isinstance(labels, dict) else {}
        self._captured_labels.append({"id": result.sop_instance_uid, "labels": labels})
        self._send_qc()
        if self.recording is not None:
            self.recording.capture(capture_id, result.kind, labels, result.sop_instance_uid, result.number_of_frames)
        await self._send(
            {
                "type": "captured",
                "id": capture_id,
                "sop_uid": result.sop_instance_uid,
                "frames": result.number_of_frames,
                "frame_capture_ms": result.frame_capture_time_ns / 1e6,
            }
        )

    async def _send(self, message: dict[str, Any]) -> None:
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(message)

    async def _offer_to(self, peer: dict[str, Any]) -> None:
        if peer["role"] == "edge" or self._ws is None:
            return
        old = self.viewers.pop(peer["id"], None)
        if old is not None:
            await old.close()
        viewer = Viewer(
            self.cid,
            peer,
            self.ring,
            self.voice,
            self.encoding,
            self.ice_servers,
            self._on_message,
            self._on_open,
            shared_video=self.shared_video,
        )
        self.viewers[peer["id"]] = viewer
        sdp = await viewer.offer()
        await self._ws.send_json({"type": "offer", "to": peer["id"], "sdp": sdp})
        log.info("consultation %s: offered to %s %s", self.cid, peer["role"], peer["id"])

    async def _drop_all(self) -> None:
        viewers, self.viewers = list(self.viewers.values()), {}
        for viewer in viewers:
            await viewer.close()

    # ---- data channels -----------------------------------------------------------------------------

    def _on_open(self, viewer: Viewer, label: str) -> None:
        if label == "guidance":
            viewer.send("guidance", dc.encode(self.board.snapshot()))
            self._send_qc(only=viewer)

    def _on_message(self, viewer: Viewer, label: str, text: str) -> None:
        try:
            message = dc.decode(text, channel=label)
            if isinstance(message, dc.Ping):
                viewer.send("live", dc.encode(message.pong(now_ms())))
                return
            if not isinstance(message, dc.Mark | dc.Clear | dc.Pointer):
                raise MessageError("not_allowed", f"{message.TYPE} is sent by the edge, not to it")
            check_may_draw(viewer.role)
        except MessageError as exc:
            viewer.send("guidance", dc.encode(dc.GuidanceError.of(exc)))
            return
        stamped = replace(message, from_=viewer.peer_id, at=now_ms())
        if self.recording is not None:
            self.recording.guidance(stamped)
        if isinstance(stamped, dc.Pointer):
            text = dc.encode(stamped)
            for other in self.viewers.values():
                if other is not viewer:
                    other.send("live", text)
            return
        self.board.apply(stamped)
        text = dc.encode(stamped)
        for other in self.viewers.values():
            other.send("guidance", text)
