"""Source specs, letterboxing and pacing shared by all sources."""

from __future__ import annotations

import numpy as np
import pytest

from edge_capture.sources.base import FrameSource, Pacer, SourceError, letterbox, open_source, to_bgr
from tests.clocks import FakeClock


@pytest.mark.parametrize("spec", ["", "thyroid", "synthetic:", "camera:0", "device"])
def test_bad_specs_are_refused_with_a_stable_code(spec: str) -> None:
    with pytest.raises(SourceError) as error:
        open_source(spec)
    assert error.value.code == "bad_spec"
    assert error.value.message


def test_odd_sizes_are_refused() -> None:
    with pytest.raises(SourceError) as error:
        open_source("synthetic:thyroid", 1279, 720)
    assert error.value.code == "bad_spec"


def test_letterbox_keeps_aspect_with_black_bars() -> None:
    square = np.full((100, 100, 3), 200, np.uint8)
    out = letterbox(square, 320, 180)
    assert out.shape == (180, 320, 3)
    assert out[:, :60].max() == 0 and out[:, 251:].max() == 0
    assert out[:, 75:245].min() == 200


def test_letterbox_converts_grey_and_passes_exact_sizes_through() -> None:
    grey = np.full((180, 320), 90, np.uint8)
    out = letterbox(grey, 320, 180)
    assert out.shape == (180, 320, 3) and out.min() == 90
    bgr = np.zeros((180, 320, 3), np.uint8)
    assert letterbox(bgr, 320, 180) is bgr
    assert to_bgr(np.zeros((4, 4, 4), np.uint8)).shape == (4, 4, 3)


def test_pacer_holds_the_rate_without_drift() -> None:
    clock = FakeClock(oversleep=0.003)  # every sleep ends 3 ms late, as on a busy machine
    pacer = Pacer(50.0, clock)
    started = clock.now
    for _ in range(26):
        pacer.wait()
        clock.advance(0.005)  # the reader's own work between frames
    # 25 periods: each sleep is shortened by the lateness before it, so nothing accumulates
    assert clock.now - started == pytest.approx(0.5 + 0.003 + 0.005)


def test_pacer_does_not_burst_after_a_stall() -> None:
    clock = FakeClock()
    pacer = Pacer(50.0, clock)
    pacer.wait()
    clock.advance(0.2)  # a stalled reader: ten periods missed
    slept_before = len(clock.slept)
    for _ in range(6):
        pacer.wait()
    # the first wait restarts the schedule from now; the next five keep the rate instead of catching up
    assert clock.slept[slept_before:] == pytest.approx([0.02] * 5)


def test_synthetic_source_satisfies_the_protocol() -> None:
    source = open_source("synthetic:carotid", 320, 180, 4.0)
    assert isinstance(source, FrameSource)
