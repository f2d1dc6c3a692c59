"""edge_capture.resend: which NACKed packets are sent again, and when a keyframe is asked for instead."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_capture import resend as rs

LIMITS = rs.ResendLimits()

requests = st.builds(
    rs.Request,
    at=st.floats(0, 1e4),
    age_s=st.floats(0, 5),
    size_bytes=st.integers(1, 1_500),
    since_keyframe_s=st.none() | st.floats(0, 10),
    rate_bps=st.integers(0, 20_000_000),
    rtt_s=st.none() | st.floats(0, 2),
)


def decide_all(reqs: list[rs.Request], limits: rs.ResendLimits = LIMITS) -> list[rs.ResendState]:
    state, out = rs.ResendState(), []
    for req in sorted(reqs, key=lambda r: r.at):
        state = rs.decide(limits, state, req)
        out.append(state)
    return out


@given(st.lists(requests, min_size=1, max_size=60))
def test_resends_never_exceed_the_budget_and_keyframes_are_asked_rarely(reqs: list[rs.Request]) -> None:
    reqs = sorted(reqs, key=lambda r: r.at)
    states = decide_all(reqs)
    rate = max(r.rate_bps for r in reqs)
    sent = sum(r.size_bytes for r, s in zip(reqs, states, strict=True) if s.verdict == "resend")
    span = reqs[-1].at - reqs[0].at
    # a full bucket at the start, then the share of the highest rate seen for the time that passed
    assert sent <= rs.bucket_bytes(LIMITS, rate) + LIMITS.budget_share * rate / 8 * span + 1e-6
    asks = [r.at for r, s in zip(reqs, states, strict=True) if s.ask_keyframe]
    assert all(b - a >= LIMITS.keyframe_interval_s for a, b in itertools.pairwise(asks))
    assert sum(states[-1].counts) == len(reqs)


@given(requests)
def test_what_is_sent_is_young_and_after_the_newest_keyframe(req: rs.Request) -> None:
    state = rs.decide(LIMITS, rs.ResendState(), req)
    if state.verdict == "resend":
        assert req.age_s <= rs.max_age(LIMITS, req.rtt_s)
        assert req.since_keyframe_s is None or req.age_s <= req.since_keyframe_s
    assert state.ask_keyframe == (state.verdict in ("too_old", "over_budget"))  # the first ask is never held back


def test_a_packet_from_before_the_newest_keyframe_is_dropped_without_asking_for_another() -> None:
    state = rs.decide(LIMITS, rs.ResendState(), rs.Request(at=1, age_s=0.3, size_bytes=1_200, since_keyframe_s=0.1,
                                                           rate_bps=6_000_000, rtt_s=0.1))  # fmt: skip
    assert state.verdict == "superseded" and not state.ask_keyframe


@pytest.mark.parametrize(("rtt_s", "age_s", "verdict"), [(None, 0.5, "resend"), (None, 0.7, "too_old"),
                                                         (0.05, 0.39, "resend"), (0.05, 0.41, "too_old"),
                                                         (0.3, 0.95, "resend"), (0.3, 1.05, "too_old")])  # fmt: skip
def test_the_age_bound_follows_the_round_trip_within_bounds(rtt_s: float | None, age_s: float, verdict: str) -> None:
    state = rs.decide(LIMITS, rs.ResendState(), rs.Request(at=1, age_s=age_s, size_bytes=1_200, since_keyframe_s=None,
                                                           rate_bps=6_000_000, rtt_s=rtt_s))  # fmt: skip
    assert state.verdict == verdict


def test_at_a_bottleneck_resends_are_held_to_a_share_of_what_gets_through_and_a_keyframe_is_asked_once() -> None:
    # 1 Mb/s gets through: 31 kB/s of resends, a bucket of 6.25 kB (five packets of 1200 B)
    states = decide_all([rs.Request(at=10, age_s=0.2, size_bytes=1_200, since_keyframe_s=None,
                                    rate_bps=1_000_000, rtt_s=0.1) for i in range(100)])  # fmt: skip
    verdicts = [s.verdict for s in states]
    assert verdicts[:5] == ["resend"] * 5 and set(verdicts[5:]) == {"over_budget"}
    assert sum(s.ask_keyframe for s in states) == 1 and states[5].ask_keyframe
    later = rs.decide(LIMITS, states[-1], rs.Request(at=10.6, age_s=0.2, size_bytes=1_200, since_keyframe_s=None,
                                                     rate_bps=1_000_000, rtt_s=0.1))  # fmt: skip
    assert later.verdict == "resend"  # the bucket refilled


def test_abs_send_age_wraps_every_64_seconds() -> None:
    assert rs.abs_send_age(1 << 18, 0) == 1.0
    assert rs.abs_send_age(10, 0xFFFFFF - (1 << 17) + 11) == 0.5


@pytest.mark.parametrize("kwargs", [{"budget_share": 1.5}, {"burst_s": -1}, {"min_age_s": 0},
                                    {"min_age_s": 0.8, "no_rtt_age_s": 0.6}])  # fmt: skip
def test_limits_refuse_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        rs.ResendLimits(**kwargs)  # type: ignore[arg-type]
