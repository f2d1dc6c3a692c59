"""Encode once, send to every page: one libx264 encoder per consultation, its packets fanned out to viewers.

aiortc runs one encoder per ``RTCRtpSender``, so N pages would encode every frame N times (WEBRTC.md). Here one
:class:`SharedH264Encoder` per consultation reads the ring latest-frame-wins, encodes each frame once (in the
default executor, with teleus's x264 settings: :func:`edge_capture.encoding.open_libx264`) and hands the
``av.Packet`` to one :class:`PacketVideoTrack` per page::

    ring ──▶ SharedH264Encoder (one task, one x264) ──▶ PacketVideoTrack per page ──▶ sender: pack() ──▶ RTP

aiortc sends pre-encoded data as it is: when a track's ``recv()`` returns an ``av.Packet`` rather than a frame,
``RTCRtpSender._next_encoded_frame`` calls its encoder's ``pack()``, which for H.264 splits the Annex B stream
into NAL units and packetizes them without encoding, taking the RTP timestamp from the packet's pts. pts come
from the capture clock exactly as in :class:`~edge_capture.tracks.RingVideoTrack` (``capture_pts``, 90 kHz),
counted from the first frame of the encoder's run.

A page cannot skip a P-frame the way a ``RingVideoTrack`` skips a picture: every later picture refers to it, and
a lost one means a corrupt picture until the next keyframe. So each track has a small bounded queue; a track
whose sender falls ``queue_frames`` packets behind drops its queue (counted, logged) and waits for the next
keyframe. A new track also starts at a keyframe. A waiting track asks the encoder for one when its sender reads,
and again each second while none came: a stalled sender asks nothing, and a slow one cannot fill every page's
stream with keyframes. The encoder runs while at least one track reads, and starts afresh (a new context, pts
from 0) with the next one.

Guidance first: pointer moves and marks are relayed on the same event loop that runs every page's RTP sender. When
the edge is saturated the loop runs late, and each encoded frame adds a burst of packets to send on it. The encoder
measures how late the loop is at every frame (from the moment x264 returned in its worker thread to the moment the
loop resumed the encoder); while that is more than ``shed_after_seconds``, the next frames are dropped before they
are encoded (``frames_shed``), though never so many that no frame was encoded for ``max_shed_seconds``: the video
thins out, down to a few frames a second, rather than guidance waiting behind it. The ring keeps nothing but the
newest frame for the encoder, so nothing ever queues in front of it either.

Seams into aiortc's sender, each on one sender instance (nothing process-wide), set by
:meth:`PacketVideoTrack.bind_sender`:

- keyframes: aiortc answers a PLI or FIR by calling ``sender._send_keyframe()``, which only sets a flag read by
  its own encoder's ``encode`` (never by ``pack``). That method is replaced, on the instance, by a hook asking
  the shared encoder (and deferring to the original if the sender carries another track by then).
- bitrate: a REMB sets ``target_bitrate`` on the sender's encoder object, the private ``_RTCRtpSender__encoder``
  (made at the sender's first packet, clamped to ``aiortc.codecs.h264``'s bounds, which
  :func:`~edge_capture.encoding.apply_encoding` sets), and the sender's latest receiver report (loss, round trip).
  They are read, never written, once per encoded frame by the encoder's :class:`~edge_capture.encoding.SenderRate`
  (the rate controller, docs/NETWORK.md), capped at the configured bitrate; the open x264 context is retargeted in
  place (no keyframe, :func:`~edge_capture.encoding.fit_context`). Below some rate the controller's shape drops
  every other frame or scales the picture down (a new context: a keyframe), per the degradation setting. If a later
  aiortc renames the attributes, the target stays at the configured bitrate (a warning says so).
- RTP timestamps: :mod:`edge_capture.rtpclock`, read exactly as ``RingVideoTrack`` does.
- resends: aiortc answers each NACKed sequence number by awaiting ``sender._retransmit(seq)``, which sends the packet
  again from its history (``_RTCRtpSender__rtp_history``, ``aiortc.rtcrtpsender.RTP_HISTORY_SIZE`` slots: 512 here,
  set by :func:`~edge_capture.encoding.apply_encoding`, ~0.9 s at 6 Mb/s, so a resend lost once can be sent again at a
  300 ms round trip). That method is replaced, on the instance, by a hook that looks the packet up in the same
  history (read, never written), measures its age from the abs-send-time aiortc stamped on it, and asks
  :func:`edge_capture.resend.decide`: superseded by a newer keyframe, too old, or over the resend budget (a share of
  what gets through, ``SenderRate.getting_through_bps``) and it is not sent; in the latter two cases the shared
  encoder is asked for a keyframe (at most twice a second) rather than leaving the page to wait for one. Anything the
  hook cannot read (no history, no abs-send-time, another track) goes to aiortc's own method.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import av
import av.video.frame
from aiortc import MediaStreamTrack, RTCRtpSender, rtcrtpsender
from aiortc import clock as rtc_clock
from aiortc.mediastreams import MediaStreamError

from edge_capture import resend
from edge_capture.encoding import SenderRate, fit_context, open_libx264, read_fb_rtt, read_x264_settings
from edge_capture.errors import RingClosed
from edge_capture.frames import SourceFrame
from edge_capture.livefirst import LiveEncoding, LiveFirst
from edge_capture.ring import FrameRing, RingReader
from edge_capture.rtpclock import RtpClock, sent_rtp_timestamp
from edge_capture.tracks import VIDEO_TIME_BASE, FrameCallback, capture_pts

logger = logging.getLogger(__name__)

# How far a page's sender may fall behind (~130 ms at 30 fps) before it restarts at a keyframe.
QUEUE_FRAMES = 4
# A page waiting for a keyframe asks again after this long; a slow page cannot fill everyone's stream with them.
KEYFRAME_ASK_SECONDS = 1.0
# An event loop this late means the edge is saturated: frames are dropped, but at least one goes out in this long.
SHED_AFTER_SECONDS = 0.05
MAX_SHED_SECONDS = 0.2
_ENCODER_ATTRIBUTE = "_RTCRtpSender__encoder"
_HISTORY_ATTRIBUTE = "_RTCRtpSender__rtp_history"
_ABS_SEND_WRAP_S = 60.0  # abs-send-time wraps every 64 s: an older keyframe is not compared with it


def abs_send_time_now() -> int:
    """Now, in the 24-bit abs-send-time units aiortc stamps on each RTP packet it sends."""
    return (rtc_clock.current_ntp_time() >> 14) & 0xFFFFFF


def sender_target_bitrate(sender: RTCRtpSender) -> int | None:
    """The target aiortc set on ``sender``'s encoder (from REMB), or None before its first packet or if unknowable."""
    encoder = getattr(sender, _ENCODER_ATTRIBUTE, None)
    value = getattr(encoder, "target_bitrate", None)
    return value if isinstance(value, int) else None


@dataclass(frozen=True)
class EncodedFrame:
    """One source frame, encoded once: what every page's sender packs."""

    packet: av.Packet[Any]
    pts: int
    index: int
    capture_time_ns: int
    keyframe: bool


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The picture size a frame is encoded at when a slow link gave up resolution: even sizes, for 4:2:0."""
    if scale == 1.0:
        return width, height
    return round(width * scale / 2) * 2, round(height * scale / 2) * 2


def live_encoding(
    packets: list[av.Packet[Any]],
    source: SourceFrame,
    pts: int,
    bitrate_bps: int,
    x264: _X264,
    scale: float = 1.0,
    full_bitrate_bps: int = 0,
) -> LiveEncoding | None:
    """What the recorder may copy of this frame's encode: its access unit (None when x264 gave another frame's), with
    the size it was encoded at (a scaled-down picture is not copied: the recorder encodes the full one itself)."""
    if not packets or any(packet.pts != pts for packet in packets):
        return None
    data = b"".join(bytes(packet) for packet in packets)
    keyframe = any(packet.is_keyframe for packet in packets)
    width, height = scaled_size(source.width, source.height, scale)
    return LiveEncoding(data, keyframe, width, height, bitrate_bps, x264.contexts_opened, full_bitrate_bps)


class _X264:
    """One libx264 context; used by one executor thread at a time (the encoder task awaits each call)."""

    def __init__(self, preset: str) -> None:
        self.preset = preset
        self.codec: av.VideoCodecContext | None = None
        self.options: dict[str, str] = {}
        self.settings: str | None = None
        self.contexts_opened = 0
        self._first_output = False
        self.finished_ns = 0  # monotonic time the last encode returned (in the worker thread)

    def encode(
        self, source: SourceFrame, pts: int, bitrate_bps: int, keyframe: bool, scale: float = 1.0
    ) -> list[av.Packet[Any]]:
        # the I420 planes are cached on the frame and never written again: wrapped, not copied
        frame = av.VideoFrame.from_numpy_buffer(source.i420(), format="yuv420p")
        if scale != 1.0:  # a slow link, resolution given up (SenderRate.shape_for)
            width, height = scaled_size(frame.width, frame.height, scale)
            frame = frame.reformat(width=width, height=height)
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        codec = self.codec
        if codec is not None and fit_context(codec, frame.width, frame.height, bitrate_bps):  # else retargeted
            codec = None
        if codec is None:
            codec, self.options = open_libx264(frame.width, frame.height, bitrate_bps, self.preset)
            self.codec, self.settings, self._first_output = codec, None, True
            self.contexts_opened += 1
        frame.pict_type = av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
        packets = codec.encode(frame)
        if self._first_output and packets:
            self._first_output = False
            self.settings = read_x264_settings(bytes(packets[0]))
        self.finished_ns = time.monotonic_ns()
        return packets


class SharedH264Encoder:
    """One libx264 encode per captured frame for every :class:`PacketVideoTrack` of a consultation."""

    def __init__(
        self,
        ring: FrameRing,
        preset: str = "ultrafast",
        bitrate_bps: int = 6_000_000,
        name: str = "",
        queue_frames: int = QUEUE_FRAMES,
        keyframe_ask_seconds: float = KEYFRAME_ASK_SECONDS,
        live_first: LiveFirst | None = None,
        rate: SenderRate | None = None,
        shed_after_seconds: float = SHED_AFTER_SECONDS,
        max_shed_seconds: float = MAX_SHED_SECONDS,
    ) -> None:
        self.ring = ring
        self.rate = rate or SenderRate(bitrate_bps)  # the target, from the pages' REMB and receiver reports
        self.shed_after_ns = int(shed_after_seconds * 1e9)
        self.max_shed_ns = int(max_shed_seconds * 1e9)
        self.frames_shed = 0  # dropped because they reached the encoder too late (the edge is saturated)
        self.live_first = live_first  # told after each frame, so that the recorder encodes it after us
        self.preset = preset
        self.max_bitrate_bps = bitrate_bps
        self.bitrate_bps = bitrate_bps
        self.name = name
        self.queue_frames = queue_frames
        self.keyframe_ask_seconds = keyframe_ask_seconds
        self.frames_encoded = 0
        self.frames_thinned = 0  # read from the ring but not encoded: the frame rate given up on a slow link
        self.keyframes_encoded = 0
        self.runs = 0
        self._skipped_before = 0
        self._reader: RingReader | None = None
        self._x264: _X264 | None = None
        self._tracks: list[PacketVideoTrack] = []
        self._task: asyncio.Task[None] | None = None
        self._keyframe_reason: str | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def subscribers(self) -> int:
        return len(self._tracks)

    @property
    def frames_skipped(self) -> int:
        """Captured frames never encoded because a newer one was ready first (latest-frame-wins)."""
        return self._skipped_before + (self._reader.frames_skipped if self._reader else 0)

    @property
    def x264_options(self) -> dict[str, str]:
        return dict(self._x264.options) if self._x264 else {}

    @property
    def x264_settings(self) -> str | None:
        """The settings line x264 wrote into the current context's first keyframe."""
        return self._x264.settings if self._x264 else None

    def request_keyframe(self, reason: str) -> None:
        """Make the next encoded frame a keyframe; requests made before it is encoded count as one."""
        if self._keyframe_reason is None:
            self._keyframe_reason = reason
        logger.debug("shared encoder %s: keyframe asked (%s)", self.name, reason)

    def subscribe(self, track: PacketVideoTrack) -> None:
        if track in self._tracks:
            return
        self._tracks.append(track)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"shared-h264-{self.name}")
            self._task.add_done_callback(self._task_done)
        logger.info("shared encoder %s: %s subscribed (%s now)", self.name, track.name, len(self._tracks))

    def unsubscribe(self, track: PacketVideoTrack) -> None:
        if track not in self._tracks:
            return
        self._tracks.remove(track)
        logger.info("shared encoder %s: %s left (%s now)", self.name, track.name, len(self._tracks))
        if not self._tracks and self._task is not None:
            self._task.cancel()  # an encode already in the executor finishes there on its own context
            self._task = None

    async def close(self) -> None:
        """Stop encoding and end every track still subscribed."""
        task, self._task = self._task, None
        for track in list(self._tracks):
            track.stop()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        x264 = self._x264 = _X264(self.preset)  # a fresh context per run: a cancelled encode may still hold the old
        self._skipped_before = self.frames_skipped
        reader = self._reader = RingReader(self.ring)
        recent: OrderedDict[int, SourceFrame] = OrderedDict()  # pts -> frame, to pair packets with their frame
        first_ns: int | None = None
        considered = 0
        last_encoded_ns: int | None = None  # monotonic time of the last encode's start
        loop_late_ns = 0  # how late the loop resumed the encoder after the last encode
        self.runs += 1
        logger.info("shared encoder %s: started (run %s)", self.name, self.runs)
        try:
            while True:
                source = await reader.next()
                now_ns = time.monotonic_ns()
                if self._sheds(loop_late_ns, now_ns, last_encoded_ns):
                    continue
                last_encoded_ns = now_ns
                first_ns = source.monotonic_ns if first_ns is None else first_ns
                pts = capture_pts(source.monotonic_ns - first_ns)
                if recent and pts <= next(reversed(recent)):
                    continue  # captured within 100 µs of the previous frame: x264 needs rising pts
                recent[pts] = source
                while len(recent) > 8:
                    recent.popitem(last=False)
                bitrate = self._follow_bitrate()
                shape = self.rate.shape_for(source.width, source.height)
                considered += 1
                if considered % shape.rate_divisor:  # a slow link, frame rate given up: every other frame
                    self.frames_thinned += 1
                    if self.live_first is not None:
                        self.live_first.encoded(source.index)  # the recorder need not wait for it
                    continue
                reason, self._keyframe_reason = self._keyframe_reason, None
                opened = x264.contexts_opened
                # x264 budgets each frame at bitrate / 30: with every other frame left out, it is told twice the rate
                packets = await loop.run_in_executor(
                    None, x264.encode, source, pts, bitrate * shape.rate_divisor, reason is not None, shape.scale
                )
                loop_late_ns = time.monotonic_ns() - x264.finished_ns
                self.frames_encoded += 1
                if self.live_first is not None:  # the recorder encodes it after us, or copies what we made
                    made = live_encoding(packets, source, pts, bitrate, x264, shape.scale, self.max_bitrate_bps)
                    self.live_first.encoded(source.index, made)
                if x264.contexts_opened != opened:
                    logger.info("shared encoder %s: libx264 opened at %s b/s, %s", self.name, bitrate, x264.options)
                for packet in packets:
                    self._publish(packet, recent, reason)
        except RingClosed:
            logger.info("shared encoder %s: the ring closed; ending %s tracks", self.name, len(self._tracks))
            self._end_tracks()
        except Exception:
            # x264 failed: end the pages' video (their senders stop) rather than leave them waiting forever
            logger.exception("shared encoder %s: encoding failed; ending %s tracks", self.name, len(self._tracks))
            self._end_tracks()
        finally:
            logger.info("shared encoder %s: stopped after %s frames", self.name, self.frames_encoded)

    def _sheds(self, loop_late_ns: int, now_ns: int, last_encoded_ns: int | None) -> bool:
        """Whether to drop the next frame unencoded: the loop runs late (the edge is saturated) and a frame went out
        recently."""
        if loop_late_ns <= self.shed_after_ns:
            return False
        if last_encoded_ns is None or now_ns - last_encoded_ns >= self.max_shed_ns:
            return False
        self.frames_shed += 1
        if self.frames_shed % 100 == 1:
            late_ms = loop_late_ns / 1e6
            logger.warning("shared encoder %s: loop %.0f ms late; frame dropped (%s so far)", self.name, late_ms,
                           self.frames_shed)  # fmt: skip
        return True

    def _end_tracks(self) -> None:
        for track in list(self._tracks):
            track._end()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if self._task is task:
            self._task = None

    def _follow_bitrate(self) -> int:
        senders = [track._sender for track in self._tracks if track._sender is not None]
        target = min(self.max_bitrate_bps, self.rate.update(senders))
        if target != self.bitrate_bps:
            logger.debug("shared encoder %s: target %s -> %s b/s", self.name, self.bitrate_bps, target)
            self.bitrate_bps = target
        return target

    def _publish(self, packet: av.Packet[Any], recent: OrderedDict[int, SourceFrame], reason: str | None) -> None:
        source = recent.get(packet.pts) if packet.pts is not None else None
        if source is None or packet.pts is None:
            logger.error("shared encoder %s: x264 returned pts %s, not a frame given to it", self.name, packet.pts)
            for track in list(self._tracks):
                track._resync()  # dropped: no page may go on decoding without it
            return
        packet.time_base = VIDEO_TIME_BASE
        frame = EncodedFrame(packet, packet.pts, source.index, source.capture_time_ns, packet.is_keyframe)
        if frame.keyframe:
            self.keyframes_encoded += 1
            logger.debug("shared encoder %s: keyframe at frame %s (%s)", self.name, source.index, reason)
        for track in list(self._tracks):
            track._deliver(frame)


class _KeyframeHook:
    """Stands in for ``RTCRtpSender._send_keyframe`` on one sender, so its PLI/FIR reach the shared encoder."""

    def __init__(self, track: PacketVideoTrack, sender: RTCRtpSender, original: Callable[[], None]) -> None:
        self.track = track
        self.sender = sender
        self.original = original

    def __call__(self) -> None:
        if self.sender.track is self.track:
            self.track.request_keyframe()
        else:  # the sender carries another track now (replaceTrack): its own encoder
            self.original()


class _ResendHook:
    """Stands in for ``RTCRtpSender._retransmit`` on one sender: a NACKed packet is sent again only if
    :func:`edge_capture.resend.decide` says so; otherwise the shared encoder may be asked for a keyframe."""

    def __init__(
        self, track: PacketVideoTrack, sender: RTCRtpSender, original: Callable[[int], Coroutine[Any, Any, None]]
    ) -> None:
        self.track = track
        self.sender = sender
        self.original = original

    async def __call__(self, sequence_number: int) -> None:
        history = getattr(self.sender, _HISTORY_ATTRIBUTE, None)
        size = getattr(rtcrtpsender, "RTP_HISTORY_SIZE", None)
        if self.sender.track is not self.track or not isinstance(history, dict) or not isinstance(size, int):
            await self.original(sequence_number)
            return
        packet = history.get(sequence_number % size)
        if packet is None or packet.sequence_number != sequence_number:
            return  # gone from the history: aiortc would send nothing either
        sent = getattr(packet.extensions, "abs_send_time", None)
        if not isinstance(sent, int):
            await self.original(sequence_number)
            return
        if self.track.judge_resend(sent, len(packet.payload) + 12, read_fb_rtt(self.sender)):
            await self.original(sequence_number)


class PacketVideoTrack(MediaStreamTrack):
    """A page's video from the consultation's shared encoder: ``recv()`` returns the next ``av.Packet[Any]``."""

    kind = "video"

    def __init__(self, encoder: SharedH264Encoder, on_frame: FrameCallback | None = None, name: str = "") -> None:
        super().__init__()
        self.name = name or self.id
        self._encoder = encoder
        self._on_frame = on_frame
        self._queue: deque[EncodedFrame] = deque()
        self._ready = asyncio.Event()
        self._subscribed = False
        self._needs_keyframe = True
        self._ended = False
        self._sender: RTCRtpSender | None = None
        self._clock = RtpClock(self.name)
        self._last_pts: int | None = None
        self._keyframe_asked_at: float | None = None
        self.frames_sent = 0
        self.frames_dropped = 0
        self.resyncs = 0
        self.keyframes_requested = 0
        self.resend_limits = resend.ResendLimits()
        self._resend = resend.ResendState()
        self._keyframe_sent_abs: int | None = None  # abs-send-time when the newest keyframe was handed to the sender
        self._keyframe_sent_at = -math.inf  # the same, monotonic: abs-send-time wraps every 64 s

    @property
    def resends(self) -> dict[str, int]:
        """NACKed packets by what was done with them (edge_capture.resend's verdicts)."""
        return dict(zip(resend.VERDICTS, self._resend.counts, strict=True))

    @property
    def frames_skipped(self) -> int:
        """Encoded frames this page never got: before its first keyframe, and each time it fell behind."""
        return self.frames_dropped

    @property
    def rtp_origin(self) -> int | None:
        """The sender's RTP timestamp origin, once learnt."""
        return self._clock.origin

    def bind_sender(self, sender: RTCRtpSender) -> None:
        """Learn RTP timestamps and REMB targets from ``sender``, and send its PLI/FIR to the shared encoder."""
        if sent_rtp_timestamp(sender) is None:
            logger.warning("track %s: this aiortc hides the sent RTP timestamp; no frame map", self.name)
        if not hasattr(sender, _ENCODER_ATTRIBUTE):
            logger.warning("track %s: this aiortc hides the sender's encoder; REMB is not followed", self.name)
        original = sender._send_keyframe
        if isinstance(original, _KeyframeHook):
            original = original.original
        sender._send_keyframe = _KeyframeHook(self, sender, original)  # type: ignore[method-assign]
        retransmit: Callable[[int], Coroutine[Any, Any, None]] = sender._retransmit
        if isinstance(retransmit, _ResendHook):
            retransmit = retransmit.original
        if not hasattr(sender, _HISTORY_ATTRIBUTE):
            logger.warning("track %s: this aiortc hides the sender's packet history; every NACK is answered", self.name)
        sender._retransmit = _ResendHook(self, sender, retransmit)  # type: ignore[method-assign]
        self._sender = sender

    def set_on_frame(self, on_frame: FrameCallback | None) -> None:
        self._on_frame = on_frame

    def target_bitrate(self) -> int | None:
        return sender_target_bitrate(self._sender) if self._sender is not None else None

    def request_keyframe(self) -> None:
        """What the page's PLI or FIR does (through the sender hook)."""
        self.keyframes_requested += 1
        self._encoder.request_keyframe(f"PLI/FIR from {self.name}")

    def judge_resend(self, sent_abs: int, size_bytes: int, rtt_s: float | None) -> bool:
        """Whether to send again a NACKed packet first sent at ``sent_abs`` (abs-send-time); asks for a keyframe
        when the page is left with a hole it cannot fill (edge_capture.resend)."""
        now_abs = abs_send_time_now()
        since_keyframe = None
        if self._keyframe_sent_abs is not None and time.monotonic() - self._keyframe_sent_at < _ABS_SEND_WRAP_S:
            since_keyframe = resend.abs_send_age(now_abs, self._keyframe_sent_abs)
        request = resend.Request(
            at=time.monotonic(),
            age_s=resend.abs_send_age(now_abs, sent_abs),
            size_bytes=size_bytes,
            since_keyframe_s=since_keyframe,
            rate_bps=self._encoder.rate.getting_through_bps,
            rtt_s=rtt_s,
        )
        self._resend = resend.decide(self.resend_limits, self._resend, request)
        if self._resend.ask_keyframe:
            self.keyframes_requested += 1
            self._encoder.request_keyframe(f"{self.name}: a NACKed packet {self._resend.verdict}")
        return self._resend.verdict == "resend"

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        if not self._subscribed:
            self._subscribed = True
            self._encoder.subscribe(self)
        self._learn_rtp_origin()
        while not self._queue:
            if self._ended:
                self.stop()
                raise MediaStreamError
            self._ready.clear()
            wait = None
            if self._needs_keyframe:  # asked for only while the sender reads: a stalled page costs nobody
                wait = self._ask_keyframe()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), wait)
        frame = self._queue.popleft()
        self.frames_sent += 1
        if frame.keyframe:  # its packets are stamped from now on: anything sent before it is superseded
            self._keyframe_sent_abs, self._keyframe_sent_at = abs_send_time_now(), time.monotonic()
        self._last_pts = frame.pts
        rtp = self._clock.rtp_timestamp(frame.pts)
        if rtp is not None and self._on_frame is not None:
            try:
                self._on_frame(rtp, frame.capture_time_ns / 1e6)
            except Exception:  # an error here would end aiortc's send loop: the video must outlive it
                logger.exception("track %s: on_frame failed", self.name)
        return frame.packet

    def stop(self) -> None:
        super().stop()
        self._end()
        if self._subscribed:
            self._subscribed = False
            self._encoder.unsubscribe(self)

    def _end(self) -> None:
        self._ended = True
        self._queue.clear()
        self._ready.set()

    def _ask_keyframe(self) -> float:
        """Ask the encoder for a keyframe, at most once per ``keyframe_ask_seconds``; the seconds until the next ask."""
        now, interval = time.monotonic(), self._encoder.keyframe_ask_seconds
        if self._keyframe_asked_at is None or now - self._keyframe_asked_at >= interval:
            self._keyframe_asked_at = now
            self._encoder.request_keyframe(f"{self.name} {'resyncs' if self.resyncs else 'starts'}")
        return self._keyframe_asked_at + interval - now

    def _deliver(self, frame: EncodedFrame) -> None:
        if self._ended:
            return
        if len(self._queue) >= self._encoder.queue_frames:
            # Fell behind: what is queued is useless without what would be dropped. Start over at a keyframe.
            logger.warning("track %s: %s frames behind; restarting at a keyframe", self.name, len(self._queue))
            self._resync()
        if self._needs_keyframe and not frame.keyframe:
            self.frames_dropped += 1
            return
        self._needs_keyframe = False
        self._queue.append(frame)
        self._ready.set()

    def _resync(self) -> None:
        self.resyncs += 1
        self.frames_dropped += len(self._queue)
        self._queue.clear()
        self._needs_keyframe = True

    def _learn_rtp_origin(self) -> None:
        # Runs when the sender asks for the next packet: every RTP packet of the previous one has gone out.
        if self._sender is None:
            return
        sent = sent_rtp_timestamp(self._sender)
        if sent is not None:
            self._clock.observe(sent, self._last_pts)
