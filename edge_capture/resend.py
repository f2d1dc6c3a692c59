"""Which lost packets the edge sends again when a page NACKs them, and when it sends a keyframe instead (pure).

aiortc answers every NACK from its history of sent packets, whatever the packet's age and whatever the link can
carry: when a bottleneck starts, the receiver NACKs most of a second of packets, and their resends on top of the
encoder's own rate keep the queue full, so the resends are lost too and are asked for again (docs/NETWORK.md). A
real-time picture has no use for a packet that arrives after the receiver gave up on its frame. So a resend must
pass three checks, in this order:

1. **superseded**: a packet sent before the newest keyframe belongs to a picture the receiver no longer needs (the
   keyframe decodes on its own; Chromium drops the incomplete frames before it): not sent, nothing else to do;
2. **too old**: a packet older than ``rtt_multiple`` round trips plus ``age_slack_s`` (within
   ``min_age_s``..``max_age_s``) cannot make its frame in time: not sent;
3. **over budget**: resends may add ``budget_share`` of the rate that gets through (the encoder's target, or less
   when the receiver reports heavy loss), with a bucket of ``burst_s`` of it: beyond that they would only feed the
   queue. Not sent.

A packet that was too old or over budget leaves a hole the receiver cannot fill: its decoder waits, and Chromium
asks for a keyframe only after it has waited long (seconds). So those two ask the encoder for a keyframe at once,
at most once per ``keyframe_interval_s`` (or two round trips, if longer): the picture resumes from a keyframe
encoded at the current, lower rate instead of from a backlog.

:func:`decide` is a pure function of frozen values; the caller (``edge_capture.fanout``'s resend hook on one
``RTCRtpSender``) measures the packet's age, keeps the :class:`ResendState` and acts on the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

Verdict = Literal["resend", "superseded", "too_old", "over_budget"]
VERDICTS: tuple[Verdict, ...] = ("resend", "superseded", "too_old", "over_budget")


@dataclass(frozen=True)
class ResendLimits:
    budget_share: float = 0.25  # resends may add this share of the rate that gets through
    burst_s: float = 0.2  # the bucket holds this many seconds of the budget
    min_burst_bytes: int = 4 * 1_300  # but always a few full packets
    rtt_multiple: float = 3.0
    age_slack_s: float = 0.2
    min_age_s: float = 0.4
    max_age_s: float = 1.0
    no_rtt_age_s: float = 0.6  # the bound before any round trip is known
    keyframe_interval_s: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.budget_share <= 1.0:
            raise ValueError(f"budget_share must be within 0..1, not {self.budget_share}")
        if self.burst_s < 0 or self.min_burst_bytes < 0 or self.rtt_multiple < 0 or self.keyframe_interval_s < 0:
            raise ValueError("burst_s, min_burst_bytes, rtt_multiple and keyframe_interval_s must not be negative")
        if not 0.0 < self.min_age_s <= self.no_rtt_age_s <= self.max_age_s:
            raise ValueError("need 0 < min_age_s <= no_rtt_age_s <= max_age_s")


@dataclass(frozen=True)
class Request:
    """One NACKed packet at ``at`` (monotonic s): its age (s since it was first sent), its size in bytes, how long
    ago the newest keyframe's first packet went out (None: none yet), the rate that gets through (b/s) and the round
    trip (s, None: unknown)."""

    at: float
    age_s: float
    size_bytes: int
    since_keyframe_s: float | None
    rate_bps: int
    rtt_s: float | None = None


@dataclass(frozen=True)
class ResendState:
    tokens: float | None = None  # bytes; None: a full bucket
    at: float | None = None
    keyframe_asked_at: float = -math.inf
    verdict: Verdict | None = None
    ask_keyframe: bool = False  # this request should make the encoder send a keyframe
    counts: tuple[int, int, int, int] = (0, 0, 0, 0)  # per verdict, in VERDICTS' order


def max_age(limits: ResendLimits, rtt_s: float | None) -> float:
    """How old a packet may be and still be sent again."""
    if rtt_s is None or rtt_s < 0 or math.isnan(rtt_s):
        return limits.no_rtt_age_s
    return min(limits.max_age_s, max(limits.min_age_s, limits.rtt_multiple * rtt_s + limits.age_slack_s))


def bucket_bytes(limits: ResendLimits, rate_bps: int) -> float:
    """The most the bucket holds at ``rate_bps``."""
    return max(float(limits.min_burst_bytes), limits.budget_share * max(0, rate_bps) / 8 * limits.burst_s)


def decide(limits: ResendLimits, state: ResendState, req: Request) -> ResendState:
    """The next state; its ``verdict`` says whether to send ``req``'s packet, ``ask_keyframe`` whether to ask for a
    keyframe now."""
    capacity = bucket_bytes(limits, req.rate_bps)
    tokens = capacity if state.tokens is None else state.tokens
    if state.at is not None:
        tokens += limits.budget_share * max(0, req.rate_bps) / 8 * max(0.0, req.at - state.at)
    tokens = min(capacity, tokens)

    verdict: Verdict
    if req.since_keyframe_s is not None and req.age_s > req.since_keyframe_s:
        verdict = "superseded"
    elif req.age_s > max_age(limits, req.rtt_s):
        verdict = "too_old"
    elif req.size_bytes > tokens:
        verdict = "over_budget"
    else:
        verdict = "resend"
        tokens -= req.size_bytes

    interval = max(limits.keyframe_interval_s, 2 * (req.rtt_s or 0.0))
    ask = verdict in ("too_old", "over_budget") and req.at - state.keyframe_asked_at >= interval
    counts = list(state.counts)
    counts[VERDICTS.index(verdict)] += 1
    return replace(
        state,
        tokens=tokens,
        at=req.at if state.at is None else max(state.at, req.at),
        keyframe_asked_at=req.at if ask else state.keyframe_asked_at,
        verdict=verdict,
        ask_keyframe=ask,
        counts=(counts[0], counts[1], counts[2], counts[3]),
    )


def abs_send_age(now_abs: int, sent_abs: int) -> float:
    """Seconds between two abs-send-time values (24-bit, 6.18 fixed point, wrapping every 64 s), as aiortc stamps
    every RTP packet it sends: ``(current_ntp_time() >> 14) & 0xFFFFFF``."""
    return ((now_abs - sent_abs) & 0xFFFFFF) / (1 << 18)
