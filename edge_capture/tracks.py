"""The video track each viewer's sender reads: the newest captured frame, never a queue.

One :class:`RingVideoTrack` per viewer (aiortc runs one encoder per sender). Its ``recv()`` awaits the ring's
next frame after the last one it handed out, so a slow encoder skips frames instead of falling behind
(latest-frame-wins); skipped frames are counted. ``pts`` comes from the capture clock (90 kHz, counted from
the first frame this track sent), so the RTP timestamps keep real capture spacing whatever the encoder does.

Once :meth:`RingVideoTrack.bind_sender` has been called, the track also learns which RTP timestamp each frame
goes out with (see :mod:`edge_capture.rtpclock`) and reports ``on_frame(rtp, capture_ms)`` just before it
hands each frame to the sender: what the edge sends on the ``live`` data channel as ``frame`` messages.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
from collections.abc import Callable

import av
from aiortc import MediaStreamTrack, RTCRtpSender
from aiortc.mediastreams import MediaStreamError

from edge_capture.errors import RingClosed
from edge_capture.frames import SourceFrame
from edge_capture.ring import FrameRing, RingReader
from edge_capture.rtpclock import RtpClock, sent_rtp_timestamp

logger = logging.getLogger(__name__)

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)

# pts are whole multiples of 100 µs: aiortc's VP8 encoder lets PyAV rebase the frame to libvpx's 1 µs time
# base (rounding) and converts back to 90 kHz by truncation, so any other pts can go out one tick lower than
# it came in, and the RTP map would be off by one. 100 µs is exact in both clocks.
PTS_STEP = 9


def capture_pts(elapsed_ns: int) -> int:
    """The 90 kHz pts of a frame captured ``elapsed_ns`` after the track's first frame."""
    return elapsed_ns * VIDEO_CLOCK_RATE // 1_000_000_000 // PTS_STEP * PTS_STEP


FrameCallback = Callable[[int, float], None]
"""``on_frame(rtp_timestamp, capture_ms)``: capture_ms in edge wall-clock ms since the Unix epoch."""


class RingVideoTrack(MediaStreamTrack):
    """A live video track for one viewer, fed by the frame ring."""

    kind = "video"

    def __init__(self, ring: FrameRing, on_frame: FrameCallback | None = None, name: str = "") -> None:
        super().__init__()
        self.name = name or self.id
        self._reader = RingReader(ring)
        self._on_frame = on_frame
        self._sender: RTCRtpSender | None = None
        self._clock = RtpClock(self.name)
        self._first_monotonic_ns: int | None = None
        self._last_pts: int | None = None

    @property
    def frames_sent(self) -> int:
        """Frames handed to the sender (to its encoder)."""
        return self._reader.frames_read

    @property
    def frames_skipped(self) -> int:
        """Captured frames this viewer never got because a newer one was ready first."""
        return self._reader.frames_skipped

    @property
    def rtp_origin(self) -> int | None:
        """The sender's RTP timestamp origin, once learnt."""
        return self._clock.origin

    def bind_sender(self, sender: RTCRtpSender) -> None:
        """Learn RTP timestamps from ``sender`` (the one ``addTrack``/``addTransceiver`` gave this track)."""
        if sent_rtp_timestamp(sender) is None:
            logger.warning("track %s: this aiortc hides the sent RTP timestamp; no frame map", self.name)
        self._sender = sender

    def set_on_frame(self, on_frame: FrameCallback | None) -> None:
        self._on_frame = on_frame

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        self._learn_rtp_origin()
        try:
            source = await self._reader.next()
        except RingClosed:
            self.stop()
            raise MediaStreamError from None

        if self._first_monotonic_ns is None:
            self._first_monotonic_ns = source.monotonic_ns

        pts = capture_pts(source.monotonic_ns - self._first_monotonic_ns)
        # Colour conversion (once per source frame, cached) and the copy stay off the event loop.
        frame = await asyncio.get_running_loop().run_in_executor(None, _video_frame, source)
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        self._last_pts = pts

        rtp = self._clock.rtp_timestamp(pts)
        if rtp is not None and self._on_frame is not None:
            try:
                self._on_frame(rtp, source.capture_time_ns / 1e6)
            except Exception:  # an error here would end aiortc's send loop: the video must outlive it
                logger.exception("track %s: on_frame failed", self.name)
        return frame

    def _learn_rtp_origin(self) -> None:
        # Runs when the sender asks for the next frame: every packet of the previous one has gone out.
        if self._sender is None:
            return
        sent = sent_rtp_timestamp(self._sender)
        if sent is not None:
            self._clock.observe(sent, self._last_pts)


def _video_frame(source: SourceFrame) -> av.VideoFrame:
    return av.VideoFrame.from_numpy_buffer(source.i420(), format="yuv420p")  # cached, never written: no copy
