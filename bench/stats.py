"""Pure arithmetic for the live bench: percentiles, stamped-frame latency, fps, bitrate, frame gaps, trends."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from bench.stamp import COUNTER_BITS

Sample = dict[str, Any]


def rnd(value: float | None, digits: int = 1) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def dist(values: Iterable[float], digits: int = 1) -> dict[str, Any]:
    """n, min, p50, p95, p99, max, mean of the values (None when empty)."""
    array = np.asarray([v for v in values if v is not None], float)
    if array.size == 0:
        return {"n": 0, "min": None, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    return {
        "n": int(array.size),
        "min": rnd(array.min(), digits),
        "p50": rnd(np.percentile(array, 50), digits),
        "p95": rnd(np.percentile(array, 95), digits),
        "p99": rnd(np.percentile(array, 99), digits),
        "max": rnd(array.max(), digits),
        "mean": rnd(array.mean(), digits),
    }


def unwrap_counters(samples: Sequence[Sample]) -> list[int]:
    """The stamp counters of samples in display order, unwrapped past 2**COUNTER_BITS."""
    modulo = 1 << COUNTER_BITS
    out: list[int] = []
    base = 0
    previous: int | None = None
    for s in samples:
        n = int(s["n"])
        if previous is not None and n + base < previous - modulo // 2:
            base += modulo
        value = n + base
        out.append(value)
        previous = value
    return out


def frame_gaps(samples: Sequence[Sample]) -> dict[str, Any]:
    """Which stamped frames the page showed, and which it never did.

    ``frames_missing``: counters between the first and last shown that no callback read. Some of those were
    presented all the same (``requestVideoFrameCallback`` coalesces when two frames reach the compositor within
    one vsync; a discarded read also leaves a hole): the callback's ``presentedFrames`` counts them. So
    ``frames_lost`` = missing counters − frames presented without a read: frames that never reached the
    screen (not encoded, lost, or dropped by the browser)."""
    ordered = sorted(samples, key=lambda s: (s.get("pf") is None, s.get("pf") or 0, s["cap"]))
    counters = unwrap_counters(ordered)
    distinct = sorted(set(counters))
    if not distinct:
        return {"frames_shown": 0, "frames_missing": 0, "frames_lost": 0, "longest_gap": 0, "repeats": 0}
    steps = np.diff(distinct) if len(distinct) > 1 else np.asarray([1])
    lost = 0
    have_presented = all(s.get("pf") is not None for s in ordered)
    if have_presented:
        for (a, na), (b, nb) in itertools.pairwise(zip(ordered, counters, strict=True)):
            unseen = nb - na - 1
            presented_unread = int(b["pf"]) - int(a["pf"]) - 1
            lost += max(0, unseen - max(0, presented_unread))
    return {
        "frames_shown": len(distinct),
        "frames_missing": int(np.sum(np.maximum(steps - 1, 0))),
        "frames_lost": lost if have_presented else None,
        "longest_gap": int(np.max(steps) - 1),
        "repeats": len(samples) - len(distinct),
    }


def latency(samples: Sequence[Sample]) -> dict[str, Any]:
    """Glass-to-glass latency of stamped frames (ms), with where it goes.

    ``glass_to_glass`` = display time (``performance.timeOrigin + expectedDisplayTime``) − stamped capture time;
    ``to_presented`` uses ``presentationTime`` (when the compositor took the frame), ``to_callback`` the
    callback's ``now``; ``capture_to_received`` = ``receiveTime`` (last packet of the frame received) − capture,
    i.e. sender + network; ``received_to_display`` = the browser's jitter buffer, decode and render."""
    return {
        "glass_to_glass": dist(s["disp"] - s["cap"] for s in samples if s.get("disp") is not None),
        "to_presented": dist(s["pres"] - s["cap"] for s in samples if s.get("pres") is not None),
        "to_callback": dist(s["cb"] - s["cap"] for s in samples),
        "capture_to_received": dist(s["recv"] - s["cap"] for s in samples if s.get("recv") is not None),
        "received_to_display": dist(
            s["disp"] - s["recv"] for s in samples if s.get("recv") is not None and s.get("disp") is not None
        ),
    }


def g2g(samples: Sequence[Sample]) -> list[float]:
    return [s["disp"] - s["cap"] for s in samples if s.get("disp") is not None]


def inbound(first: dict[str, Any] | None, last: dict[str, Any] | None) -> dict[str, Any]:
    """Rates and per-frame receiver costs between two getStats() reductions (reader.js `stats()`)."""
    if not first or not last:
        return {}
    seconds = (last["t"] - first["t"]) / 1000

    def delta(key: str) -> float | None:
        a, b = first.get(key), last.get(key)
        return None if a is None or b is None else float(b) - float(a)

    decoded = delta("framesDecoded") or 0.0
    emitted = delta("jitterBufferEmittedCount") or 0.0

    def per_frame_ms(key: str, frames: float) -> float | None:
        d = delta(key)
        return None if d is None or frames <= 0 else rnd(d / frames * 1000, 2)

    bytes_received = delta("bytesReceived")
    return {
        "seconds": rnd(seconds, 2),
        "fps_decoded": rnd(decoded / seconds, 2) if seconds > 0 else None,
        "bitrate_mbps": rnd(bytes_received * 8 / seconds / 1e6, 2) if bytes_received is not None and seconds else None,
        "frames_decoded": int(decoded),
        "frames_dropped": delta("framesDropped"),
        "packets_lost": delta("packetsLost"),
        "nacks": delta("nackCount"),
        "plis": delta("pliCount"),
        "keyframes": delta("keyFramesDecoded"),
        "freezes": delta("freezeCount"),
        "jitter_buffer_ms": per_frame_ms("jitterBufferDelay", emitted),
        "jitter_buffer_target_ms": per_frame_ms("jitterBufferTargetDelay", emitted),
        "jitter_buffer_minimum_ms": per_frame_ms("jitterBufferMinimumDelay", emitted),
        # what the browser adds on top of what network jitter needs: audio/video sync (or a playout hint)
        "jitter_buffer_sync_added_ms": _minus(
            per_frame_ms("jitterBufferTargetDelay", emitted), per_frame_ms("jitterBufferMinimumDelay", emitted)
        ),
        "decode_ms": per_frame_ms("totalDecodeTime", decoded),
        "processing_ms": per_frame_ms("totalProcessingDelay", decoded),
        "assembly_ms": per_frame_ms("totalAssemblyTime", delta("framesAssembledFromMultiplePackets") or 0.0),
        "size": f"{last.get('frameWidth')}x{last.get('frameHeight')}",
        "codec": last.get("codec"),
        "fmtp": last.get("fmtp"),
        "decoder": last.get("decoderImplementation"),
        "rtt_ms": rnd(last.get("rttMs"), 2),
        "audio_video_same_stream": last.get("audioVideoSameStream"),
    }


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 2)


def trend_ms_per_minute(times_ms: Sequence[float], values: Sequence[float]) -> float | None:
    """Least-squares slope of values over time, in ms per minute."""
    if len(values) < 3:
        return None
    t = (np.asarray(times_ms, float) - times_ms[0]) / 60_000
    if np.ptp(t) <= 0:
        return None
    slope = np.polyfit(t, np.asarray(values, float), 1)[0]
    return rnd(slope, 2)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 3)
