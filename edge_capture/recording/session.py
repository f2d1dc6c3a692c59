"""One live consultation's recording at the edge, as its `ConsultationLink` sees it.

The link starts it when the consultation goes live (an expert joined) and the site records, forwards what
happens (guidance, signaling messages, captures, QC alerts) and stops it when the consultation ends or the link
finishes. Everything here runs on the event loop and only queues work for the recorder thread; the two small
tasks it adds are a voice tap (the hub's mix of everyone, 20 ms frames, handed over as they come) and a
once-a-second sampling of each page's link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiortc.mediastreams import MediaStreamError

from edge_capture import datachannel as dc
from edge_capture.livefirst import LiveFirst
from edge_capture.recording import events
from edge_capture.recording.recorder import Recorder, RecorderSettings, RecorderStats, Segment
from edge_capture.recording.spool import next_segment
from edge_capture.recording.upload import RecordingUploader
from edge_capture.ring import FrameRing
from edge_capture.sealing.keys import Keyring
from edge_capture.viewer import Viewer
from edge_capture.voice import FRAME_SAMPLES, SAMPLE_RATE, VoiceHub
from recordings import timeline as tl
from signaling_server.signaling import messages as m

log = logging.getLogger(__name__)

VOICE_TAP = "recorder"  # the hub's listener id for the recording: not a peer, so it hears everyone
VOICE_FRAME_NS = FRAME_SAMPLES * 1_000_000_000 // SAMPLE_RATE
LINK_SECONDS = 1.0


@dataclass(frozen=True)
class RecordingKit:
    """What every consultation's recording on this edge shares."""

    root: Path
    settings: RecorderSettings
    keys: Keyring  # the spool key: every file is sealed as it is written (edge_capture/sealing/)
    uploader: RecordingUploader | None = None


class SessionRecording:
    def __init__(
        self,
        kit: RecordingKit,
        consultation_id: str,
        ring: FrameRing,
        voice: VoiceHub,
        viewers: Callable[[], Iterable[Viewer]],
        live_first: LiveFirst | None = None,
    ) -> None:
        self.kit, self.cid, self.ring, self.voice = kit, consultation_id, ring, voice
        self.live_first = live_first
        self._viewers = viewers
        self.room = events.Room()
        self.pointers = events.PointerThinner()
        self.recorder: Recorder | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, state: str, peers: Iterable[m.Peer]) -> None:
        folder = self.kit.root / self.cid
        first = await asyncio.to_thread(next_segment, folder)
        self._loop = asyncio.get_running_loop()
        recorder = Recorder(
            self.ring, folder, self.cid, self.kit.settings, first, self._on_segment, self.live_first, keys=self.kit.keys
        )
        recorder.start()  # raises (a folder it cannot make) before anything else changed
        self.recorder = recorder
        if self.kit.uploader is not None:
            self.kit.uploader.live.add(self.cid)
        self.event(tl.State(0, state))
        for event in self.room.present(peers):
            self.event(event)
        if self.kit.settings.audio:
            self._tasks.append(asyncio.create_task(self._tap_voice(), name=f"recording-voice-{self.cid}"))
        self._tasks.append(asyncio.create_task(self._sample_links(), name=f"recording-links-{self.cid}"))
        log.info("consultation %s: recording to %s (segment %s on)", self.cid, folder, first)

    # ---- what happens ----------------------------------------------------------------------------------------

    def event(self, event: tl.Event) -> None:
        if self.recorder is not None:
            self.recorder.add_event(event)

    def guidance(self, message: dc.Mark | dc.Clear | dc.Pointer) -> None:
        if isinstance(message, dc.Pointer) and not self.pointers.keep(message, time.monotonic()):
            return
        self._try(lambda: [events.from_guidance(message)], message)

    def signal(self, message: m.ServerMessage) -> None:
        self._try(lambda: self.room.from_signal(message), message)

    def capture(self, capture_id: str, kind: str, labels: dict[str, Any], sop_uid: str, frames: int) -> None:
        self._try(lambda: [events.from_capture(capture_id, kind, labels, sop_uid, frames)], capture_id)

    def qc_alert(self, alert: dict[str, Any]) -> None:
        """A live QC alert (qc/live.py ``Alert.to_dict()``); its ``t`` (wall clock seconds of the frame that decided
        it) places it on the media clock, else it is placed now."""
        try:
            event = events.from_qc(alert)
        except (ValueError, TypeError) as exc:
            log.warning("consultation %s: QC alert not in the timeline: %.200r (%s)", self.cid, alert, exc)
            return
        decided = alert.get("t")
        stamp_ns = time.monotonic_ns()
        if isinstance(decided, int | float) and not isinstance(decided, bool) and 0 <= time.time() - decided < 60:
            stamp_ns -= int((time.time() - decided) * 1e9)
        if self.recorder is not None:
            self.recorder.add_event(event, stamp_ns)

    def link_lost(self, state: str, at_ns: int | None = None) -> None:
        """One end of a link-lost span (``start``, ``end``), at ``at_ns`` (monotonic; now if None)."""
        if self.recorder is not None:
            self.recorder.add_event(tl.LinkLost(0, state), at_ns)

    def _try(self, make: Callable[[], list[tl.Event]], what: object) -> None:
        """Queue the events ``make`` builds; what does not fit the timeline is logged, never raised into the
        live session."""
        try:
            built = make()
        except (ValueError, KeyError, TypeError) as exc:  # TimelineError is a ValueError
            log.warning("consultation %s: not in the timeline: %.200r (%s)", self.cid, what, exc)
            return
        for event in built:
            self.event(event)

    # ---- lifetime ---------------------------------------------------------------------------------------------

    async def stop(self) -> RecorderStats | None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        stats = await asyncio.to_thread(recorder.stop)
        uploader = self.kit.uploader
        if uploader is not None:
            uploader.writing.end(self.cid)
            uploader.live.discard(self.cid)
            uploader.wake()
        log.info(
            "consultation %s: recording stopped: %s frames, %s dropped, %s pointer positions thinned out",
            self.cid, stats.frames_written, stats.frames_dropped, self.pointers.dropped,
        )
        return stats

    def _on_segment(self, segment: Segment) -> None:
        """On the recorder thread: tell the uploader which files are growing and which are whole."""
        uploader, loop = self.kit.uploader, self._loop
        if uploader is None or loop is None:
            return
        if segment.closed:
            uploader.writing.end(self.cid, segment.media, segment.timeline)
        else:
            uploader.writing.begin(self.cid, segment.media, segment.timeline)
        with contextlib.suppress(RuntimeError):  # the loop is gone: the next start uploads it
            loop.call_soon_threadsafe(uploader.wake)

    async def _tap_voice(self) -> None:
        """Everyone's voice, mixed by the hub, on the monotonic clock: frame k of the hub was heard at
        ``first + k × 20 ms`` (the hub's ticks are exact; gaps in them become gaps in the recording)."""
        track = self.voice.listener_track(VOICE_TAP)
        first: tuple[int, int] | None = None
        try:
            while True:
                frame = await track.recv()
                tick = int(frame.pts or 0) // FRAME_SAMPLES
                if first is None:
                    first = (tick, time.monotonic_ns() - VOICE_FRAME_NS)
                if self.recorder is not None:
                    samples = frame.to_ndarray().reshape(-1)
                    self.recorder.add_voice(samples, first[1] + (tick - first[0]) * VOICE_FRAME_NS)
        except MediaStreamError:
            pass
        finally:
            track.stop()

    async def _sample_links(self) -> None:
        previous: dict[str, tuple[int, int | None, float]] = {}
        while True:
            await asyncio.sleep(LINK_SECONDS)
            try:
                links = await self._link_sample(previous)
            except Exception:  # one odd sample must not end the sampling
                log.exception("consultation %s: link sample failed", self.cid)
                continue
            if links:
                self.event(tl.Link(0, tuple(links)))

    async def _link_sample(self, previous: dict[str, tuple[int, int | None, float]]) -> list[tl.ViewerLink]:
        links = []
        for viewer in list(self._viewers()):
            if viewer.closed:
                continue
            now, frames = time.monotonic(), int(viewer.stats["frames_sent"])
            bytes_sent, rtt, loss = await _video_sender_stats(viewer)
            before = previous.get(viewer.peer_id)
            previous[viewer.peer_id] = (frames, bytes_sent, now)
            if before is not None:
                sent = None if bytes_sent is None or before[1] is None else bytes_sent - before[1]
                links.append(events.viewer_link(viewer.peer_id, frames - before[0], now - before[2], sent, rtt, loss))
        return links


async def _video_sender_stats(viewer: Viewer) -> tuple[int | None, float | None, float | None]:
    """(bytes sent, round-trip time in s, fraction lost) of the page's video, as its RTCP reports say."""
    bytes_sent: int | None = None
    rtt: float | None = None
    loss: float | None = None
    try:
        sender = next((s for s in viewer.pc.getSenders() if s.kind == "video"), None)
        report = await sender.getStats() if sender is not None else {}
    except Exception:  # a connection closing under us: no numbers this second
        return None, None, None
    for stats in report.values():
        if stats.type == "outbound-rtp":
            bytes_sent = int(stats.bytesSent)
        elif stats.type == "remote-inbound-rtp":  # from the page's last receiver report, when it sent one
            rtt = None if stats.roundTripTime is None else float(stats.roundTripTime)
            loss = None if stats.fractionLost is None else float(stats.fractionLost)
    return bytes_sent, rtt, loss
