"""edge_capture.livefirst: the recorder waits for the live encoder's frame, briefly, and never when nobody is live."""

from __future__ import annotations

import threading

from edge_capture.livefirst import LiveFirst
from tests.clocks import FakeClock
from tests.waiting import wait_until


def test_nobody_live_means_no_wait() -> None:
    gate = LiveFirst(timeout=60.0)  # a wait would hold this test for a minute
    assert gate.wait(5) is False
    assert gate.waits == 0 and gate.timeouts == 0


def test_the_recorder_goes_once_the_live_encoder_has_the_frame() -> None:
    gate = LiveFirst(timeout=60.0)
    gate.encoded(1)
    assert gate.wait(0) and gate.wait(1)  # already passed: no wait
    assert gate.waits == 0
    passed: list[bool] = []
    recorder = threading.Thread(target=lambda: passed.append(gate.wait(2)))
    recorder.start()
    assert wait_until(lambda: gate.waits == 1)  # the recorder is waiting for frame 2
    assert passed == []
    gate.encoded(3)  # the live encoder skipped frame 2 (latest wins)
    recorder.join(60)
    assert passed == [True] and gate.waits == 1 and gate.timeouts == 0


def test_a_stuck_live_encoder_holds_the_recorder_back_only_for_the_timeout() -> None:
    gate = LiveFirst(timeout=0.05)
    gate.encoded(1)
    assert gate.wait(2) is False  # returns (rather than wait for a frame that never comes)
    assert gate.waits == 1 and gate.timeouts == 1


def test_a_live_encoder_gone_idle_holds_nobody_back() -> None:
    clock = FakeClock()
    gate = LiveFirst(timeout=60.0, idle_seconds=1.0, clock=clock)
    gate.encoded(1)
    clock.advance(1.5)  # the live encoder stopped (its last page left): the recorder goes on alone
    assert gate.wait(2) is False and gate.waits == 0
