"""Two-way voice through the edge: every page's microphone in, to each page the mix of everyone else.

Each page's audio transceiver is sendrecv: the edge receives that page's voice (a *talker*) and sends back a
*listener* track carrying everyone else's voice (mix-minus: nobody hears their own echo). One clock, the
hub's, paces all listeners: every 20 ms it takes one frame from each talker's buffer, sums them, and hands
each listener the sum less its own voice.

Latency never grows: each talker's buffer holds at most ~100 ms (the oldest frame is dropped past that, and
counted), each listener's queue as much; a talker whose buffer is empty at a tick simply is not in that
frame's mix.

Sample format, matching aiortc's Opus codec on both ends: its decoder delivers packed ``s16`` *stereo*
48 kHz frames of 960 samples (20 ms), even from a mono browser microphone; its encoder takes ``s16`` mono
or stereo at any rate (it resamples to 48 kHz stereo itself). So the hub works in 960-sample s16 stereo
frames throughout, and anything else a talker track delivers is resampled to that first.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import math
from collections import deque
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import MediaStreamTrack, rtp
from aiortc.mediastreams import MediaStreamError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
CHANNELS = 2
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
MAX_BUFFERED_MS = 100
# When the event loop was stalled for longer than this, the hub skips the missed ticks instead of bursting.
MAX_LAG_SECONDS = 0.2


# aiortc's own, kept before use_fast_audio_level replaces it (the tests compare the two)
AIORTC_AUDIO_LEVEL = rtp.compute_audio_level_dbov
MIN_AUDIO_LEVEL_DBOV = -127


def audio_level_dbov(frame: av.AudioFrame) -> int:
    """The RFC 6465 audio level of an s16 frame exactly as aiortc computes it (the squares of every sample in the
    first plane over ``samples`` × full scale²), in numpy rather than a Python loop over each sample."""
    samples = np.frombuffer(memoryview(frame.planes[0]), np.int16).astype(np.float64)
    energy = float(np.dot(samples, samples))
    rms = math.sqrt(energy / (frame.samples * 32767 * 32767))
    if rms <= 0:
        return MIN_AUDIO_LEVEL_DBOV
    return round(min(0.0, max(float(MIN_AUDIO_LEVEL_DBOV), 20 * math.log10(rms))))


def use_fast_audio_level() -> None:
    """Make aiortc's senders use :func:`audio_level_dbov` (process-wide, idempotent).

    aiortc computes the level of every audio frame it sends (the ``ssrc-audio-level`` header extension) on the event
    loop, one sample at a time in Python: 1920 samples every 20 ms for each page, a few % of a core on the loop that
    also relays guidance. ``RTCRtpSender`` calls it as ``rtp.compute_audio_level_dbov``, so replacing that one name in
    ``aiortc.rtp`` is the narrowest seam; nothing else of aiortc changes.
    """
    rtp.compute_audio_level_dbov = audio_level_dbov


@dataclass
class _Talker:
    peer_id: str
    track: MediaStreamTrack
    frames: deque[np.ndarray]
    task: asyncio.Task[None] | None = None
    dropped: int = 0
    resampler: av.AudioResampler = field(
        default_factory=lambda: av.AudioResampler(
            format="s16", layout="stereo", rate=SAMPLE_RATE, frame_size=FRAME_SAMPLES
        )
    )


class ListenerTrack(MediaStreamTrack):
    """The audio one page hears: 20 ms s16 stereo 48 kHz frames of everyone else, paced by the hub."""

    kind = "audio"

    def __init__(self, hub: VoiceHub, peer_id: str, max_frames: int) -> None:
        super().__init__()
        self.peer_id = peer_id
        self.dropped = 0
        self._hub = hub
        self._queue: deque[tuple[int, np.ndarray]] = deque(maxlen=max_frames)
        self._ready = asyncio.Event()

    def _push(self, tick: int, samples: np.ndarray) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1  # the sender is not reading (not connected yet, or stalled)
        self._queue.append((tick, samples))
        self._ready.set()

    async def recv(self) -> av.AudioFrame:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        if self.readyState != "live":
            raise MediaStreamError
        tick, samples = self._queue.popleft()
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = tick * FRAME_SAMPLES  # gaps in the hub clock show as gaps in the RTP timestamps
        frame.time_base = TIME_BASE
        return frame

    def stop(self) -> None:
        super().stop()
        self._ready.set()
        self._hub._forget_listener(self)


class VoiceHub:
    """Mixes the voices of one consultation's peers; one per consultation on the edge."""

    def __init__(self, name: str = "", max_buffered_ms: int = MAX_BUFFERED_MS) -> None:
        self.name = name
        self._max_frames = max(1, max_buffered_ms * SAMPLE_RATE // 1000 // FRAME_SAMPLES)
        self._talkers: dict[str, _Talker] = {}
        self._listeners: dict[str, ListenerTrack] = {}
        self._clock: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- talkers ------------------------------------------------------------------------------------

    def add_talker(self, peer_id: str, track: MediaStreamTrack) -> None:
        """Start mixing ``track`` (a page's remote audio track) as ``peer_id``'s voice."""
        if self._closed:
            raise RuntimeError("voice hub is closed")
        previous = self._talkers.pop(peer_id, None)
        if previous is not None and previous.task is not None:
            self._retire(previous.task)
        talker = _Talker(peer_id, track, deque(maxlen=self._max_frames))
        talker.task = asyncio.ensure_future(self._consume(talker))
        self._talkers[peer_id] = talker
        logger.info("voice %s: talker %s added (%s talkers)", self.name, peer_id, len(self._talkers))

    async def _consume(self, talker: _Talker) -> None:
        try:
            while True:
                frame = await talker.track.recv()
                assert isinstance(frame, av.AudioFrame)
                for chunk in talker.resampler.resample(frame):
                    if len(talker.frames) == talker.frames.maxlen:
                        talker.dropped += 1
                    talker.frames.append(chunk.to_ndarray().reshape(-1))
        except MediaStreamError:
            logger.info("voice %s: talker %s ended", self.name, talker.peer_id)

    def buffered_ms(self, peer_id: str) -> float:
        """How much of ``peer_id``'s voice waits to be mixed."""
        talker = self._talkers.get(peer_id)
        return 0.0 if talker is None else len(talker.frames) * FRAME_SECONDS * 1000

    def dropped_frames(self, peer_id: str) -> int:
        """How many 20 ms frames of ``peer_id``'s voice were dropped to keep the latency bounded."""
        talker = self._talkers.get(peer_id)
        return 0 if talker is None else talker.dropped

    # -- listeners ----------------------------------------------------------------------------------

    def listener_track(self, peer_id: str) -> ListenerTrack:
        """The track to send to ``peer_id``: everyone's voice but theirs (silence when nobody talks)."""
        if self._closed:
            raise RuntimeError("voice hub is closed")
        previous = self._listeners.get(peer_id)
        if previous is not None:
            previous.stop()
        listener = ListenerTrack(self, peer_id, self._max_frames)
        self._listeners[peer_id] = listener
        if self._clock is None:
            self._clock = asyncio.ensure_future(self._run_clock())
        return listener

    def _forget_listener(self, listener: ListenerTrack) -> None:
        if self._listeners.get(listener.peer_id) is listener:
            del self._listeners[listener.peer_id]

    # -- the mixing clock ---------------------------------------------------------------------------

    async def _run_clock(self) -> None:
        loop = asyncio.get_running_loop()
        start, tick = loop.time(), 0
        while True:
            tick += 1
            delay = start + tick * FRAME_SECONDS - loop.time()
            if delay < -MAX_LAG_SECONDS:
                logger.warning("voice %s: clock %.0f ms late; skipping ahead", self.name, -delay * 1000)
                start = loop.time() - tick * FRAME_SECONDS
                delay = 0
            await asyncio.sleep(max(0.0, delay))
            self._mix(tick)

    def _mix(self, tick: int) -> None:
        voices = {pid: t.frames.popleft() for pid, t in self._talkers.items() if t.frames}
        total = np.zeros(FRAME_SAMPLES * CHANNELS, np.int32)
        for samples in voices.values():
            total += samples
        for peer_id, listener in list(self._listeners.items()):
            own = voices.get(peer_id)
            mix = total - own if own is not None else total
            listener._push(tick, np.clip(mix, -32768, 32767).astype(np.int16))

    # -- lifetime -----------------------------------------------------------------------------------

    def remove(self, peer_id: str) -> None:
        """Forget ``peer_id``: stop mixing its voice and end its listener track."""
        talker = self._talkers.pop(peer_id, None)
        if talker is not None and talker.task is not None:
            self._retire(talker.task)
        listener = self._listeners.get(peer_id)
        if listener is not None:
            listener.stop()
        if talker is not None or listener is not None:
            logger.info("voice %s: peer %s removed", self.name, peer_id)

    def close(self) -> None:
        """End every listener and stop consuming every talker. Idempotent; see :meth:`wait_closed`."""
        if self._closed:
            return
        self._closed = True
        for peer_id in set(self._talkers) | set(self._listeners):
            self.remove(peer_id)
        if self._clock is not None:
            self._retire(self._clock)
        logger.info("voice %s: closed", self.name)

    async def wait_closed(self) -> None:
        """Wait until every task the hub cancelled has finished."""
        await asyncio.gather(*self._retiring, return_exceptions=True)

    def _retire(self, task: asyncio.Task[None]) -> None:
        task.cancel()
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
