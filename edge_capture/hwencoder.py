"""Which H.264 encoder the edge can use: a hardware one (VAAPI, Quick Sync) if the PC has it, x264 otherwise.

Probed once at start-up (docs/LIVE.md, Hardware encoders). For each candidate in :data:`HARDWARE` the probe asks,
in order: is the encoder in this PyAV build, is there a render node (``/dev/dri/renderD*``), and does the encoder
open and encode one tiny frame. The first "no" is the reason reported.

Only detection exists: the live path encodes with libx264 whatever the probe finds (a hardware encoder needs a
hardware frames context that PyAV's encoding API does not set up, so that path is not built). ``EncoderChoice``
says so: ``label`` is the encoder in use, shown in the console's link panel; ``hardware`` is what was found.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

import av

log = logging.getLogger(__name__)

# PyAV/FFmpeg codec name → the name an operator knows it by
HARDWARE: dict[str, str] = {"h264_vaapi": "VAAPI", "h264_qsv": "QSV"}
RENDER_NODES = "/dev/dri/renderD*"
PROBE_SIZE = (64, 64)


@dataclass(frozen=True)
class EncoderChoice:
    """``label``: the encoder in use (e.g. ``x264 ultrafast``); ``hardware``: a hardware encoder that opened, or
    None; ``reason``: why the live path uses what it uses."""

    label: str
    hardware: str | None
    reason: str


def x264_label(preset: str) -> str:
    return f"x264 {preset}"


def try_open(codec_name: str) -> str | None:
    """None if ``codec_name`` opens and encodes one tiny frame; otherwise what went wrong."""
    try:
        codec = av.CodecContext.create(codec_name, "w")
        assert isinstance(codec, av.VideoCodecContext)
        codec.width, codec.height = PROBE_SIZE
        codec.pix_fmt = "nv12"
        codec.time_base = Fraction(1, 30)
        codec.open()
        frame = av.VideoFrame(PROBE_SIZE[0], PROBE_SIZE[1], "nv12")
        frame.pts = 0
        list(codec.encode(frame))
        list(codec.encode(None))
    except Exception as exc:  # FFmpeg's errors are many (FFmpegError, ValueError, ...): each is a "no"
        return f"{type(exc).__name__}: {exc}"
    return None


def probe_encoder(
    preset: str,
    render_nodes: str = RENDER_NODES,
    available: Iterable[str] | None = None,
) -> EncoderChoice:
    """What the edge encodes with, and why. ``render_nodes`` (a glob) and ``available`` (codec names; default:
    PyAV's) are parameters so the fallback can be checked on a machine with a GPU too."""
    codecs = set(av.codecs_available if available is None else available)
    nodes = sorted(glob.glob(render_nodes))
    reasons = []
    found: str | None = None
    for codec_name, name in HARDWARE.items():
        if codec_name not in codecs:
            reasons.append(f"{name}: {codec_name} is not in this PyAV build")
        elif not nodes:
            reasons.append(f"{name}: no render node ({render_nodes})")
        elif (error := try_open(codec_name)) is not None:
            reasons.append(f"{name}: {codec_name} did not open ({error})")
        else:
            found = name
            break
    label = x264_label(preset)
    if found is not None:
        reason = f"{found} opened, but the live path encodes with x264 (no hardware path yet)"
    else:
        reason = "no hardware encoder: " + "; ".join(reasons)
    choice = EncoderChoice(label=label, hardware=found, reason=reason)
    log.info("video encoder: %s (%s)", choice.label, choice.reason)
    return choice
