"""The recorder: one thread per recorded consultation turns source frames into MP4 segments and timeline files.

Off the live path by construction: the thread reads the ring with its own cursor (its own small asyncio loop,
woken by the ring like any other consumer), encodes with libx264 on one core (PyAV releases the GIL while it
encodes), and writes the files. Nothing on the event loop or the capture thread ever waits for it: the loop
hands over voice frames and timeline events through thread-safe queues and returns at once.

It records every frame it can: each time it wakes it takes all frames newer than the last one it wrote that
are still in the ring and at most ``max_lag_seconds`` old, so a short stall costs no frame; when it falls
further behind it skips ahead to what the ring still holds, and counts the skipped frames
(``frames_dropped``) rather than stall anything or grow a queue.

One encode, two outputs: while the shared live encoder runs at or above the recording's quality floor
(``copy_min_bpp`` bits per pixel at the nominal frame rate at 720p, scaled to other sizes by the rate that keeps
the same picture quality: :meth:`RecorderSettings.copy_floor_bps`) and at the source's frame size, the recorder
writes the live encoder's bitstream (handed over through :class:`~edge_capture.livefirst.LiveFirst`) instead of
encoding the frame again: a copied segment, starting at a live keyframe (asked for). When the live rate drops below
the floor, the picture is scaled down, or nobody watches (the live encoder stops), it encodes the frames itself from
the next one on, in a new segment; back above the floor (by 10 %, or at the live encoder's full rate, and after
``min_segment_seconds``) it copies again from the next live keyframe, in a new segment. A recording starts with the
live video: frames captured before the live encoder's first usable keyframe are not recorded
(``frames_before_live``), for ``keyframe_wait_seconds`` at most, after which the recorder encodes (nobody came to
watch, or the live rate is under the floor). While copying, a frame the live encoder skipped is not recorded either
(``frames_not_live``).

Segments: ``media[.k].mp4`` with ``timeline[.k].jsonl`` (see :mod:`edge_capture.recording.spool`). Each has its
own media clock, t = 0 at its first frame. A new one starts when the picture size changes, the MP4 passes
``max_segment_bytes``, or the video switches between copied and encoded (or a copied stream's parameter sets
change); a new recorder for the same consultation (after an agent restart) continues the count.
Both files are sealed as they are written (AES-256-GCM records under the spool key, edge_capture/sealing/): the
recording is never in clear on the clinic PC's disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from edge_capture.errors import RingClosed
from edge_capture.frames import SourceFrame
from edge_capture.livefirst import LiveEncoding, LiveFirst
from edge_capture.recording.mp4 import AUDIO_RATE, Mp4Writer, VideoSettings, parameter_sets
from edge_capture.recording.spool import segment_files
from edge_capture.ring import FrameRing
from edge_capture.sealing.keys import Keyring
from edge_capture.sealing.sealed import SealedWriter
from recordings import timeline as tl
from recordings.private_files import private_dir

logger = logging.getLogger(__name__)

# What may wait for a stalled recorder thread (a disk that hangs) before more is dropped: 10 s of voice frames,
# and timeline events for minutes of an active session. Never unbounded.
MAX_QUEUED_VOICE = 500
MAX_QUEUED_EVENTS = 20_000
KEYFRAME_ASK_SECONDS = 5.0  # the recorder asks the live encoder for a keyframe to copy from at most this often
# The copy floor is set at 720p and scaled to other sizes by (pixels / 720p's) ** COPY_SIZE_EXPONENT: the live
# encoder's luma PSNR in the field of view of the synthetic thyroid and carotid is the same at 720p 4.1 Mb/s (the
# floor: 34.9 / 35.4 dB) and at 1080p 6.0 Mb/s (34.7 / 35.4 dB), a rate 2.25 ** 0.45 times as high
# (recordings/RECORDINGS.md §3).
REFERENCE_PIXELS = 1280 * 720
COPY_SIZE_EXPONENT = 0.45
# Back to copying after a fall to encoding: at least this far above the floor (no flapping at its edge), or the
# live encoder at its full configured rate (it cannot climb further, and may sit just above the floor).
COPY_AGAIN_MARGIN = 1.1


@dataclass(frozen=True)
class RecorderSettings:
    video: VideoSettings = field(default_factory=VideoSettings)
    fps: float = 30.0  # the source's nominal rate, for x264's rate control and the header
    audio: bool = True
    max_lag_seconds: float = 1.0
    max_segment_bytes: int = 8 << 30  # a long session stays one file (about 7 h of 720p at 2.5 Mb/s)
    sync_seconds: float = 2.0  # fsync the files this often (a killed process loses nothing written; a power cut)
    # The recorder thread's niceness. 0: a fair share (measured: it keeps every frame while another process
    # takes a core). Raise it (--recording-nice) on a machine too small for both, to let the live path win.
    nice: int = 0
    # Copy the live bitstream while its rate is at least this many bits per pixel per frame at 720p (0.15: 4.1 Mb/s
    # at 720p30), scaled to other sizes as the rate that keeps the same picture quality (COPY_SIZE_EXPONENT: 6.0 Mb/s
    # at 1080p30); None: always encode the recording separately.
    copy_min_bpp: float | None = 0.15
    min_segment_seconds: float = 10.0  # a segment lasts at least this long before the recorder goes back to copying
    keyframe_wait_seconds: float = 5.0  # how long a starting recording waits for the live video to start
    copy_wait_seconds: float = 0.5  # how long a frame waits for the live encoder while copying

    def copy_floor_bps(self, width: int, height: int) -> float | None:
        """The live rate below which the recording is encoded separately (None: never copied).

        ``copy_min_bpp`` bits per pixel at 720p; at another size the rate that keeps the same picture quality in
        the field of view, which grows with the pixel count to the power :data:`COPY_SIZE_EXPONENT`, not in
        proportion: a capture card's picture is the scanner's own image scaled to the video output, so a 1080p
        frame carries the same detail as a 720p one in 2.25 times the pixels (bench/copy_floor.py)."""
        if self.copy_min_bpp is None:
            return None
        size_factor = float((width * height / REFERENCE_PIXELS) ** COPY_SIZE_EXPONENT)
        return self.copy_min_bpp * REFERENCE_PIXELS * size_factor * self.fps


@dataclass(frozen=True)
class Segment:
    """A segment opened (``closed`` False) or closed: what the recorder tells its listener, on its thread."""

    number: int
    media: str
    timeline: str
    started_at_ms: float
    closed: bool = False
    frames: int = 0
    duration_seconds: float = 0.0


@dataclass(frozen=True)
class RecorderStats:
    frames_written: int
    frames_dropped: int
    voice_frames: int
    events: int
    segments: int
    running: bool
    frames_copied: int = 0  # of frames_written, copied from the live bitstream
    frames_not_live: int = 0  # skipped while copying: the live encoder skipped them too


SegmentListener = Callable[[Segment], None]


class _Open:
    """The segment being written: its MP4, its timeline file, its clock origin."""

    def __init__(self, info: Segment, writer: Mp4Writer, timeline: TextIO, origin_ns: int) -> None:
        self.info, self.writer, self.timeline, self.origin_ns = info, writer, timeline, origin_ns

    def t(self, stamp_ns: int) -> float:
        return max(0.0, (stamp_ns - self.origin_ns) / 1e9)


class Recorder:
    def __init__(
        self,
        ring: FrameRing,
        folder: Path,
        consultation_id: str,
        settings: RecorderSettings,
        first_segment: int = 0,
        on_segment: SegmentListener | None = None,
        live_first: LiveFirst | None = None,
        *,
        keys: Keyring,
    ) -> None:
        self.ring, self.folder, self.cid, self.settings = ring, folder, consultation_id, settings
        self.keys = keys
        self.live_first = live_first  # when given, each frame is encoded after the live encoder has it
        self._next_segment = first_segment
        self._on_segment = on_segment
        self._events: queue.SimpleQueue[tuple[int, tl.Event]] = queue.SimpleQueue()
        self._voice: queue.SimpleQueue[tuple[int, np.ndarray]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"recorder-{consultation_id}", daemon=True)
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._segment: _Open | None = None
        self._last_index: int | None = None
        self._last_sync = time.monotonic()
        self._stop_ns: int | None = None
        self.frames_written = self.frames_dropped = self.voice_frames = self.events = self.segments = 0
        self.frames_copied = self.frames_not_live = 0
        self._keyframe_asked: float | None = None  # monotonic time the recorder last asked the live encoder for one
        self._first_seen: float | None = None  # monotonic time the recorder saw its first frame
        self._link_lost = False  # a link-lost span is open (its start written, not its end)
        self.frames_before_live = 0  # not recorded: the recording waited for the live video to start
        self.voice_dropped = self.events_dropped = 0

    # ---- any thread -------------------------------------------------------------------------------------------

    def start(self) -> None:
        private_dir(self.folder)
        self._thread.start()

    def add_event(self, event: tl.Event, stamp_ns: int | None = None) -> None:
        """Queue a timeline event that happened at ``stamp_ns`` (monotonic; now if None). Never blocks."""
        if self._events.qsize() >= MAX_QUEUED_EVENTS:
            self.events_dropped += 1
            return
        self._events.put((time.monotonic_ns() if stamp_ns is None else stamp_ns, event))

    def add_voice(self, samples: np.ndarray, stamp_ns: int) -> None:
        """Queue s16 stereo voice whose first sample was heard at ``stamp_ns`` (monotonic). Never blocks."""
        if self._voice.qsize() >= MAX_QUEUED_VOICE:
            self.voice_dropped += 1
            return
        self._voice.put((stamp_ns, samples))

    @property
    def stats(self) -> RecorderStats:
        return RecorderStats(
            self.frames_written, self.frames_dropped, self.voice_frames, self.events, self.segments, self.running,
            self.frames_copied, self.frames_not_live,
        )  # fmt: skip

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 15.0) -> RecorderStats:
        """End the recording now: the frames captured until now are written (those still in the ring and within
        the lag), then the open segment is closed. Blocks (call it through to_thread)."""
        self._stop_ns = time.monotonic_ns()
        self._stopping.set()
        if self._thread.ident is not None and self._ready.wait(timeout):
            loop, task = self._loop, self._task
            if loop is not None and task is not None:
                try:
                    loop.call_soon_threadsafe(task.cancel)
                except RuntimeError:  # its loop has already ended
                    pass
            self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("recording %s: the recorder did not finish within %.0f s", self.cid, timeout)
        return self.stats

    # ---- the recorder thread ----------------------------------------------------------------------------------

    def _run(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            # SCHED_BATCH: the same share of the CPU, but the recorder never preempts a thread that just woke up,
            # so the live encoder, woken by the same frame, goes first (the live latency moves less)
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        if self.settings.nice:
            try:  # Linux schedules threads one by one: a nicer recorder yields to the live path when CPU is short
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.settings.nice)
            except (OSError, AttributeError):
                logger.info("recording %s: the recorder thread runs at normal priority", self.cid)
        try:
            asyncio.run(self._main())
        except Exception:  # a full disk, a broken encoder: the recording stops, the live session goes on
            logger.exception("recording %s: the recorder failed", self.cid)
        finally:
            self._ready.set()
        logger.info(
            "recording %s: recorder stopped: %s frames written, %s dropped, %s voice frames, %s events, %s segments",
            self.cid,
            self.frames_written,
            self.frames_dropped,
            self.voice_frames,
            self.events,
            self.segments,
        )

    async def _main(self) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        self._ready.set()
        try:
            while not self._stopping.is_set():
                newest = await self.ring.next_after(self._last_index)
                while not self._stopping.is_set() and (frame := self._next_frame(newest)) is not None:
                    self._write_frame(frame)
                    self._drain()
        except (asyncio.CancelledError, RingClosed):
            pass
        finally:
            try:
                self._catch_up()
            except Exception:
                logger.exception("recording %s: could not write the last frames", self.cid)
            self._drain()
            self._close_segment()

    def _catch_up(self) -> None:
        """On stop: write what was captured before the stop and is still in reach (a recorder a little behind)."""
        newest, stop_ns = self.ring.latest(), self._stop_ns
        while newest is not None and stop_ns is not None and (frame := self._next_frame(newest)) is not None:
            if frame.monotonic_ns > stop_ns:
                break
            self._write_frame(frame)

    def _next_frame(self, newest: SourceFrame) -> SourceFrame | None:
        """The oldest frame not yet written that is at most ``max_lag_seconds`` old (the newest one to start
        with, or when nothing is that recent any more); None when there is nothing new."""
        last = self._last_index
        recent = [f for f in self.ring.since(self.settings.max_lag_seconds) if last is None or f.index > last]
        if last is None:
            frame = recent[-1] if recent else newest
        elif recent:
            frame = recent[0]
        elif newest.index > last:
            frame = newest  # nothing that recent: go on from the newest
        else:
            return None
        if last is not None:
            self.frames_dropped += frame.index - last - 1
        self._last_index = frame.index
        return frame

    def _write_frame(self, frame: SourceFrame) -> None:
        live = self._live_encoding(frame)
        copy = self._copies(frame, live)
        if copy is None:
            return
        segment = self._segment
        new_parameters = copy and live is not None and live.keyframe and segment is not None
        if segment is not None and (
            (frame.width, frame.height) != (segment.writer.width, segment.writer.height)
            or segment.writer.bytes_written >= self.settings.max_segment_bytes
            or segment.writer.copied != copy
            or (new_parameters and live is not None and parameter_sets(live.data) != segment.writer.parameter_sets)
        ):
            self._drain()
            self._close_segment()
            segment = None
        if segment is None:
            segment = self._open_segment(frame, live.data if copy and live is not None else None)
        pts = (frame.monotonic_ns - segment.origin_ns) * 90_000 // 1_000_000_000
        if copy and live is not None:
            segment.writer.write_copied(live.data, pts, live.keyframe)
            self.frames_copied += 1
        else:
            segment.writer.write_video(frame.i420(), pts)
        self.frames_written += 1

    def _live_encoding(self, frame: SourceFrame) -> LiveEncoding | None:
        """What the live encoder made of ``frame``, waiting for it (as long as a copy needs, else briefly)."""
        live_first = self.live_first
        if live_first is None:
            return None
        # copying, or about to (the first segment, or a live keyframe asked for to copy from again): wait for the
        # live encoder as long as a copy needs, else briefly (a 1080p keyframe under load takes longer than that)
        copying = self._segment is None or self._segment.writer.copied or self._keyframe_asked is not None
        live_first.wait(frame.index, self.settings.copy_wait_seconds if copying else None)
        return live_first.take(frame.index)

    def _copies(self, frame: SourceFrame, live: LiveEncoding | None) -> bool | None:
        """Whether ``frame`` is copied from the live bitstream (True), encoded here (False) or not written (None)."""
        floor = self.settings.copy_floor_bps(frame.width, frame.height)
        if self.live_first is None or floor is None:
            return False
        usable = live is not None and (live.width, live.height) == (frame.width, frame.height)
        segment = self._segment
        if segment is not None and segment.writer.copied:
            if usable and live is not None and live.bitrate_bps >= floor:
                return True
            if live is None and not self.live_first.idle:
                self.frames_not_live += 1  # the live encoder skipped it (latest-frame-wins): so does the copy
                return None
            return False  # below the floor, another size, or nobody watching: encoded from here on
        now = time.monotonic()
        if segment is None and self._first_seen is None:
            self._first_seen = now
        starting = segment is None and self._first_seen is not None
        within_wait = starting and now - (self._first_seen or now) < self.settings.keyframe_wait_seconds
        if live is None and within_wait:
            self.frames_before_live += 1
            return None  # the first page's video is about to start: the recording starts with it
        if not usable or live is None or live.bitrate_bps < floor:
            if live is not None:
                self._keyframe_asked = None  # under the floor or another size: no copy to wait for
            return False
        at_full_rate = 0 < live.full_bitrate_bps <= live.bitrate_bps
        if segment is not None and live.bitrate_bps < floor * COPY_AGAIN_MARGIN and not at_full_rate:
            return False
        recent = segment is not None and segment.writer.duration_seconds < self.settings.min_segment_seconds
        if self.frames_copied and recent:
            return False  # fell back from copying not long ago: no flapping between the two
        if live.keyframe:
            self._keyframe_asked = None
            return True
        if self._keyframe_asked is None or now - self._keyframe_asked > KEYFRAME_ASK_SECONDS:
            self._keyframe_asked = now
            if self.live_first.ask_keyframe is not None:
                self.live_first.ask_keyframe()
        if within_wait:
            self.frames_before_live += 1
            return None  # the first frames wait for the keyframe the copy starts on
        return False

    def _open_segment(self, first: SourceFrame, copy_from: bytes | None = None) -> _Open:
        number = self._next_segment
        self._next_segment += 1
        media, timeline = segment_files(number)
        info = Segment(number, media, timeline, first.capture_time_ns / 1e6)
        self._tell(info)  # before the files exist: the uploader must never take a growing file for a whole one
        key = self.keys.current
        sink = SealedWriter(self.folder / media, key)
        try:
            writer = Mp4Writer(
                self.folder / media, first.width, first.height, self.settings.fps, self.settings.video,
                self.settings.audio, sink=sink, copy_from=copy_from,
            )  # fmt: skip
        except BaseException:
            sink.abandon()
            raise
        lines = io.TextIOWrapper(SealedWriter(self.folder / timeline, key), encoding="utf-8")  # closed at the end
        header = tl.Header(self.cid, info.started_at_ms, first.width, first.height, self.settings.fps, segment=number)
        lines.write(tl.encode(header) + "\n")
        if self._link_lost:  # the link is still down: the span goes on in this segment (from its start)
            lines.write(tl.encode(tl.LinkLost(0, "start")) + "\n")
        lines.flush()
        self._segment = _Open(info, writer, lines, first.monotonic_ns)
        self.segments += 1
        logger.info(
            "recording %s: segment %s started (%s×%s, video %s)",
            self.cid, media, first.width, first.height, "copied from the live encoder" if copy_from else "encoded",
        )  # fmt: skip
        return self._segment

    def _drain(self) -> None:
        """Write the queued voice and events into the open segment (kept queued until the first one opens)."""
        segment = self._segment
        if segment is None:
            return
        while True:
            try:
                stamp_ns, samples = self._voice.get_nowait()
            except queue.Empty:
                break
            if stamp_ns >= segment.origin_ns:  # voice from before the first frame: dropped
                pts = (stamp_ns - segment.origin_ns) * AUDIO_RATE // 1_000_000_000
                segment.writer.write_voice(samples, pts)
                self.voice_frames += 1
        while True:
            try:
                stamp_ns, event = self._events.get_nowait()
            except queue.Empty:
                break
            segment.timeline.write(tl.encode(dataclasses.replace(event, t=segment.t(stamp_ns))) + "\n")
            self.events += 1
            if isinstance(event, tl.LinkLost):
                self._link_lost = event.state == "start"
        segment.timeline.flush()  # whole lines reach the file together, for the uploader to send
        if time.monotonic() - self._last_sync >= self.settings.sync_seconds:
            self._last_sync = time.monotonic()
            segment.writer.flush_to_disk()
            os.fsync(segment.timeline.fileno())

    def _close_segment(self) -> None:
        segment, self._segment = self._segment, None
        if segment is None:
            return
        try:
            segment.writer.close()
        finally:
            segment.timeline.flush()
            os.fsync(segment.timeline.fileno())
            segment.timeline.close()
            writer = segment.writer
            closed = dataclasses.replace(
                segment.info, closed=True, frames=writer.frames, duration_seconds=writer.duration_seconds
            )
            logger.info(
                "recording %s: segment %s closed: %s frames, %.1f s",
                self.cid,
                closed.media,
                closed.frames,
                closed.duration_seconds,
            )
            self._tell(closed)

    def _tell(self, segment: Segment) -> None:
        if self._on_segment is not None:
            try:
                self._on_segment(segment)
            except Exception:
                logger.exception("recording %s: segment listener failed", self.cid)
