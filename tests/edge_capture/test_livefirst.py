"""edge_capture.livefirst: the recorder waits for the live encoder's frame, briefly, and never when nobody is live."""

from __future__ import annotations

import threading

from edge_capture.livefirst import LiveEncoding, LiveFirst
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


def test_what_the_live_encoder_made_of_a_frame_is_kept_for_the_recorder_to_copy() -> None:
    gate = LiveFirst(keep=3)
    made = [LiveEncoding(bytes([i]), i == 0, 320, 240, 1_000_000, 1) for i in range(5)]
    for index in (0, 1, 3, 4, 5):  # frame 2 skipped (latest wins): nothing to copy for it
        gate.encoded(index, made[index] if index < 5 else None)
    assert gate.take(2) is None and gate.take(3) == made[3]
    assert gate.take(1) is None  # older than what was taken: forgotten
    assert gate.take(4) == made[4] and gate.take(5) is None
    gate.encoded(6, made[0])
    assert [gate.take(i) for i in (6, 6)] == [made[0], made[0]]
