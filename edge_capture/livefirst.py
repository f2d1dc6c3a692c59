"""Live first: the recorder encodes a frame only once the live encoder has encoded it.

At every captured frame two encoders want the CPU at the same instant: the live one (a page waits for its
packets) and the recorder's (nobody waits for it). On an edge with two cores that also runs the sonographer's
browser, letting them race moved the live glass-to-glass latency by 10–20 ms (bench/qc.py --edge). Lowering the
recorder's priority would need the privilege to raise it again when it falls behind; this handshake needs none:
the shared live encoder calls :meth:`LiveFirst.encoded` after each frame, and the recorder's thread calls
:meth:`LiveFirst.wait` before encoding frame ``index``. The wait ends when the live encoder has passed that frame,
after ``timeout`` seconds at most (a live encoder stuck or slow never holds the recording back for long), and at
once when no live encoder has encoded anything for ``idle_seconds`` (nobody is watching). Thread-safe.

One encode, two outputs: the live encoder also hands over what it made of each frame (:class:`LiveEncoding`, the
H.264 access unit), kept for the last ``keep`` frames, so that the recorder can write the live bitstream into the
recording instead of encoding the frame a second time (:meth:`LiveFirst.take`; the recorder decides when the live
rate is good enough, edge_capture/recording/recorder.py). ``ask_keyframe``, when set, is how the recorder asks the
live encoder for a keyframe to start a copied segment on (thread-safe on the caller's side).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

TIMEOUT_SECONDS = 0.025  # under a frame interval at 30 fps: the recorder never falls a whole frame behind for it
IDLE_SECONDS = 1.0
KEEP_FRAMES = 64  # ~2 s at 30 fps: more than the recorder may lag behind (max_lag_seconds) before it skips ahead


@dataclass(frozen=True)
class LiveEncoding:
    """One frame as the live encoder made it: an H.264 access unit (Annex B) and what it was made with."""

    data: bytes
    keyframe: bool
    width: int
    height: int
    bitrate_bps: int  # the rate the live encoder ran at for this frame
    context: int  # which libx264 context: a new one starts at a keyframe and may bring new parameter sets
    full_bitrate_bps: int = 0  # the live encoder's configured rate, the most it runs at (0: unknown)


class LiveFirst:
    def __init__(
        self,
        timeout: float = TIMEOUT_SECONDS,
        idle_seconds: float = IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,  # for idleness only; the wait itself is on the real clock
        keep: int = KEEP_FRAMES,
    ) -> None:
        self.timeout = timeout
        self.keep = keep
        self.ask_keyframe: Callable[[], None] | None = None
        self._encodings: OrderedDict[int, LiveEncoding] = OrderedDict()
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._condition = threading.Condition()
        self._done = -1
        self._last = float("-inf")  # monotonic time of the last live encode
        self.waits = self.timeouts = 0

    def encoded(self, index: int, encoding: LiveEncoding | None = None) -> None:
        """The live encoder is done with the ring's frame ``index`` (and every one before it), and made ``encoding``
        of it (None: nothing the recorder can use)."""
        with self._condition:
            if encoding is not None:
                self._encodings[index] = encoding
                while len(self._encodings) > self.keep:
                    self._encodings.popitem(last=False)
            self._done = max(self._done, index)
            self._last = self._clock()
            self._condition.notify_all()

    def wait(self, index: int, timeout: float | None = None) -> bool:
        """Block until the live encoder has passed frame ``index`` (``timeout`` s at most, the default if None); False
        when it timed out or nobody is live."""
        with self._condition:
            if self._done >= index:
                return True
            if self._clock() - self._last > self.idle_seconds:
                return False
            self.waits += 1
            passed = self._condition.wait_for(lambda: self._done >= index, self.timeout if timeout is None else timeout)
            if not passed:
                self.timeouts += 1
            return passed

    def take(self, index: int) -> LiveEncoding | None:
        """What the live encoder made of frame ``index`` (None: it skipped the frame, or has not reached it, or it is
        too old); the frames before it are forgotten."""
        with self._condition:
            while self._encodings and next(iter(self._encodings)) < index:
                self._encodings.popitem(last=False)
            return self._encodings.get(index)

    @property
    def idle(self) -> bool:
        """No live encode for ``idle_seconds``: nobody is watching."""
        with self._condition:
            return self._clock() - self._last > self.idle_seconds
