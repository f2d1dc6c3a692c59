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

import fractions
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import av
import av.video.frame
from aiortc import RTCRtpSender, RTCRtpTransceiver, rtcrtpsender
from aiortc.codecs import h264, vpx
from aiortc.codecs.base import Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

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
# Below this the picture falls apart at 720p; an encoder never goes lower (unless the target itself is lower).
BITRATE_FLOOR_BPS = 500_000
FRAME_RATE = h264.MAX_FRAME_RATE

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

    def __post_init__(self) -> None:
        if self.codec not in MIME_TYPES:
            raise ValueError(f"codec must be one of {sorted(MIME_TYPES)}, not {self.codec!r}")
        if not 100_000 <= self.bitrate_bps <= 100_000_000:
            raise ValueError(f"bitrate_bps must be within 100 kb/s..100 Mb/s, not {self.bitrate_bps}")
        if self.x264_preset not in X264_PRESETS:
            raise ValueError(f"x264_preset must be one of {X264_PRESETS}, not {self.x264_preset!r}")


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
        if codec is not None and needs_new_context(codec, frame.width, frame.height, self.target_bitrate):
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
        # Half a second of buffer bounds the burst a keyframe makes.
        "maxrate": str(bitrate_bps),
        "bufsize": str(bitrate_bps // 2),
    }
    codec.options = dict(options)  # PyAV empties codec.options on open: the caller keeps its own copy
    codec.profile = "Baseline"
    logger.debug("libx264 opened: %sx%s, %s b/s, %s", width, height, bitrate_bps, options)
    return codec, options


def needs_new_context(codec: av.VideoCodecContext, width: int, height: int, bitrate_bps: int) -> bool:
    """Whether an open context must be replaced (which costs a keyframe): a new frame size, or a bitrate
    target more than 10 % away from the one it runs at, as aiortc decides."""
    current = codec.bit_rate or 0
    return (width, height) != (codec.width, codec.height) or abs(bitrate_bps - current) > 0.1 * current


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
