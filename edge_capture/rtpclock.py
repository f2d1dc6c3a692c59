"""Which RTP timestamp a video frame goes out with: the sender's hidden timestamp origin, learnt.

A page can tell the capture time of each frame it displays only through that frame's RTP timestamp
(``requestVideoFrameCallback`` gives ``rtpTimestamp``), so the edge must say which RTP timestamp each source
frame gets. aiortc does not tell: ``RTCRtpSender._run_rtp`` sends frame *k* with RTP timestamp
``(timestamp_origin + pts_k) mod 2**32``, where ``timestamp_origin`` is a random 32-bit number held in a
local variable of that coroutine, and ``pts_k`` the frame's pts in the 90 kHz clock.

The seam: after every packet it sends, the sender stores that packet's RTP timestamp in the private
attribute ``_RTCRtpSender__rtp_timestamp`` (for its RTCP sender reports), and its loop sends every packet of
frame *k* before it asks the track for frame *k+1*. So when the track is asked for frame *k+1*, that
attribute is ``origin + pts_k`` if frame *k* went out, and unchanged if it did not (the encoder returned
nothing, or the sender is disabled). :class:`RtpClock` turns those observations into the origin, trusting
one only after two consecutive frames agree, and starting over (saying nothing meanwhile) if it ever moves.
Nothing here writes to aiortc; if a later aiortc renames the attribute, :func:`sent_rtp_timestamp` answers
None and the map simply never starts (a warning says so).
"""

from __future__ import annotations

import logging

from aiortc import RTCRtpSender

logger = logging.getLogger(__name__)

RTP_TIMESTAMP_MODULO = 1 << 32
_SENDER_ATTRIBUTE = "_RTCRtpSender__rtp_timestamp"


def sent_rtp_timestamp(sender: RTCRtpSender) -> int | None:
    """The RTP timestamp of the last packet ``sender`` sent (0 before the first), or None if unknowable."""
    value = getattr(sender, _SENDER_ATTRIBUTE, None)
    return value if isinstance(value, int) else None


class RtpClock:
    """Maps a frame's pts (90 kHz) to the RTP timestamp its sender puts on the wire."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._origin: int | None = None
        self._candidate: int | None = None
        self._seen: int | None = None

    @property
    def origin(self) -> int | None:
        """The sender's timestamp origin once two frames agreed on it, else None."""
        return self._origin

    def observe(self, sent_rtp: int, previous_pts: int | None) -> None:
        """Learn from the sender's last RTP timestamp, read when it asks for the frame after ``previous_pts``."""
        if sent_rtp == self._seen:
            return  # nothing went out since the last look: the previous frame was not sent
        self._seen = sent_rtp
        if previous_pts is None:
            return
        candidate = (sent_rtp - previous_pts) % RTP_TIMESTAMP_MODULO
        if candidate == self._origin:
            return
        if candidate == self._candidate:
            logger.info("rtp clock %s: origin %s -> %s", self.name, self._origin, candidate)
            self._origin = candidate
            return
        if self._origin is not None:
            logger.warning(
                "rtp clock %s: origin %s -> None (a frame went out at %s); relearning",
                self.name,
                self._origin,
                sent_rtp,
            )
            self._origin = None
        self._candidate = candidate

    def rtp_timestamp(self, pts: int) -> int | None:
        """The RTP timestamp a frame with this pts goes out with, or None while the origin is unknown."""
        if self._origin is None:
            return None
        return (self._origin + pts) % RTP_TIMESTAMP_MODULO
