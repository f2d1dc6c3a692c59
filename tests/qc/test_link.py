"""Link quality: W3C freezes and pauses, loss, RTT p95, drops, the summary's value."""

from __future__ import annotations

import pytest

from qc.link import LinkSample, detect_freezes, frame_times, is_freeze, link_summary, percentile


def steady(n: int, interval: float = 33.3, start: float = 0.0) -> list[float]:
    return [start + k * interval for k in range(n)]


def test_w3c_freeze_rule() -> None:
    assert is_freeze(183.3, 33.3) and not is_freeze(180.0, 33.3)  # average + 150 ms at 30 fps
    assert is_freeze(300.0, 100.0) and not is_freeze(290.0, 100.0)  # 3 × average at 10 fps


def test_a_gap_between_frames_is_a_freeze() -> None:
    times = steady(40)
    times += [times[-1] + 250.0 + k * 33.3 for k in range(20)]
    stats = detect_freezes(times)
    assert stats.freeze_count == 1
    assert stats.freeze_ms == pytest.approx(250.0)
    assert detect_freezes([*steady(40), steady(40)[-1] + 150.0]).freeze_count == 0


def test_no_freeze_before_five_intervals_and_a_long_gap_is_a_pause() -> None:
    assert detect_freezes([0.0, 33.0, 500.0]).freeze_count == 0
    times = steady(40)
    times += [times[-1] + 6000.0 + k * 33.3 for k in range(10)]
    stats = detect_freezes(times)
    assert (stats.freeze_count, stats.pause_count) == (0, 1)
    assert stats.pause_ms == pytest.approx(6000.0)


def test_frames_rebuilt_from_per_second_counts() -> None:
    samples = [LinkSample(t=float(s), fps=30) for s in range(1, 6)]
    samples.insert(3, LinkSample(t=3.5, fps=0))
    assert len(frame_times(samples)) == 150
    choppy = [LinkSample(t=float(s), fps=30 if s != 4 else 2) for s in range(1, 9)]
    stats = detect_freezes(frame_times(choppy))
    assert stats.freeze_count >= 1


def test_summary_of_a_clean_link() -> None:
    samples = [LinkSample(float(s), "expert", fps=30, packets_received=900, packets_lost=0, rtt_ms=40, jitter_ms=3)
               for s in range(1, 31)]  # fmt: skip
    summary = link_summary(samples, nominal_fps=30)
    assert summary is not None
    assert summary.loss_pct == 0.0 and summary.freeze_count == 0 and summary.freeze_ratio == 0.0
    assert summary.drop_pct == 0.0 and summary.rtt_p95_ms == 40.0 and summary.value == 1.0
    assert link_summary([]) is None


def test_summary_of_a_poor_link() -> None:
    samples = []
    for s in range(1, 31):
        fps = 0 if s in (10, 11) else 20
        samples.append(LinkSample(float(s), "expert", fps=fps, packets_received=950, packets_lost=50,
                                  rtt_ms=100 + 10 * s, frames_dropped=5))  # fmt: skip
    summary = link_summary(samples, nominal_fps=30)
    assert summary is not None
    assert summary.loss_pct == pytest.approx(5.0)
    assert summary.rtt_p95_ms == pytest.approx(percentile([100 + 10 * s for s in range(1, 31)], 95))
    assert summary.drops == 150
    assert summary.drop_pct == pytest.approx(100 * 150 / (150 + 20 * 28))
    assert summary.freeze_count == 1 and summary.freeze_s > 2.0
    assert 0 < summary.freeze_ratio < 0.2  # type: ignore[operator]
    assert summary.value is not None and summary.value < 0.6
    data = summary.to_dict()
    assert data["limits"]["loss_pct"] == [0.0, 5.0]


def test_streams_are_kept_apart() -> None:
    a = [LinkSample(float(s), "a", fps=30) for s in range(1, 11)]
    b = [LinkSample(float(s) + 0.5, "b", fps=30) for s in range(1, 11)]
    summary = link_summary(a + b)
    assert summary is not None and summary.streams == 2 and summary.freeze_count == 0


def test_samples_from_the_console_and_the_timeline() -> None:
    console = LinkSample.from_dict({"fps": 29.5, "rttMs": 80, "lossPct": 1.5, "jitter": 0.004, "framesDropped": 2},
                                   t=4.0, stream="page")  # fmt: skip
    assert (console.fps, console.rtt_ms, console.loss, console.jitter_ms) == (29.5, 80.0, 1.5, 4.0)
    viewer = LinkSample.from_dict({"peer": "p1", "fps": 30, "rtt_ms": 12.5, "loss": 0.02}, t=2.0)
    assert (viewer.stream, viewer.rtt_ms, viewer.loss) == ("p1", 12.5, 2.0)
    assert LinkSample(0.0, packets_received=0, packets_lost=0).loss is None
