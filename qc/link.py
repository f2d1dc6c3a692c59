"""Link quality (QC.md §3) from per-second samples of W3C webrtc-stats deltas, the console's or the edge's.

A :class:`LinkSample` is one second of one stream (one viewer's inbound video): frames rendered, frames
dropped, packets received and lost (or a loss percentage), jitter and round-trip time. The console's
``linkstats.js`` summary (``fps``, ``rttMs``, ``lossPct``…) and the recording timeline's ``link`` viewers
(``peer``, ``fps``, ``rtt_ms``, ``loss`` as a fraction) both map onto it (:meth:`LinkSample.from_dict`).

Freezes follow the W3C definition, as the console's ``FreezeDetector`` does: an interval between two rendered
frames is a freeze when it is ≥ max(3 × average, average + 150 ms), the average over the previous 30 intervals
(at least 5 of them); an interval over 5 s is a *pause*, not a freeze. With rendered-frame times the rule is
applied to them exactly (:func:`detect_freezes`); with only per-second frame counts each second's frames are
taken as evenly spread over it (:func:`frame_times`), so a second with 2 frames after seconds of 30 holds two
500 ms intervals (freezes) and an empty second stretches the gap.

The summary's ``value`` maps each of loss %, RTT p95, freeze ratio and drop % to 0–1 between the limits of
:data:`LINK_LIMITS` (1 at or better than `good`, 0 at or worse than `bad`) and averages them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PAUSE_MS = 5000.0
FREEZE_WINDOW = 30
FREEZE_MIN_INTERVALS = 5
# metric -> (good, bad)
LINK_LIMITS: dict[str, tuple[float, float]] = {
    "loss_pct": (0.0, 5.0),
    "rtt_p95_ms": (150.0, 600.0),
    "freeze_ratio": (0.0, 0.2),
    "drop_pct": (0.0, 30.0),
}


def is_freeze(interval_ms: float, average_ms: float) -> bool:
    return interval_ms >= max(3 * average_ms, average_ms + 150.0)


@dataclass(frozen=True)
class FreezeStats:
    freeze_count: int = 0
    freeze_ms: float = 0.0
    pause_count: int = 0
    pause_ms: float = 0.0
    freezes: tuple[tuple[float, float], ...] = ()  # (start, end) in ms, freezes and pauses


def detect_freezes(frame_times_ms: Iterable[float]) -> FreezeStats:
    """Freezes and pauses among rendered-frame times (ms, ascending) by the W3C rule above."""
    intervals: deque[float] = deque(maxlen=FREEZE_WINDOW)
    last: float | None = None
    count = pauses = 0
    frozen_ms = paused_ms = 0.0
    spans: list[tuple[float, float]] = []
    for t in frame_times_ms:
        if last is not None and t >= last:
            interval = t - last
            if interval > PAUSE_MS:
                pauses += 1
                paused_ms += interval
                spans.append((last, t))
            else:
                if len(intervals) >= FREEZE_MIN_INTERVALS and is_freeze(interval, sum(intervals) / len(intervals)):
                    count += 1
                    frozen_ms += interval
                    spans.append((last, t))
                intervals.append(interval)
        last = t
    return FreezeStats(count, frozen_ms, pauses, paused_ms, tuple(spans))


def _number(data: Mapping[str, Any], *keys: str) -> float | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


@dataclass(frozen=True)
class LinkSample:
    t: float  # end of the second it covers, s
    stream: str = ""  # which inbound stream (viewer, peer)
    fps: float | None = None  # frames rendered (or decoded) in that second
    frames_dropped: float | None = None
    packets_received: float | None = None
    packets_lost: float | None = None
    loss_pct: float | None = None  # used when the packet counts are missing
    jitter_ms: float | None = None
    rtt_ms: float | None = None

    @property
    def loss(self) -> float | None:
        """Loss % of this second from the packet counts, else as given."""
        if self.packets_lost is not None and self.packets_received is not None:
            lost = max(0.0, self.packets_lost)
            expected = lost + max(0.0, self.packets_received)
            return 100.0 * lost / expected if expected else None
        return self.loss_pct

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], t: float | None = None, stream: str | None = None) -> LinkSample:
        """From the console's summary (rttMs, lossPct, jitter in s, framesDropped…) or a timeline viewer
        (peer, rtt_ms, loss as a fraction)."""
        loss_fraction = _number(data, "loss")
        jitter_s = _number(data, "jitter", "jitter_s")
        return cls(
            t=t if t is not None else (_number(data, "t") or 0.0),
            stream=stream if stream is not None else str(data.get("peer", data.get("stream", ""))),
            fps=_number(data, "fps", "framesPerSecond"),
            frames_dropped=_number(data, "framesDropped", "frames_dropped"),
            packets_received=_number(data, "packetsReceived", "packets_received"),
            packets_lost=_number(data, "packetsLost", "packets_lost"),
            loss_pct=_number(data, "lossPct", "loss_pct") if loss_fraction is None else 100.0 * loss_fraction,
            jitter_ms=_number(data, "jitterMs", "jitter_ms") if jitter_s is None else 1000.0 * jitter_s,
            rtt_ms=_number(data, "rttMs", "rtt_ms"),
        )


def frame_times(samples: Sequence[LinkSample]) -> list[float]:
    """Rendered-frame times (ms) of one stream, each second's frames spread evenly over it."""
    times: list[float] = []
    for s in sorted(samples, key=lambda s: s.t):
        n = max(0, round(s.fps or 0.0))
        start = (s.t - 1.0) * 1000.0
        times += [start + 1000.0 * (k + 1) / n for k in range(n)]
    return times


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), linear between closest ranks (numpy's default)."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _share(value: float, good: float, bad: float) -> float:
    return min(1.0, max(0.0, (bad - value) / (bad - good)))


@dataclass(frozen=True)
class LinkSummary:
    seconds: int
    streams: int
    loss_pct: float | None
    jitter_ms: float | None  # mean
    rtt_p95_ms: float | None
    fps: float | None  # mean
    drops: int  # frames dropped, total
    drop_pct: float | None
    freeze_count: int
    freeze_s: float
    pause_count: int
    pause_s: float
    freeze_ratio: float | None  # share of the time frozen or paused
    value: float | None  # 0–1, higher is better
    limits: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(LINK_LIMITS))

    def to_dict(self) -> dict[str, Any]:
        def r(v: float | None, digits: int) -> float | None:
            return None if v is None else round(v, digits)

        return {
            "seconds": self.seconds, "streams": self.streams, "loss_pct": r(self.loss_pct, 3),
            "jitter_ms": r(self.jitter_ms, 2), "rtt_p95_ms": r(self.rtt_p95_ms, 1), "fps": r(self.fps, 2),
            "drops": self.drops, "drop_pct": r(self.drop_pct, 2), "freeze_count": self.freeze_count,
            "freeze_s": round(self.freeze_s, 3), "pause_count": self.pause_count, "pause_s": round(self.pause_s, 3),
            "freeze_ratio": r(self.freeze_ratio, 4), "value": r(self.value, 4),
            "limits": {k: list(v) for k, v in self.limits.items()},
        }  # fmt: skip


def _drop_pct(samples: Sequence[LinkSample], nominal_fps: float | None) -> tuple[int, float | None]:
    dropped = [s.frames_dropped for s in samples if s.frames_dropped is not None]
    rendered = sum(s.fps or 0.0 for s in samples if s.frames_dropped is not None)
    if dropped and sum(dropped) + rendered > 0:
        return int(sum(dropped)), 100.0 * sum(dropped) / (sum(dropped) + rendered)
    fps = [s.fps for s in samples if s.fps is not None]
    if nominal_fps and fps:
        return 0, 100.0 * sum(max(0.0, 1.0 - f / nominal_fps) for f in fps) / len(fps)
    return 0, None


def link_summary(
    samples: Iterable[LinkSample],
    nominal_fps: float | None = None,
    frame_times_ms: Mapping[str, Sequence[float]] | None = None,
    limits: Mapping[str, tuple[float, float]] = LINK_LIMITS,
) -> LinkSummary | None:
    """Summary over every stream's samples (None without samples). `frame_times_ms`, per stream, gives the
    exact rendered-frame times when the caller has them; otherwise they are rebuilt from the frame counts.
    `nominal_fps` (the source's) gives drop % when the samples carry no dropped-frame counts."""
    ordered = sorted(samples, key=lambda s: (s.stream, s.t))
    if not ordered:
        return None
    streams: dict[str, list[LinkSample]] = {}
    for s in ordered:
        streams.setdefault(s.stream, []).append(s)
    stats = [
        detect_freezes((frame_times_ms or {}).get(name) or frame_times(stream_samples))
        for name, stream_samples in streams.items()
    ]
    freeze_s = sum(f.freeze_ms for f in stats) / 1000.0
    pause_s = sum(f.pause_ms for f in stats) / 1000.0
    losses = [loss for s in ordered if (loss := s.loss) is not None]
    rtts = [s.rtt_ms for s in ordered if s.rtt_ms is not None]
    drops, drop_pct = _drop_pct(ordered, nominal_fps)
    parts = {
        "loss_pct": _mean(losses),
        "rtt_p95_ms": percentile(rtts, 95) if rtts else None,
        "freeze_ratio": min(1.0, (freeze_s + pause_s) / len(ordered)),
        "drop_pct": drop_pct,
    }
    shares = [_share(v, *limits[k]) for k, v in parts.items() if v is not None and k in limits]
    return LinkSummary(
        seconds=len(ordered),
        streams=len(streams),
        loss_pct=parts["loss_pct"],
        jitter_ms=_mean([s.jitter_ms for s in ordered if s.jitter_ms is not None]),
        rtt_p95_ms=parts["rtt_p95_ms"],
        fps=_mean([s.fps for s in ordered if s.fps is not None]),
        drops=drops,
        drop_pct=drop_pct,
        freeze_count=sum(f.freeze_count for f in stats),
        freeze_s=freeze_s,
        pause_count=sum(f.pause_count for f in stats),
        pause_s=pause_s,
        freeze_ratio=parts["freeze_ratio"],
        value=sum(shares) / len(shares) if shares else None,
        limits=dict(limits),
    )
