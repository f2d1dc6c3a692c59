"""Sender-side rate control: the bitrate the edge's encoder aims at, from the pages' feedback (pure, no I/O).

aiortc offers only ``goog-remb`` (no transport-wide congestion control), so the estimate a sender gets is the
browser's receive-side one: Chromium's REMB, delay-based, sent about once a second and at once on a sharp fall. It
does not react to random loss at all, and when a bottleneck's queue overflows it lags it by one or two seconds
(docs/NETWORK.md has the measurements). The browser's RTCP receiver reports say what REMB leaves out: the fraction
of packets lost since the last report and (with our sender reports) the round trip. This module combines them, in
the manner of the loss-based half of Google Congestion Control (draft-ietf-rmcat-gcc):

- the target never exceeds the latest REMB nor the configured maximum, and never falls below a floor (500 kb/s:
  Chromium's estimate grows at most to 1.5 × what it receives, so a sender that goes quieter than the link
  needs is held there by its own silence; the degradation steps make a low rate watchable instead);
- a report losing more than ``loss_cut_above`` (10 %) cuts the target by half the fraction lost (20 % loss → × 0.9);
  one losing more than ``heavy_loss_above`` (25 %: a queue overflowing, not random loss) cuts it at once to
  ``delivered_share`` (85 %) of what got through (what was sent over the loss window, less what was lost) if that is
  lower: at the onset of a bottleneck most of what is sent is lost, and halving the loss would take several seconds
  of cuts to reach the link's rate, each second of them lost too;
- a round trip more than ``queue_cut_s`` above the lowest seen in two reports running, and growing (a queue
  building at a bottleneck), cuts it by ``queue_cut_factor``. One report is not enough: aiortc's round trip is
  smoothed (0.85 of the old value each report), so a single late report on a busy host (a receiver report waiting
  on a starved event loop reads as a round trip of a second) shows as one jump that then decays; a queue rises;
- at most one cut per ``cut_interval_s`` (1 s): Chromium puts a receiver report in every RTCP packet it sends,
  and under loss it sends NACKs many times a second, each report covering only the last few milliseconds;
- after a cut of its own, with little loss (under ``loss_probe_below``, 2 %), no queue and no cut in the last
  ``hold_s``, it probes back up by ``probe_per_s`` (8 %) a second until it reaches REMB again;
- with no cut of its own to recover from, it follows REMB as it is (as aiortc alone does).

:func:`step` is a pure function of frozen values: the caller (``edge_capture.encoding.SenderRate``) reads aiortc's
sender state and keeps the :class:`RateState` between calls. Each receiver report is passed once (``fraction_lost``
and ``rtt_s`` are None between reports), so a report acts once however often the encoder asks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class RateLimits:
    """The controller's constants; ``max_bps`` is the configured bitrate."""

    max_bps: int
    floor_bps: int = 500_000
    loss_cut_above: float = 0.10
    heavy_loss_above: float = 0.25
    delivered_share: float = 0.85
    loss_probe_below: float = 0.02
    queue_cut_s: float = 0.04
    queue_cut_factor: float = 0.85
    probe_per_s: float = 0.08
    hold_s: float = 1.0
    cut_interval_s: float = 1.0
    min_rtt_drift_per_s: float = 0.002  # the lowest RTT seen creeps up this fast, so a longer new route is learnt

    def __post_init__(self) -> None:
        if not 0 < self.floor_bps <= self.max_bps:
            raise ValueError(f"need 0 < floor_bps <= max_bps, not {self.floor_bps}, {self.max_bps}")
        if not 0.0 <= self.loss_probe_below <= self.loss_cut_above <= self.heavy_loss_above <= 1.0:
            raise ValueError("need 0 <= loss_probe_below <= loss_cut_above <= heavy_loss_above <= 1")
        if not 0.0 < self.delivered_share <= 1.0:
            raise ValueError(f"delivered_share must be within (0, 1], not {self.delivered_share}")
        if not 0.0 < self.queue_cut_factor < 1.0 or self.probe_per_s < 0 or self.hold_s < 0:
            raise ValueError("queue_cut_factor must be within (0, 1); probe_per_s and hold_s not negative")


@dataclass(frozen=True)
class Feedback:
    """What the senders know at ``at`` (monotonic s): the lowest REMB among the pages, and a new receiver report's
    fraction lost (0..1) and round trip (s) for the page that fares worst, or None when no new report came;
    ``delivered_bps`` is what reached that page over the loss's window (None: unknown)."""

    at: float
    remb_bps: int | None = None
    fraction_lost: float | None = None
    rtt_s: float | None = None
    delivered_bps: int | None = None


@dataclass(frozen=True)
class RateState:
    """The controller's memory between two steps."""

    target_bps: int
    at: float | None = None
    min_rtt_s: float | None = None
    last_rtt_s: float | None = None
    last_loss: float = 0.0
    hold_until: float = -math.inf
    last_cut_at: float = -math.inf
    recovering: bool = False  # under REMB after a cut of our own, probing back up
    cuts: int = 0
    reason: str = "start"


def initial(limits: RateLimits) -> RateState:
    """Where a fresh encoder starts: the configured bitrate (REMB pulls it down within a second if it must)."""
    return RateState(target_bps=limits.max_bps)


def ceiling(limits: RateLimits, remb_bps: int | None) -> int:
    """The most the target may be: REMB capped at the maximum (never under the floor)."""
    cap = limits.max_bps if remb_bps is None else min(limits.max_bps, remb_bps)
    return max(limits.floor_bps, cap)


def step(limits: RateLimits, state: RateState, fb: Feedback) -> RateState:
    """The next state after ``fb``; its ``target_bps`` is what the encoder should run at."""
    dt = 0.0 if state.at is None else max(0.0, fb.at - state.at)
    top = ceiling(limits, fb.remb_bps)
    target = float(min(state.target_bps, top))  # a cut is taken from what would be sent
    cut, reason = False, state.reason
    may_cut = fb.at - state.last_cut_at >= limits.cut_interval_s

    loss = state.last_loss
    if fb.fraction_lost is not None:
        loss = min(1.0, max(0.0, fb.fraction_lost))
        if loss > limits.loss_cut_above and may_cut:
            target *= 1.0 - 0.5 * loss
            cut, reason = True, f"loss {loss:.0%}"
            if loss > limits.heavy_loss_above and fb.delivered_bps is not None:
                delivered = limits.delivered_share * max(0, fb.delivered_bps)
                if delivered < target:
                    target, reason = delivered, f"loss {loss:.0%}, to delivered"

    min_rtt, last_rtt = state.min_rtt_s, state.last_rtt_s
    if min_rtt is not None:
        min_rtt += limits.min_rtt_drift_per_s * dt
    if fb.rtt_s is not None and fb.rtt_s >= 0:
        rtt = fb.rtt_s
        min_rtt = rtt if min_rtt is None else min(min_rtt, rtt)
        standing = last_rtt is not None and last_rtt - min_rtt > limits.queue_cut_s and rtt > last_rtt
        if rtt - min_rtt > limits.queue_cut_s and standing and not cut and may_cut:
            target *= limits.queue_cut_factor
            cut, reason = True, f"queue {1000 * (rtt - min_rtt):.0f} ms"
        last_rtt = rtt

    queued = last_rtt is not None and min_rtt is not None and last_rtt - min_rtt > limits.queue_cut_s
    hold_until = fb.at + limits.hold_s if cut else state.hold_until
    recovering = state.recovering or cut
    if cut:
        pass
    elif recovering:
        if not queued and loss < limits.loss_probe_below and fb.at >= hold_until:
            target *= (1.0 + limits.probe_per_s) ** min(dt, 60.0)  # (a long silence: no overflow)
            reason = "probe"
        if target >= top:
            recovering = False
    else:
        target = top
        reason = "remb" if fb.remb_bps is not None and top < limits.max_bps else "max"
    target = max(float(limits.floor_bps), min(float(top), target))
    return replace(
        state,
        target_bps=int(target),
        at=fb.at,
        min_rtt_s=min_rtt,
        last_rtt_s=last_rtt,
        last_loss=loss,
        hold_until=hold_until,
        recovering=recovering,
        last_cut_at=fb.at if cut else state.last_cut_at,
        cuts=state.cuts + (1 if cut else 0),
        reason=reason,
    )


# ---- degradation: what to give up first when the rate is low ---------------------------------------------------

DEGRADATIONS = ("resolution", "framerate")
# Bits per pixel (of the full-size, full-rate picture) under which one step, then a second, is given up; a step
# is taken back once the target is ``RECOVER_MARGIN`` above its threshold, so a target hovering at one does not
# flap (each change of size costs a keyframe).
STEP_BPP = (0.05, 0.02)  # 720p30: 1.38 and 0.55 Mb/s; 1080p30: 3.1 and 1.24 Mb/s
RECOVER_MARGIN = 1.3
REDUCED_SCALE = 2 / 3  # 720p -> 480p, 1080p -> 720p
REDUCED_RATE_DIVISOR = 2  # 30 -> 15 fps


@dataclass(frozen=True)
class Shape:
    """How the live picture is sent: every ``rate_divisor``-th frame, at ``scale`` of its size."""

    level: int = 0
    scale: float = 1.0
    rate_divisor: int = 1


FULL = Shape()


def shape_for(preference: str, target_bps: int, width: int, height: int, fps: float, previous: Shape = FULL) -> Shape:
    """The shape for ``target_bps``: 0, 1 or 2 steps down, the preferred one first (pure, with hysteresis).

    ``preference`` "resolution" gives up resolution first (keeps motion: guidance), "framerate" the frame rate first
    (keeps each picture's detail). The second step gives up the other one too.
    """
    if preference not in DEGRADATIONS:
        raise ValueError(f"degradation must be one of {DEGRADATIONS}, not {preference!r}")
    bpp = target_bps / max(1.0, width * height * fps)
    level = 0
    for i, threshold in enumerate(STEP_BPP, start=1):
        # going down at the threshold; staying down (back up only above the margin) when already this low
        limit = threshold * RECOVER_MARGIN if previous.level >= i else threshold
        if bpp < limit:
            level = i
    if level == 0:
        return FULL
    first_is_resolution = preference == "resolution"
    resolution = first_is_resolution or level >= 2
    framerate = not first_is_resolution or level >= 2
    return Shape(
        level=level,
        scale=REDUCED_SCALE if resolution else 1.0,
        rate_divisor=REDUCED_RATE_DIVISOR if framerate else 1,
    )
