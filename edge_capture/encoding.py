"""How the edge encodes video for WebRTC: codec, bitrate and x264 preset, applied to aiortc process-wide.

aiortc has no public API for any of this:

- the bitrate bounds are module constants (``aiortc.codecs.h264`` and ``aiortc.codecs.vpx``:
  ``DEFAULT_BITRATE`` is where an encoder starts, ``MIN_BITRATE``/``MAX_BITRATE`` clamp every REMB estimate).
  Stock H.264 is capped at 3 Mb/s and VP8 at 1.5 Mb/s, too little for diagnostic 720p/1080p;
- ``H264Encoder._encode_frame`` opens libx264 with only ``level=31`` and ``tune=zerolatency``, so x264 runs
  at its default preset (medium: about 5x the CPU of ultrafast for < 0.5 dB) and claims level 3.1 even for
  1080p, which does not fit that level.

:func:`apply_encoding` sets the constants and installs :class:`TunedH264Encoder`. The seam it uses is the
narrowest one: ``aiortc.rtcrtpsender`` imports ``get_encoder`` by name and calls it once per sender to build
its encoder, so we replace that one name (in that one module) with a factory that builds our subclass for
H.264 and defers to aiortc's own ``get_encoder`` for everything else. Decoders, capabilities and SDP stay
aiortc's. Calling :func:`apply_encoding` again only swaps the settings: the factory is never stacked.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fractions
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import av.video.frame
from aiortc import RTCRtpSender, RTCRtpTransceiver, rtcrtpsender
from aiortc.codecs import h264, vpx
from aiortc.codecs.base import Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from edge_capture import ratecontrol

logger = logging.getLogger(__name__)

Codec = Literal["h264", "vp8"]
MIME_TYPES: dict[str, str] = {"h264": "video/H264", "vp8": "video/VP8"}
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
# aiortc clamps every REMB to at least this; the rate controller's own floor is the same (ratecontrol.RateLimits:
# a quieter sender would hold Chromium's estimate down). Under ~1.4 Mb/s at 720p30 the degradation setting gives
# up resolution or frame rate (ratecontrol.shape_for).
BITRATE_FLOOR_BPS = ratecontrol.RateLimits.floor_bps
FRAME_RATE = h264.MAX_FRAME_RATE
RTP_HISTORY_PACKETS = 512

# H.264 Annex A, table A-1: (level_idc, max macroblocks per frame, max macroblocks per second,
# max Baseline bitrate in kb/s). Levels 1b and 1.0 are left out: no frame we send is that small.
H264_LEVELS: tuple[tuple[int, int, int, int], ...] = (
    (11, 396, 3_000, 192),
    (12, 396, 6_000, 384),
    (13, 396, 11_880, 768),
    (20, 396, 11_880, 2_000),
    (21, 792, 19_800, 4_000),
    (22, 1_620, 20_250, 4_000),
    (30, 1_620, 40_500, 10_000),
    (31, 3_600, 108_000, 14_000),
    (32, 5_120, 216_000, 20_000),
    (40, 8_192, 245_760, 20_000),
    (41, 8_192, 245_760, 50_000),
    (42, 8_704, 522_240, 50_000),
    (50, 22_080, 589_824, 135_000),
    (51, 36_864, 983_040, 240_000),
    (52, 36_864, 2_073_600, 240_000),
)


@dataclass(frozen=True)
class VideoEncoding:
    """The video encoding every viewer's sender uses (process-wide, like aiortc's own settings)."""

    codec: Codec = "h264"
    bitrate_bps: int = 6_000_000
    x264_preset: str = "ultrafast"
    # what the shared H.264 encoder gives up first when the link is slow (ratecontrol.shape_for): "resolution"
    # keeps the motion (guidance), "framerate" each picture's detail; stills come from the ring at full quality
    degradation: str = "resolution"
    # combine REMB with the receiver reports' loss and round trip (ratecontrol); False follows REMB alone
    adaptive_rate: bool = True
    # the encoder in use as the console's link panel names it ("x264 ultrafast"), set from the start-up probe
    # (hwencoder.probe_encoder); "" until probed
    encoder: str = ""

    def __post_init__(self) -> None:
        if self.codec not in MIME_TYPES:
            raise ValueError(f"codec must be one of {sorted(MIME_TYPES)}, not {self.codec!r}")
        if not 100_000 <= self.bitrate_bps <= 100_000_000:
            raise ValueError(f"bitrate_bps must be within 100 kb/s..100 Mb/s, not {self.bitrate_bps}")
        if self.x264_preset not in X264_PRESETS:
            raise ValueError(f"x264_preset must be one of {X264_PRESETS}, not {self.x264_preset!r}")
        if self.degradation not in ratecontrol.DEGRADATIONS:
            raise ValueError(f"degradation must be one of {ratecontrol.DEGRADATIONS}, not {self.degradation!r}")


def h264_level(width: int, height: int, frame_rate: int = FRAME_RATE, bitrate_bps: int = 0) -> int:
    """The lowest H.264 level_idc (31 = level 3.1) whose limits fit this frame size, rate and bitrate."""
    macroblocks = ((width + 15) // 16) * ((height + 15) // 16)
    for level, max_fs, max_mbps, max_kbps in H264_LEVELS:
        if macroblocks <= max_fs and macroblocks * frame_rate <= max_mbps and bitrate_bps <= max_kbps * 1000:
            return level
    return H264_LEVELS[-1][0]


class TunedH264Encoder(h264.H264Encoder):
    """aiortc's H.264 encoder (packetisation, bitrate tracking) with our libx264 settings.

    Only the opening of the libx264 context differs: our preset, a level that fits the frame, and
    ``tune=zerolatency`` and Constrained Baseline as aiortc has them (browsers negotiate 42e01f/42001f).
    ``x264_options`` keeps what the live context was opened with (PyAV empties ``codec.options`` on open);
    ``x264_settings`` is the settings line x264 itself writes into its first keyframe (its SEI), so a test or
    an operator can see what actually runs.
    """

    def __init__(self, preset: str = "ultrafast") -> None:
        super().__init__()
        self.preset = preset
        self.x264_options: dict[str, str] = {}
        self.x264_settings: str | None = None
        self._first_output = True

    def _encode_frame(self, frame: av.VideoFrame, force_keyframe: bool) -> Iterator[bytes]:
        codec = self.codec
        if codec is not None and fit_context(codec, frame.width, frame.height, self.target_bitrate):
            self.buffer_data = b""
            self.buffer_pts = None
            codec = self.codec = None

        frame.pict_type = av.video.frame.PictureType.I if force_keyframe else av.video.frame.PictureType.NONE
        if codec is None:
            codec = self.codec = self._open(frame.width, frame.height)

        encoded = b"".join(bytes(packet) for packet in codec.encode(frame))
        if encoded and self._first_output:
            self._first_output = False
            self.x264_settings = read_x264_settings(encoded)
        if encoded:
            yield from self._split_bitstream(encoded)

    def _open(self, width: int, height: int) -> av.VideoCodecContext:
        codec, self.x264_options = open_libx264(width, height, self.target_bitrate, self.preset)
        self.x264_settings = None
        self._first_output = True
        return codec


def open_libx264(width: int, height: int, bitrate_bps: int, preset: str) -> tuple[av.VideoCodecContext, dict[str, str]]:
    """A libx264 context with teleus's settings, and the x264 options it was opened with.

    Our preset, a level that fits the frame, ``tune=zerolatency`` and Constrained Baseline as aiortc has them
    (browsers negotiate 42e01f/42001f), a VBV cap at the bitrate, and a 90 kHz time base. Shared by
    :class:`TunedH264Encoder` (one per sender) and ``edge_capture.fanout`` (one per consultation).
    """
    codec = av.CodecContext.create("libx264", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width = width
    codec.height = height
    codec.bit_rate = bitrate_bps
    codec.pix_fmt = "yuv420p"
    codec.framerate = fractions.Fraction(FRAME_RATE, 1)
    # aiortc uses 1/30 here, so PyAV rounds each frame's 90 kHz pts to a 1/30 s tick before x264 sees it:
    # two frames captured closer than that can get the same pts. The RTP clock's own unit loses nothing.
    codec.time_base = fractions.Fraction(1, 90_000)
    level = h264_level(width, height, FRAME_RATE, bitrate_bps)
    options = {
        "preset": preset,
        "tune": "zerolatency",
        "level": str(level),
        # A real cap: without VBV, x264's ABR overshoots by up to 70 % on speckle-like (noisy) pictures.
        # The buffer bounds the burst a keyframe makes (vbv_bufsize). VBV must be on from the open for
        # retarget() to move it later.
        "maxrate": str(bitrate_bps),
        "bufsize": str(vbv_bufsize(bitrate_bps)),
    }
    codec.options = dict(options)  # PyAV empties codec.options on open: the caller keeps its own copy
    codec.profile = "Baseline"
    logger.debug("libx264 opened: %sx%s, %s b/s, %s", width, height, bitrate_bps, options)
    return codec, options


def needs_new_context(codec: av.VideoCodecContext, width: int, height: int, bitrate_bps: int) -> bool:
    """Whether an open context must be replaced (which costs a keyframe): a new frame size, or, when the bitrate
    cannot be changed in place (:func:`retarget`), a target more than 10 % away from the one it runs at."""
    if (width, height) != (codec.width, codec.height):
        return True
    current = codec.bit_rate or 0
    return abs(bitrate_bps - current) > 0.1 * current and not can_retarget(codec)


def fit_context(codec: av.VideoCodecContext, width: int, height: int, bitrate_bps: int) -> bool:
    """Make an open context run at ``bitrate_bps``; True when it cannot and must be replaced (a keyframe).

    A new frame size always needs a new context. A bitrate within 1 % of the current one is left as it is; a new
    one is set in place (:func:`retarget`: no keyframe, the
    rate control carries on) whenever this PyAV lets us; otherwise a change of more than 10 % needs a new context,
    as aiortc decides.
    """
    if (width, height) != (codec.width, codec.height):
        return True
    current = codec.bit_rate or 0
    if abs(bitrate_bps - current) <= 0.01 * current:
        return False  # a probe moves the target a fraction of a percent a frame: x264 is told every 1 %
    if retarget(codec, bitrate_bps):
        return False
    return abs(bitrate_bps - current) > 0.1 * current


# ---- changing the bitrate of an open libx264 context -------------------------------------------------------------
#
# FFmpeg's libx264 wrapper compares, before each frame, the AVCodecContext's bit_rate, rc_max_rate and
# rc_buffer_size with what x264 runs at, and calls x264_encoder_reconfig() when they differ: the rate control takes
# the new target from the next frame, with no new context and no keyframe. PyAV lets ``bit_rate`` be set on an open
# context but not the VBV pair, and without a lower maxrate x264 may still burst at the old cap (a keyframe of half
# a second of the old rate). So the VBV pair is set with libavutil's av_opt_set_int on the context itself, reached
# through the pointer PyAV keeps as the first field of its CodecContext object (after the PyObject header and the
# Cython vtable pointer). The pointer is accepted only if what it points at starts with libavcodec's own AVClass
# (avcodec_get_class()): any other PyAV layout is refused and the caller falls back to a new context.

_VBV_SECONDS = 0.2  # the VBV buffer: the largest frame (a keyframe) is at most this much of a second of the rate


def vbv_bufsize(bitrate_bps: int) -> int:
    """The VBV buffer for ``bitrate_bps``: a keyframe is capped at ``_VBV_SECONDS`` of the rate (a bottleneck's
    queue holds ~100 ms; aiortc sends a frame's packets back to back, so a larger one would overflow it)."""
    return max(1, int(bitrate_bps * _VBV_SECONDS))


class _LibAv:
    """libavcodec's and libavutil's C entry points we need, from the copies PyAV itself loaded (or None)."""

    def __init__(self) -> None:
        self.ready = False
        try:
            libs = Path(av.__file__).resolve().parent.parent / "av.libs"
            found = {name: sorted(libs.glob(f"lib{name}-*.so*")) for name in ("avcodec", "avutil")}
            if found["avcodec"] and found["avutil"]:
                avcodec, avutil = ctypes.CDLL(str(found["avcodec"][0])), ctypes.CDLL(str(found["avutil"][0]))
            else:  # a PyAV built against the system's FFmpeg
                avcodec, avutil = (
                    ctypes.CDLL(ctypes.util.find_library("avcodec") or "libavcodec.so"),
                    ctypes.CDLL(ctypes.util.find_library("avutil") or "libavutil.so"),
                )
            avcodec.avcodec_get_class.restype = ctypes.c_void_p
            avcodec.avcodec_get_class.argtypes = []
            avutil.av_opt_set_int.restype = ctypes.c_int
            avutil.av_opt_set_int.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64, ctypes.c_int]
            self.codec_class: int | None = avcodec.avcodec_get_class()
            self.set_int = avutil.av_opt_set_int
            self.ready = True
        except (OSError, AttributeError) as exc:
            logger.warning("libavcodec not reachable (%s): a bitrate change will open a new x264 context", exc)

    def context_pointer(self, codec: av.VideoCodecContext) -> int | None:
        if not self.ready:
            return None
        pointer = ctypes.c_void_p.from_address(id(codec) + _PTR_OFFSET).value
        if not pointer or ctypes.c_void_p.from_address(pointer).value != self.codec_class:
            return None
        return pointer


_PTR_OFFSET = ctypes.sizeof(ctypes.c_ssize_t) + 2 * ctypes.sizeof(ctypes.c_void_p)  # refcount, type, vtable
_libav: _LibAv | None = None


def _lib() -> _LibAv:
    global _libav
    if _libav is None:
        _libav = _LibAv()
    return _libav


def can_retarget(codec: av.VideoCodecContext) -> bool:
    """Whether :func:`retarget` can change this open context's bitrate in place."""
    return codec.is_open and codec.name == "libx264" and _lib().context_pointer(codec) is not None


def retarget(codec: av.VideoCodecContext, bitrate_bps: int) -> bool:
    """Set an open libx264 context's bitrate, VBV maxrate and buffer; x264 follows from the next frame, no keyframe.

    False (nothing changed) when this PyAV's layout is not the one we know: the caller opens a new context.
    """
    if not codec.is_open or codec.name != "libx264":
        return False
    lib = _lib()
    pointer = lib.context_pointer(codec)
    if pointer is None:
        return False
    for name, value in ((b"maxrate", bitrate_bps), (b"bufsize", vbv_bufsize(bitrate_bps))):
        if lib.set_int(pointer, name, value, 0) < 0:
            logger.warning("av_opt_set_int(%s) refused on an open libx264 context", name.decode())
            return False
    codec.bit_rate = bitrate_bps
    return True


def read_x264_settings(bitstream: bytes) -> str | None:
    """The ``options: ...`` text x264 puts in its user-data SEI, or None if this output has none."""
    start = bitstream.find(b"x264 - core")
    if start < 0:
        return None
    end = bitstream.find(b"\x00", start)
    text = bitstream[start : end if end > 0 else len(bitstream)].decode("ascii", "replace")
    _, _, options = text.partition("options: ")
    return options or None


class _EncoderFactory:
    """Replaces ``aiortc.rtcrtpsender.get_encoder``: our H.264 encoder, aiortc's for every other codec."""

    def __init__(self, stock: Callable[[RTCRtpCodecParameters], Encoder], encoding: VideoEncoding) -> None:
        self.stock = stock
        self.encoding = encoding

    def __call__(self, codec: RTCRtpCodecParameters) -> Encoder:
        if codec.mimeType.lower() == "video/h264":
            return TunedH264Encoder(preset=self.encoding.x264_preset)
        return self.stock(codec)


def apply_encoding(encoding: VideoEncoding) -> None:
    """Configure aiortc for ``encoding``: senders created from now on use it (process-wide, idempotent).

    Both codecs' bounds are set (the codec is negotiated per call): every encoder starts at the target
    bitrate and never exceeds it; REMB may lower it down to a floor of 500 kb/s.
    """
    target = encoding.bitrate_bps
    floor = min(BITRATE_FLOOR_BPS, target)
    for module in (h264, vpx):
        for name, value in (("DEFAULT_BITRATE", target), ("MAX_BITRATE", target), ("MIN_BITRATE", floor)):
            setattr(module, name, value)

    if isinstance(getattr(rtcrtpsender, "RTP_HISTORY_SIZE", None), int):
        # packets kept for resends: ~0.9 s at 6 Mb/s (aiortc's 128 are 0.2 s, and a resend lost once at a 100 ms
        # round trip is asked for again after it has left them); the resend hook (fanout) bounds their age
        rtcrtpsender.RTP_HISTORY_SIZE = RTP_HISTORY_PACKETS  # type: ignore[attr-defined]
    current = rtcrtpsender.get_encoder  # type: ignore[attr-defined]
    stock = current.stock if isinstance(current, _EncoderFactory) else current
    rtcrtpsender.get_encoder = _EncoderFactory(stock, encoding)  # type: ignore[attr-defined]
    logger.info("video encoding: %s, %s..%s b/s, x264 preset %s", encoding.codec, floor, target, encoding.x264_preset)


def prefer_codec(transceiver: RTCRtpTransceiver, codec: Codec) -> None:
    """Order the transceiver's codecs so an offer lists ``codec`` first; the others and RTX follow."""
    mime = MIME_TYPES[codec].lower()
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    chosen = [c for c in capabilities if c.mimeType.lower() == mime]
    if not chosen:
        raise ValueError(f"aiortc cannot send {codec}")
    rtx = [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
    others = [c for c in capabilities if c not in chosen and c not in rtx]
    transceiver.setCodecPreferences(chosen + others + rtx)


# ---- following the pages' feedback ---------------------------------------------------------------------------------

_SENDER_ENCODER = "_RTCRtpSender__encoder"
_SENDER_STATS = "_RTCRtpSender__stats"
_SENDER_OCTETS = "_RTCRtpSender__octet_count"


@dataclass(frozen=True)
class SenderFeedback:
    """What one page's sender has heard: its REMB (as aiortc clamped it) and its latest receiver report."""

    remb_bps: int | None
    report_key: object | None  # changes when a new receiver report arrives
    fraction_lost: float | None  # 0..1, over the report's own interval
    rtt_s: float | None
    packets_lost: int | None = None  # cumulative, as the receiver counts them
    packets_received: int | None = None  # cumulative: sent by us, less those lost
    octets_sent: int | None = None  # cumulative RTP payload bytes sent (as the sender reports them)


def read_sender_feedback(sender: RTCRtpSender) -> SenderFeedback:
    """The REMB target aiortc set on ``sender``'s encoder and the latest receiver report it recorded.

    Both are private to aiortc (``RTCRtpSender`` keeps them in name-mangled attributes; ``getStats()`` is the
    public road to the report but is a coroutine that also walks the transport): read, never written, and
    anything missing reads as None, so a later aiortc only loses the extra signal.
    """
    encoder = getattr(sender, _SENDER_ENCODER, None)
    remb = getattr(encoder, "target_bitrate", None)
    stats = getattr(sender, _SENDER_STATS, None)
    report = None
    if isinstance(stats, dict):
        report = next((s for s in stats.values() if getattr(s, "type", None) == "remote-inbound-rtp"), None)
    octets = _int_or_none(getattr(sender, _SENDER_OCTETS, None))
    if report is None:
        return SenderFeedback(remb if isinstance(remb, int) else None, None, None, None, octets_sent=octets)
    lost = getattr(report, "fractionLost", None)
    rtt = getattr(report, "roundTripTime", None)
    return SenderFeedback(
        remb_bps=remb if isinstance(remb, int) else None,
        report_key=(getattr(report, "timestamp", None), getattr(report, "packetsLost", None)),
        fraction_lost=lost / 256 if isinstance(lost, int | float) else None,  # RFC 3550: fixed point, /256
        rtt_s=float(rtt) if isinstance(rtt, int | float) else None,
        packets_lost=_int_or_none(getattr(report, "packetsLost", None)),
        packets_received=_int_or_none(getattr(report, "packetsReceived", None)),
        octets_sent=octets,
    )


def read_fb_rtt(sender: RTCRtpSender) -> float | None:
    """aiortc's smoothed round trip for ``sender`` (s), or None before the first receiver report that has one."""
    return read_sender_feedback(sender).rtt_s


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None


# Loss is measured over at least this long: Chromium puts a receiver report in every RTCP packet, and under loss it
# sends NACKs many times a second, so one report's own fraction may cover a few packets (1 lost in 8 is "12 %").
# Half a second and at least 100 packets: random loss of 5 % reads over 10 % in about one window in 10 000, 1 %
# never; and the onset of a bottleneck is seen before most of a second has been sent into it. Not shorter: the
# receiver's cumulative loss is its own view (a queue and a round trip behind what we count as sent), so over a
# quarter of a second at a bottleneck's onset it read 100 % lost (more lost than we sent in the window) and cut a
# 2 Mb/s link's sender to the floor (docs/NETWORK.md).
LOSS_WINDOW_S = 0.5
LOSS_WINDOW_PACKETS = 100
# A change of picture size (a keyframe) waits this long after the controller's last cut.
SHAPE_SETTLE_S = 2.0


class SenderRate:
    """The target of one encoder that feeds some senders: :mod:`edge_capture.ratecontrol` fed from aiortc.

    ``update(senders)`` once per encoded frame: reads each sender's REMB and receiver report (a report counts once),
    steps the controller and returns the bitrate to encode at; ``shape`` is the degradation for that rate (the
    frame size and rate the encoder should send, :func:`edge_capture.ratecontrol.shape_for`). ``adaptive=False``
    follows the lowest REMB only (aiortc's behaviour), for comparison.
    """

    def __init__(
        self,
        max_bps: int,
        degradation: str = "resolution",
        adaptive: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if degradation not in ratecontrol.DEGRADATIONS:
            raise ValueError(f"degradation must be one of {ratecontrol.DEGRADATIONS}, not {degradation!r}")
        floor = min(ratecontrol.RateLimits.floor_bps, max_bps)
        self.limits = ratecontrol.RateLimits(max_bps=max_bps, floor_bps=floor)
        self.degradation = degradation
        self.adaptive = adaptive
        self.clock = clock
        self.state = ratecontrol.initial(self.limits)
        self.shape = ratecontrol.FULL
        self.last_remb_bps: int | None = None
        self.last_loss: float | None = None
        self.last_rtt_s: float | None = None
        self._seen: dict[int, object] = {}
        self._windows: dict[int, tuple[float, int, int, int | None]] = {}  # sender -> (start, lost, received, octets)
        self.last_delivered_bps: int | None = None  # what got through over the last loss window (the worst page)
        self._congested_at = -math.inf  # the last sharp fall of the target (a cut of ours, or REMB's)

    @property
    def target_bps(self) -> int:
        return self.state.target_bps

    def update(self, senders: Iterable[RTCRtpSender]) -> int:
        rembs: list[int] = []
        losses: list[float] = []
        rtts: list[float] = []
        seen: dict[int, object] = {}
        windows: dict[int, tuple[float, int, int, int | None]] = {}
        delivered: list[int] = []
        now = self.clock()
        for sender in senders:
            fb = read_sender_feedback(sender)
            if fb.remb_bps is not None:
                rembs.append(fb.remb_bps)
            key = id(sender)
            seen[key] = fb.report_key
            if key in self._windows:
                windows[key] = self._windows[key]
            if fb.report_key is None or self._seen.get(key) == fb.report_key:
                continue
            if fb.rtt_s is not None:
                rtts.append(fb.rtt_s)
            if fb.packets_lost is None or fb.packets_received is None:
                if fb.fraction_lost is not None:  # no counters: the report's own fraction
                    losses.append(fb.fraction_lost)
                continue
            start = windows.get(key)
            if start is None:
                windows[key] = (now, fb.packets_lost, fb.packets_received, fb.octets_sent)
            elif now - start[0] >= LOSS_WINDOW_S:
                lost, received = fb.packets_lost - start[1], fb.packets_received - start[2]
                if lost + received < LOSS_WINDOW_PACKETS and now - start[0] < 4 * LOSS_WINDOW_S:
                    continue  # too few packets to judge yet (a slow stream): the window grows
                if lost + received > 0:
                    loss = min(1.0, max(0.0, lost / (lost + received)))
                    losses.append(loss)
                    if fb.octets_sent is not None and start[3] is not None and fb.octets_sent > start[3]:
                        sent_bps = (fb.octets_sent - start[3]) * 8 / (now - start[0])
                        delivered.append(int(sent_bps * (1.0 - loss)))
                windows[key] = (now, fb.packets_lost, fb.packets_received, fb.octets_sent)
        self._seen = seen
        self._windows = windows
        remb = min(rembs) if rembs else None
        feedback = ratecontrol.Feedback(
            at=now,
            remb_bps=remb,
            fraction_lost=max(losses) if losses and self.adaptive else None,
            rtt_s=max(rtts) if rtts and self.adaptive else None,
            delivered_bps=min(delivered) if delivered and self.adaptive else None,
        )
        before = self.state
        if self.adaptive:
            self.state = ratecontrol.step(self.limits, self.state, feedback)
        else:
            self.state = ratecontrol.RateState(target_bps=ratecontrol.ceiling(self.limits, remb), at=feedback.at)
        self.last_remb_bps = remb
        if losses:
            self.last_loss = max(losses)
            self.last_delivered_bps = min(delivered) if delivered else None
        if rtts:
            self.last_rtt_s = max(rtts)
        if self.state.cuts != before.cuts or self.state.target_bps < 0.8 * before.target_bps:
            self._congested_at = now
        if self.state.cuts != before.cuts:
            logger.info("rate: cut to %s b/s (%s; REMB %s)", self.state.target_bps, self.state.reason, remb)
        return self.state.target_bps

    @property
    def getting_through_bps(self) -> int:
        """The rate that reaches the pages: the target, or what got through while the last window lost more than
        the controller's loss threshold (a bottleneck's onset, before the target has come down). Resends are
        budgeted from it (:mod:`edge_capture.resend`)."""
        target = self.state.target_bps
        congested = self.last_loss is not None and self.last_loss > self.limits.loss_cut_above
        if congested and self.last_delivered_bps is not None:
            return min(target, self.last_delivered_bps)
        return target

    def shape_for(self, width: int, height: int, fps: float = FRAME_RATE) -> ratecontrol.Shape:
        """The degradation for the current target and a ``width`` x ``height`` source at ``fps`` (with hysteresis).

        A new scale needs a new x264 context, so a keyframe: not while the link is congested (within
        ``SHAPE_SETTLE_S`` of a cut, or of a fall of the target by a fifth or more at once), when it would be lost
        in the bottleneck's queue with everything else; it waits until the queue has drained. A new frame rate needs
        nothing and applies at once.
        """
        shape = ratecontrol.shape_for(self.degradation, self.state.target_bps, width, height, fps, self.shape)
        if shape.scale != self.shape.scale and self.clock() - self._congested_at < SHAPE_SETTLE_S:
            shape = ratecontrol.Shape(level=self.shape.level, scale=self.shape.scale, rate_divisor=shape.rate_divisor)
        if shape != self.shape:
            logger.info("rate: %s b/s, sending %s (degradation: %s first)", self.state.target_bps, shape,
                        self.degradation)  # fmt: skip
            self.shape = shape
        return shape

    def report(self) -> dict[str, object]:
        """For the bench and the logs."""
        return {
            "target_bps": self.state.target_bps,
            "remb_bps": self.last_remb_bps,
            "fraction_lost": self.last_loss,
            "delivered_bps": self.last_delivered_bps,
            "rtt_ms": None if self.last_rtt_s is None else round(self.last_rtt_s * 1000, 1),
            "reason": self.state.reason,
            "cuts": self.state.cuts,
            "scale": self.shape.scale,
            "rate_divisor": self.shape.rate_divisor,
        }
