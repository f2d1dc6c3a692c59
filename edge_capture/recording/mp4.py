"""One recording segment as a fragmented MP4: H.264 video from source frames, AAC voice, written with PyAV.

Fragmented (``movflags=frag_keyframe+empty_moov+delay_moov+default_base_moof``): the file starts with ``ftyp``
and an empty ``moov`` (written with the first fragment) and then grows by one ``moof``+``mdat`` pair per keyframe
interval (~2 s); nothing already written is ever rewritten. So a killed agent leaves a file that plays up to its
last whole fragment, and the uploader can send the file while it grows. :func:`complete_prefix` finds where the
last whole fragment ends.

Video pts come from the frames' monotonic capture clock in 1/90000 s (variable frame rate: a dropped frame is
a longer frame, not a shifted picture). Voice arrives as 20 ms s16 stereo 48 kHz frames with a pts in samples on
the same media clock and is written as mono AAC; gaps are filled with silence and overlaps cut, so the AAC track
stays continuous.

A segment's video is either encoded here from source frames (:meth:`Mp4Writer.write_video`) or copied from the
live encoder's bitstream (``copy_from`` given, :meth:`Mp4Writer.write_copied`: one encode, two outputs). A copied
stream is what the pages got: Constrained Baseline, a keyframe when a page asked for one or every ~8 s (x264's
default interval), so its fragments are also cut every ``keyframe_seconds`` (``frag_duration``) and may start
between keyframes, which MP4 allows.

Not thread-safe: one recorder thread owns a writer. Every call blocks (PyAV releases the GIL while encoding).
"""

from __future__ import annotations

import fractions
import io
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

logger = logging.getLogger(__name__)

VIDEO_TIME_BASE = fractions.Fraction(1, 90_000)
AUDIO_RATE = 48_000
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE)
AAC_FRAME = 1024
# The AAC encoder's priming: its first packet comes 1024 samples before the first sample it was given. Voice
# starts no earlier than this, so no packet has a negative time: the muxer would otherwise shift every later
# picture of the fragmented file by 21 ms to make room (it cannot write an edit list into an empty moov).
AAC_PRIMING = 1024
MAX_SILENCE_FILL = 10 * AUDIO_RATE  # a longer gap in the voice is filled no further (the track then jumps)
# delay_moov: the (empty) moov is written with the first fragment, when every track's start is known, so its edit
# lists keep the voice and the pictures in step (x264's B-frame delay, a voice that starts late); with the moov
# written up front each track would simply start at 0.
MOVFLAGS = "frag_keyframe+empty_moov+delay_moov+default_base_moof"
Readable = BinaryIO | io.RawIOBase  # a seekable binary file: a plain one, or a sealed file's plaintext view


# Three B-frames always (no adaptive decision) and none of them a reference; macroblock-tree rate control over a
# 10-frame look-ahead (superfast turns it off; without it a picture that stops moving is refined over a dozen
# frames, which an offline scorer reads as motion). x264 spends far less time deciding, and an offline scorer that
# decodes only the reference frames (recordings/media.py) decodes one frame in four. bench/qc.py's `encoder` section
# compares it with stock x264 veryfast CRF 23 (the previous default) at 720p30: about half the CPU, the same luma
# PSNR and a smaller file (docs/SESSIONS.md has the figures).
RECORDING_X264 = "bframes=3:b-adapt=0:b-pyramid=none:mbtree=1:rc-lookahead=10"


@dataclass(frozen=True)
class VideoSettings:
    preset: str = "superfast"
    crf: int = 22
    x264_params: str = RECORDING_X264
    keyframe_seconds: float = 2.0
    threads: int = 1  # one core at most: the other is the live path's


class Mp4Writer:
    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        video: VideoSettings,
        audio: bool = True,
        sink: BinaryIO | io.BufferedIOBase | None = None,
        copy_from: bytes | None = None,
    ) -> None:
        self.path = path
        self.copied = copy_from is not None
        self.parameter_sets = parameter_sets(copy_from) if copy_from is not None else b""
        # PyAV writes through it; closed in close(). The recorder's is a SealedWriter (edge_capture/sealing/):
        # the segment is sealed as it is written, never in clear on the disk.
        self._out: BinaryIO | io.BufferedIOBase = sink if sink is not None else open(path, "wb")
        container_options = {"movflags": MOVFLAGS}
        if copy_from is not None:
            container_options["frag_duration"] = str(round(video.keyframe_seconds * 1_000_000))
        self._container = av.open(self._out, "w", format="mp4", options=container_options)
        if copy_from is not None:
            self._video = self._copied_stream(copy_from)
        else:
            gop = max(1, round(video.keyframe_seconds * fps))
            options = {"crf": str(video.crf), "preset": video.preset, "g": str(gop), "threads": str(video.threads)}
            if video.x264_params:
                options["x264-params"] = video.x264_params
            self._video = self._container.add_stream("libx264", rate=round(fps), options=options)
            self._video.width, self._video.height, self._video.pix_fmt = width, height, "yuv420p"
            self._video.codec_context.time_base = VIDEO_TIME_BASE  # not 1/fps: pts keep the capture clock's precision
        self._video.time_base = VIDEO_TIME_BASE
        self._audio: av.audio.stream.AudioStream | None = None
        self._resampler: av.AudioResampler | None = None
        if audio:
            self._open_audio()
        self.width, self.height = width, height
        self.frames = 0
        self.last_pts = -1
        self._audio_start: int | None = None  # pts (samples) of the first voice sample
        self._audio_in = 0  # samples taken, silence fills included
        self._audio_out = 0  # samples handed to the AAC encoder

    def _copied_stream(self, keyframe: bytes) -> av.video.stream.VideoStream:
        """A video stream described by the live encoder's first keyframe (its SPS and PPS become the avcC)."""
        with av.open(io.BytesIO(keyframe), "r", format="h264") as source:
            template = source.streams.video[0]
            stream = self._container.add_stream_from_template(template)
        assert isinstance(stream, av.video.stream.VideoStream)
        return stream

    def _open_audio(self) -> None:
        try:
            stream = self._container.add_stream("aac", rate=AUDIO_RATE)
            stream.layout = "mono"  # the voices are speech: one channel costs half the encoding (bench/qc.py)
            self._audio = stream
            self._resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE, frame_size=AAC_FRAME)
        except Exception:  # an FFmpeg without AAC: the recording goes on without voice
            logger.exception("recording %s: no AAC encoder; recording without voice", self.path)
            self._audio = None

    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    @property
    def bytes_written(self) -> int:
        return self._out.tell()

    @property
    def duration_seconds(self) -> float:
        return max(0, self.last_pts) / 90_000

    def write_video(self, i420: np.ndarray, pts: int) -> None:
        """One picture (yuv420p planes, H*3/2 × W) at ``pts`` (1/90000 s from the segment's first frame)."""
        pts = max(pts, self.last_pts + 1)  # x264 needs strictly increasing pts
        frame = av.VideoFrame.from_numpy_buffer(i420, format="yuv420p")  # no copy: x264 copies what it keeps
        frame.pts, frame.time_base = pts, VIDEO_TIME_BASE
        self._container.mux(self._video.encode(frame))
        self.frames += 1
        self.last_pts = pts

    def write_copied(self, access_unit: bytes, pts: int, keyframe: bool) -> None:
        """One picture as the live encoder made it (an Annex B access unit) at ``pts`` (1/90000 s)."""
        if not self.copied:
            raise ValueError("this segment encodes its own video")
        if self.frames == 0 and not keyframe:
            raise ValueError("a copied segment starts at a keyframe")
        pts = max(pts, self.last_pts + 1)
        packet = av.Packet(access_unit)
        packet.pts = packet.dts = pts  # the live stream has no B-frames: decode order is display order
        packet.time_base = VIDEO_TIME_BASE
        packet.is_keyframe = keyframe
        packet.stream = self._video
        self._container.mux(packet)
        self.frames += 1
        self.last_pts = pts

    def write_voice(self, samples: np.ndarray, pts: int) -> None:
        """Interleaved s16 stereo samples starting at ``pts`` (samples on the media clock)."""
        if self._audio is None:
            return
        stereo = samples.reshape(-1, 2)
        if self._audio_start is None:
            self._audio_start = max(AAC_PRIMING, pts)
        gap = pts - (self._audio_start + self._audio_in)
        if gap > 0:
            fill = min(gap, MAX_SILENCE_FILL)
            self._encode_voice(np.zeros((fill, 2), np.int16))
            self._audio_start += gap - fill  # past the fill the track jumps rather than hold minutes of silence
        elif gap < 0:
            stereo = stereo[-gap:]
        if len(stereo):
            self._encode_voice(stereo)

    def _encode_voice(self, stereo: np.ndarray) -> None:
        assert self._resampler is not None
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        self._audio_in += len(stereo)
        for chunk in self._resampler.resample(frame):
            self._mux_voice(chunk)

    def _mux_voice(self, chunk: av.AudioFrame | None) -> None:
        assert self._audio is not None and self._audio_start is not None
        if chunk is not None:
            chunk.pts, chunk.time_base = self._audio_start + self._audio_out, AUDIO_TIME_BASE
            self._audio_out += chunk.samples
        self._container.mux(self._audio.encode(chunk))

    def flush_to_disk(self) -> None:
        """Make what PyAV has written durable (the page cache already survives a killed process)."""
        self._out.flush()
        os.fsync(self._out.fileno())

    def close(self) -> None:
        """Flush the encoders, write the last fragment and the index (``mfra``), fsync, close."""
        try:
            if not self.copied:
                self._container.mux(self._video.encode(None))
            if self._audio is not None and self._resampler is not None and self._audio_start is not None:
                for chunk in self._resampler.resample(None):
                    self._mux_voice(chunk)
                self._mux_voice(None)
            self._container.close()
            self.flush_to_disk()
        finally:
            self._out.close()


def parameter_sets(access_unit: bytes) -> bytes:
    """The SPS and PPS NAL units (types 7 and 8) of an Annex B access unit, concatenated: two keyframes with the same
    parameter sets can follow each other in one MP4 track."""
    units = [unit.strip(b"\x00") for unit in access_unit.split(b"\x00\x00\x01")]
    return b"".join(unit for unit in units if unit and unit[0] & 0x1F in (7, 8))


def complete_prefix(media: Path | Readable, start: int = 0) -> int:
    """The end of the last whole top-level box that is not a ``moof`` (whose ``mdat`` may still be coming),
    scanning from ``start``, a box boundary. Bytes up to there never change and play on their own; a file
    without its ``moov`` yet has no such bytes (0). ``media``: a path, or a seekable binary file (a sealed
    file's plaintext view)."""
    if isinstance(media, Path):
        with open(media, "rb") as source:
            return complete_prefix(source, start)
    end, seen_moov = start, start > 0
    size = media.seek(0, os.SEEK_END)
    position = start
    while position + 8 <= size:
        media.seek(position)
        header = media.read(16)
        length, kind = struct.unpack(">I4s", header[:8])
        if length == 1 and len(header) == 16:
            length = struct.unpack(">Q", header[8:16])[0]
        elif length == 0:  # "to the end of the file": only ever the last box, and not ours
            break
        if length < 8 or position + length > size:
            break
        position += length
        seen_moov = seen_moov or kind == b"moov"
        if kind != b"moof":
            end = position
    return end if seen_moov else 0


def probe_duration(media: Path | Readable) -> float | None:
    """The playable length of an MP4 in seconds (None when it does not open); a path or a seekable binary file."""
    try:
        with av.open(str(media) if isinstance(media, Path) else media, "r") as container:
            stream = container.streams.video[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            return None if container.duration is None else container.duration / 1e6
    except (av.error.FFmpegError, IndexError):
        return None
