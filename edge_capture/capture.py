"""The capture thread: the only place that reads the source, stamps frames and fills the ring.
(Stills and clips for the server are captures.py, what they share, and capture_commands.py, each command.)

All blocking work (a device read, a file decode, a synthetic source's pacing sleep) happens here, on a
daemon thread, so no asyncio loop ever waits on the capture card. Both clocks are stamped right after
`read()` returns: that is the moment the picture exists on this machine, the start of glass-to-glass
latency. Indexes are gap-free here; gaps seen downstream are skips by slow consumers.

A `SourceError` (a card unplugged, a decode error) is logged and retried with exponential backoff, since
capture cards come back; `read()` returning None (a non-looping file at its end) ends the run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from edge_capture.errors import RingClosed, SourceError
from edge_capture.frames import SourceFrame
from edge_capture.ring import FrameRing
from edge_capture.sources.base import FrameSource

logger = logging.getLogger(__name__)

FPS_WINDOW_NS = 1_000_000_000


@dataclass(frozen=True)
class CaptureStats:
    frames_captured: int
    fps: float  # measured over the last second
    read_errors: int
    running: bool
    last_error: str | None


class CaptureThread:
    """Loops `source.read()` → `SourceFrame` → `ring.put` until stopped, the source ends or the ring
    closes. Call `stop()` from async code through `asyncio.to_thread`: it joins."""

    def __init__(
        self,
        source: FrameSource,
        ring: FrameRing,
        name: str = "capture",
        *,
        backoff_initial: float = 0.1,
        backoff_max: float = 2.0,
    ) -> None:
        self.source = source
        self.ring = ring
        self.name = name
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._lock = threading.Lock()
        self._recent_ns: deque[int] = deque()
        self._frames_captured = 0
        self._read_errors = 0
        self._last_error: str | None = None
        self._source_closed = False

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the loop to end, wait up to `timeout` s, close the source. True if the thread ended.

        The source is closed by the capture thread itself once its last `read()` returned (a device
        must not be released under a blocked read); if the thread never ran it is closed here."""
        self._stopping.set()
        if self._thread.ident is None:
            self._close_source()
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("%s: capture thread still blocked in read() after %.1f s", self.name, timeout)
            return False
        return True

    def stats(self) -> CaptureStats:
        cutoff_ns = time.monotonic_ns() - FPS_WINDOW_NS
        with self._lock:
            recent = [t for t in self._recent_ns if t >= cutoff_ns]
            fps = (len(recent) - 1) * 1e9 / (recent[-1] - recent[0]) if len(recent) > 1 else 0.0
            return CaptureStats(self._frames_captured, fps, self._read_errors, self.running, self._last_error)

    def _run(self) -> None:
        latest = self.ring.latest()
        index = 0 if latest is None else latest.index + 1
        backoff = self.backoff_initial
        logger.info("%s: capture started at index %s", self.name, index)
        try:
            while not self._stopping.is_set():
                try:
                    image = self.source.read()
                except SourceError as exc:
                    self._record_error(exc)
                    logger.warning("%s: read failed (%s), retrying in %.1f s", self.name, exc, backoff)
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, self.backoff_max)
                    continue
                capture_time_ns, monotonic_ns = time.time_ns(), time.monotonic_ns()
                if image is None:
                    logger.info("%s: source ended after %s frames", self.name, self._frames_captured)
                    break
                self.ring.put(SourceFrame(index, capture_time_ns, monotonic_ns, image))
                self._record_frame(monotonic_ns)
                index += 1
                backoff = self.backoff_initial
        except RingClosed:
            logger.info("%s: ring closed, capture ends", self.name)
        except Exception:
            logger.exception("%s: capture failed", self.name)
            with self._lock:
                self._last_error = "capture failed (see log)"
        finally:
            self._close_source()
            logger.info(
                "%s: capture stopped after %s frames, %s read errors",
                self.name,
                self._frames_captured,
                self._read_errors,
            )

    def _record_frame(self, monotonic_ns: int) -> None:
        with self._lock:
            self._frames_captured += 1
            recent = self._recent_ns
            recent.append(monotonic_ns)
            while recent[0] < monotonic_ns - FPS_WINDOW_NS:
                recent.popleft()

    def _record_error(self, exc: SourceError) -> None:
        with self._lock:
            self._read_errors += 1
            self._last_error = f"{exc.code}: {exc.message}"

    def _close_source(self) -> None:
        with self._lock:
            if self._source_closed:
                return
            self._source_closed = True
        try:
            self.source.close()
        except Exception:
            logger.exception("%s: closing the source failed", self.name)
