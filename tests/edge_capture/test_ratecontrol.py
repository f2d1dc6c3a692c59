"""edge_capture.ratecontrol: the sender's bitrate from REMB and the receiver reports, and the degradation shape."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_capture import ratecontrol as rc

LIMITS = rc.RateLimits(max_bps=6_000_000)

feedbacks = st.builds(
    rc.Feedback,
    at=st.floats(0, 1e5),
    remb_bps=st.none() | st.integers(0, 20_000_000),
    fraction_lost=st.none() | st.floats(0, 1),
    rtt_s=st.none() | st.floats(0, 5),
    delivered_bps=st.none() | st.integers(0, 20_000_000),
)


@st.composite
def runs(draw: st.DrawFn) -> list[rc.Feedback]:
    """Feedback in time order, as the encoder gives it."""
    items = draw(st.lists(feedbacks, min_size=1, max_size=40))
    return sorted(items, key=lambda f: f.at)


def run(feedback: list[rc.Feedback], limits: rc.RateLimits = LIMITS) -> list[rc.RateState]:
    state, out = rc.initial(limits), []
    for fb in feedback:
        state = rc.step(limits, state, fb)
        out.append(state)
    return out


@given(runs())
def test_never_above_remb_nor_the_maximum_never_below_the_floor(feedback: list[rc.Feedback]) -> None:
    for fb, state in zip(feedback, run(feedback), strict=True):
        assert LIMITS.floor_bps <= state.target_bps <= LIMITS.max_bps
        if fb.remb_bps is not None:
            assert state.target_bps <= max(fb.remb_bps, LIMITS.floor_bps)


@given(runs(), st.floats(0, 1), st.floats(0, 1))
def test_more_loss_never_gives_a_higher_target(feedback: list[rc.Feedback], loss_a: float, loss_b: float) -> None:
    low, high = sorted((loss_a, loss_b))
    state = run(feedback)[-1]
    at = feedback[-1].at + 0.5
    remb = feedback[-1].remb_bps
    with_low = rc.step(LIMITS, state, rc.Feedback(at=at, remb_bps=remb, fraction_lost=low))
    with_high = rc.step(LIMITS, state, rc.Feedback(at=at, remb_bps=remb, fraction_lost=high))
    assert with_high.target_bps <= with_low.target_bps


def test_without_reports_it_follows_remb_as_aiortc_does() -> None:
    states = run([rc.Feedback(at=0, remb_bps=2_000_000), rc.Feedback(at=1, remb_bps=4_500_000),
                  rc.Feedback(at=2, remb_bps=None), rc.Feedback(at=3, remb_bps=50_000_000)])  # fmt: skip
    assert [s.target_bps for s in states] == [2_000_000, 4_500_000, 6_000_000, 6_000_000]
    assert states[0].reason == "remb"


def test_heavy_loss_cuts_once_a_second_at_most_and_light_loss_does_not() -> None:
    remb = 6_000_000
    states = run([
        rc.Feedback(at=0, remb_bps=remb, fraction_lost=0.01),
        rc.Feedback(at=1, remb_bps=remb, fraction_lost=0.20),   # × 0.9
        rc.Feedback(at=1.5, remb_bps=remb),                     # no new report: nothing new to act on
        rc.Feedback(at=1.6, remb_bps=remb, fraction_lost=0.5),  # a report in a NACK's packet: too soon to cut again
        rc.Feedback(at=2, remb_bps=remb, fraction_lost=0.40),   # × 0.8
        rc.Feedback(at=3, remb_bps=remb, fraction_lost=0.05),   # between 2 and 10 %: hold
    ])  # fmt: skip
    assert [s.target_bps for s in states] == [6_000_000, 5_400_000, 5_400_000, 5_400_000, 4_320_000, 4_320_000]
    assert states[-1].cuts == 2 and states[4].reason == "loss 40%"


def test_heavy_loss_cuts_at_once_to_what_got_through_and_moderate_loss_does_not() -> None:
    # the onset of a 1 Mb/s bottleneck under 6 Mb/s: 83 % lost, 1 Mb/s got through
    onset = run([rc.Feedback(at=0, remb_bps=6_000_000, fraction_lost=0.83, delivered_bps=1_000_000)])[-1]
    assert onset.target_bps == 850_000 and onset.reason == "loss 83%, to delivered" and onset.cuts == 1
    # 20 % lost: the loss rule's own cut (× 0.9) whatever got through
    moderate = run([rc.Feedback(at=0, remb_bps=6_000_000, fraction_lost=0.2, delivered_bps=1_000_000)])[-1]
    assert moderate.target_bps == 5_400_000
    # what got through is never a reason to go above the loss rule, nor under the floor
    mild = run([rc.Feedback(at=0, remb_bps=6_000_000, fraction_lost=0.3, delivered_bps=6_500_000)])[-1]
    assert mild.target_bps == 5_100_000
    floor = run([rc.Feedback(at=0, remb_bps=6_000_000, fraction_lost=0.9, delivered_bps=100_000)])[-1]
    assert floor.target_bps == LIMITS.floor_bps


@given(runs(), st.floats(0, 1), st.integers(0, 10_000_000), st.integers(0, 10_000_000))
def test_less_getting_through_never_gives_a_higher_target(
    feedback: list[rc.Feedback], loss: float, delivered_a: int, delivered_b: int
) -> None:
    low, high = sorted((delivered_a, delivered_b))
    state = run(feedback)[-1]
    at = feedback[-1].at + 0.5
    remb = feedback[-1].remb_bps
    with_low = rc.step(LIMITS, state, rc.Feedback(at=at, remb_bps=remb, fraction_lost=loss, delivered_bps=low))
    with_high = rc.step(LIMITS, state, rc.Feedback(at=at, remb_bps=remb, fraction_lost=loss, delivered_bps=high))
    assert with_low.target_bps <= with_high.target_bps


def test_after_a_cut_it_holds_then_probes_back_up_to_remb() -> None:
    remb = 3_000_000
    cut = run([rc.Feedback(at=0, remb_bps=remb, fraction_lost=0.5)])[-1]
    assert cut.target_bps == 2_250_000 and cut.recovering
    held = rc.step(LIMITS, cut, rc.Feedback(at=0.5, remb_bps=remb, fraction_lost=0.0))
    assert held.target_bps == cut.target_bps  # within hold_s of the cut
    state = held
    for second in range(1, 30):
        state = rc.step(LIMITS, state, rc.Feedback(at=float(second), remb_bps=remb, fraction_lost=0.0))
        if second == 2:
            assert cut.target_bps < state.target_bps < remb  # 8 % a second, not at once
    assert state.target_bps == remb and not state.recovering


def test_a_growing_round_trip_cuts_and_a_standing_one_stops_the_probe() -> None:
    remb = 6_000_000
    states = run([
        rc.Feedback(at=0, remb_bps=remb, rtt_s=0.100),
        rc.Feedback(at=1, remb_bps=remb, rtt_s=0.120),  # 20 ms over the lowest: no queue yet
        rc.Feedback(at=2, remb_bps=remb, rtt_s=0.160),  # 60 ms over: one report is not a queue yet
        rc.Feedback(at=3, remb_bps=remb, rtt_s=0.180),  # over twice running, and growing: × 0.85
        rc.Feedback(at=4, remb_bps=remb, rtt_s=0.170),  # over but falling: no second cut, no probe
        rc.Feedback(at=6, remb_bps=remb, rtt_s=0.101),  # drained: probe again
    ])  # fmt: skip
    targets = [s.target_bps for s in states]
    assert targets[:5] == [6_000_000, 6_000_000, 6_000_000, 5_100_000, 5_100_000]
    assert targets[5] > 5_100_000 and states[3].reason.startswith("queue")


def test_one_late_report_on_a_busy_host_is_not_a_queue() -> None:
    """aiortc smooths the round trip: one receiver report a second late jumps it, then it decays."""
    rtts = [0.005, 0.005, 0.160, 0.137, 0.117, 0.100, 0.086, 0.074]
    states = run([rc.Feedback(at=float(t), remb_bps=6_000_000, rtt_s=r) for t, r in enumerate(rtts)])
    assert states[-1].cuts == 0


def test_a_long_fixed_round_trip_is_not_a_queue() -> None:
    """300 ms of path delay, steady: the lowest RTT is the path, and nothing is cut."""
    states = run([rc.Feedback(at=float(t), remb_bps=6_000_000, rtt_s=0.300 + 0.005 * (t % 2)) for t in range(20)])
    assert all(s.target_bps == 6_000_000 for s in states) and states[-1].cuts == 0


def test_limits_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        rc.RateLimits(max_bps=100_000, floor_bps=200_000)
    with pytest.raises(ValueError):
        rc.RateLimits(max_bps=1_000_000, loss_probe_below=0.2, loss_cut_above=0.1)


# ---- degradation --------------------------------------------------------------------------------------------------

W, H, FPS = 1280, 720, 30.0


@pytest.mark.parametrize(
    ("preference", "target", "scale", "divisor"),
    [
        ("resolution", 6_000_000, 1.0, 1),
        ("resolution", 1_000_000, rc.REDUCED_SCALE, 1),  # keeps the motion
        ("framerate", 1_000_000, 1.0, 2),  # keeps each picture's size
        ("resolution", 300_000, rc.REDUCED_SCALE, 2),  # the second step gives up both
        ("framerate", 300_000, rc.REDUCED_SCALE, 2),
    ],
)
def test_the_preferred_step_goes_first(preference: str, target: int, scale: float, divisor: int) -> None:
    shape = rc.shape_for(preference, target, W, H, FPS)
    assert (shape.scale, shape.rate_divisor) == (scale, divisor)


@given(st.sampled_from(rc.DEGRADATIONS), st.integers(100_000, 10_000_000), st.integers(100_000, 10_000_000))
def test_a_lower_rate_never_gives_a_fuller_shape(preference: str, a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert rc.shape_for(preference, low, W, H, FPS).level >= rc.shape_for(preference, high, W, H, FPS).level


def test_a_rate_hovering_at_a_threshold_does_not_flap() -> None:
    threshold = rc.STEP_BPP[0] * W * H * FPS
    down = rc.shape_for("resolution", int(threshold * 0.99), W, H, FPS)
    assert down.level == 1
    assert rc.shape_for("resolution", int(threshold * 1.05), W, H, FPS, previous=down) == down
    assert rc.shape_for("resolution", int(threshold * rc.RECOVER_MARGIN * 1.01), W, H, FPS, previous=down) == rc.FULL


def test_an_unknown_preference_is_refused() -> None:
    with pytest.raises(ValueError):
        rc.shape_for("colour", 1_000_000, W, H, FPS)
