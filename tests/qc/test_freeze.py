"""Frozen runs: a held picture is found with its start and end; single repeated frames are not freezes."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from edge_capture.sources.synthetic import SyntheticSource
from qc.freeze import FreezeTracker, frozen_runs, mean_abs_difference
from tests.qc.clips import CLOCK, truth_mask

FPS = 30


def differences(frames: list[np.ndarray], mask: np.ndarray) -> list[float]:
    greys = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
    return [float("inf")] + [mean_abs_difference(a, b, mask) for a, b in itertools.pairwise(greys)]


def test_an_injected_two_second_freeze(thyroid: SyntheticSource) -> None:
    # frames 30..89 all show cycle frame 35: the screen holds one picture from t = 1.0 s until t = 3.0 s
    cycle = [35 if 30 <= k < 90 else k for k in range(120)]
    frames = [thyroid.render(c, CLOCK + k / FPS) for k, c in enumerate(cycle)]
    times = [k / FPS for k in range(120)]
    runs = frozen_runs(times, differences(frames, truth_mask(thyroid)))
    assert len(runs) == 1
    assert runs[0].start == pytest.approx(1.0, abs=1 / FPS)
    assert runs[0].end == pytest.approx(3.0, abs=1 / FPS)
    assert runs[0].repeats == 59
    assert runs[0].to_dict()["seconds"] == pytest.approx(2.0, abs=1 / FPS)


def test_single_repeated_frames_are_not_a_freeze() -> None:
    # a 25 fps scanner captured at 30 fps: every sixth frame repeats the one before
    differences = [float("inf")] + [0.0 if k % 6 == 0 else 2.0 for k in range(1, 300)]
    times = [k / FPS for k in range(300)]
    assert frozen_runs(times, differences) == []
    assert len(frozen_runs(times, differences, min_seconds=0.05)) == 49


def test_a_run_open_at_the_end_is_closed() -> None:
    times = [k / 10 for k in range(30)]
    diffs = [float("inf")] + [5.0] * 9 + [0.1] * 20
    runs = frozen_runs(times, diffs, end=3.0)
    assert len(runs) == 1 and runs[0].start == pytest.approx(0.9) and runs[0].end == 3.0


def test_the_tracker_reports_how_long_so_far() -> None:
    tracker = FreezeTracker(min_seconds=1.0)
    assert tracker.update(0.0, float("inf")) is None
    tracker.update(0.5, 0.1)
    assert tracker.frozen_since == 0.0
    assert tracker.frozen_for(1.25) == 1.25
    run = tracker.update(1.5, 3.0)
    assert run is not None and run.seconds == 1.5
    assert tracker.frozen_for(2.0) == 0.0


def test_mean_abs_difference_range() -> None:
    a = np.zeros((4, 4), np.uint8)
    b = np.full((4, 4), 255, np.uint8)
    assert mean_abs_difference(a, a) == 0.0
    assert mean_abs_difference(a, b) == 255.0
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = True
    c = a.copy()
    c[3, 3] = 200
    assert mean_abs_difference(a, c, mask) == 0.0
    with pytest.raises(ValueError):
        frozen_runs([0.0], [])


def test_an_encoder_settling_on_a_still_picture_is_part_of_the_run() -> None:
    # decoded video: after the cut to a held picture the encoder refines it for a few frames
    diffs = [float("inf")] + [6.0] * 29 + [19.0, 1.1, 1.8, 0.9, 0.55] + [0.0] * 40 + [7.0] * 10
    times = [k / FPS for k in range(len(diffs))]
    (run,) = frozen_runs(times, diffs)
    assert run.start == pytest.approx(times[30]) and run.end == pytest.approx(times[75])
    (late,) = frozen_runs(times, diffs, settle=0.5)  # without settling it starts where the changes end
    assert late.start == pytest.approx(times[34])
