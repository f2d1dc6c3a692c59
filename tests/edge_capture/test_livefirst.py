"""edge_capture.livefirst: the recorder waits for the live encoder's frame, briefly, and never when nobody is live."""

from __future__ import annotations

import threading
import time

from edge_capture.livefirst import LiveFirst


def test_nobody_live_means_no_wait() -> None:
    gate = LiveFirst(timeout=1.0)
    started = time.monotonic()
    assert gate.wait(5) is False
    assert time.monotonic() - started < 0.05 and gate.waits == 0


def test_the_recorder_goes_once_the_live_encoder_has_the_frame() -> None:
    gate = LiveFirst(timeout=2.0)
    gate.encoded(1)
    assert gate.wait(0) and gate.wait(1)  # already passed: no wait
    timer = threading.Timer(0.1, gate.encoded, args=(3,))  # the live encoder skipped frame 2 (latest wins)
    started = time.monotonic()
    timer.start()
    assert gate.wait(2) is True
    waited = time.monotonic() - started
    assert 0.08 < waited < 1.0 and gate.waits == 1 and gate.timeouts == 0


def test_a_stuck_live_encoder_holds_the_recorder_back_only_for_the_timeout() -> None:
    gate = LiveFirst(timeout=0.05)
    gate.encoded(1)
    started = time.monotonic()
    assert gate.wait(2) is False
    assert 0.04 < time.monotonic() - started < 0.5 and gate.timeouts == 1
    time.sleep(0.01)
    later = LiveFirst(timeout=0.05, idle_seconds=0.02)
    later.encoded(1)
    time.sleep(0.05)  # the live encoder stopped (its last page left): the recorder goes on alone
    assert later.wait(2) is False and later.waits == 0
