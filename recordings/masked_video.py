"""A recording's video with its burned-in banner blacked out in every frame (docs/SESSIONS.md, docs/SECURITY.md §2).

Two users: the teaching export (recordings/teaching.py), which re-encodes each segment without its voice, and the
server's **review copy** of a segment for readers who see recordings de-identified (trainers), which keeps the
voice track as it is (its AAC packets copied, not re-encoded: the review is about what was said). Both find the
banner once per segment with :func:`recordings.deidentify.find_banners` on :data:`SAMPLE_FRAMES` frames spread
over the segment (static text is static for the whole segment: the scanner draws it until the patient changes,
and the edge starts a segment per consultation), then decode every frame, black the banner out and encode H.264
(yuv420p) at the same size, rate and timestamps, so the timeline still lines up.

Everything here blocks (decoding, encoding, disk): the server runs it in a thread, and `step`/`progress` callbacks
may raise to stop the work. Errors are recordings.errors: ``not_renderable`` (media that cannot be decoded).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from qc.fov import Box
from recordings import errors
from recordings.deidentify import find_banners
from recordings.private_files import FILE_MODE, make_private_dirs

log = logging.getLogger(__name__)

SAMPLE_FRAMES = 24  # frames find_banners compares per segment
CRF = 20  # a second generation of a CRF 23 recording: a little better, so that teaching loses little more
PRESET = "veryfast"
THREADS = 1  # one core: the server's other work keeps the other
KEYFRAME_SECONDS = 2.0
PROGRESS_EVERY = 30  # frames between progress reports


@dataclass(frozen=True)
class VideoReport:
    width: int
    height: int
    fps: float
    frames: int
    duration_s: float

    def as_fields(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class MaskedMedia:
    """What :func:`mask_media` made: the video's figures and the banners it blacked out (none found: [])."""

    video: VideoReport
    banners: tuple[Box, ...]
    audio: bool  # the voice track was kept


def open_video(path: Path) -> tuple[av.container.InputContainer, av.VideoStream]:
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise errors.NotRenderable(f"{path.name} is not a readable video: {exc}") from None
    if not container.streams.video:
        container.close()
        raise errors.NotRenderable(f"{path.name} holds no video")
    return container, container.streams.video[0]


def count_frames(path: Path) -> int:
    """The video's frames, by demuxing alone (a fragmented MP4 may not say in its header)."""
    container, stream = open_video(path)
    with container:
        return sum(1 for packet in container.demux(stream) if packet.size)


def sample_frames(path: Path, count: int = SAMPLE_FRAMES) -> list[np.ndarray]:
    """About `count` frames (BGR) spread over the whole video: its keyframes when it has enough (one seek and
    one decode each), else every n-th frame of a full decode."""
    container, stream = open_video(path)
    with container:
        packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.size]
        keys = [pts for pts, key in packets if key and pts is not None]
        found: list[np.ndarray] = []
        try:
            if len(keys) >= count:
                for pick in spread(len(keys), count):
                    container.seek(keys[pick], stream=stream, backward=True)
                    found.append(next(container.decode(stream)).to_ndarray(format="bgr24"))
            else:
                container.seek(0, stream=stream, backward=True)
                picks = set(spread(len(packets), count))
                for index, frame in enumerate(container.decode(stream)):
                    if index in picks:
                        found.append(frame.to_ndarray(format="bgr24"))
        except (av.FFmpegError, StopIteration) as exc:
            raise errors.NotRenderable(f"{path.name} cannot be decoded: {exc}") from None
    if len(found) < 2:
        raise errors.NotRenderable(f"{path.name} has fewer than two frames to compare")
    return found


def spread(total: int, count: int) -> list[int]:
    """Up to `count` indexes from 0 to total - 1, evenly spread, first and last included."""
    if total <= 0:
        return []
    return sorted({round(k * (total - 1) / max(1, count - 1)) for k in range(count)})


def mask_media(src: Path, dest: Path, step: Callable[[int], None], *, keep_audio: bool = False) -> MaskedMedia:
    """Find the banners of `src` and write `dest` with them black in every frame (:func:`reencode`)."""
    banners = tuple(find_banners(sample_frames(src)))
    video, audio = reencode(src, dest, banners, step, keep_audio=keep_audio)
    return MaskedMedia(video, banners, audio)


def reencode(
    src: Path, dest: Path, banners: Sequence[Box], step: Callable[[int], None], *, keep_audio: bool = False
) -> tuple[VideoReport, bool]:
    """Every frame of `src`, the banners black, H.264 into `dest` with the same size, rate and timestamps; with
    `keep_audio` the first audio track is copied packet for packet. (report, whether audio was copied)"""
    container, stream = open_video(src)
    audio = container.streams.audio[0] if keep_audio and container.streams.audio else None
    with container, av.open(str(dest), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream.codec_context.thread_count = THREADS
        width, height = stream.codec_context.width, stream.codec_context.height
        if width % 2 or height % 2:
            raise errors.NotRenderable(f"{src.name} is {width}×{height}: H.264 4:2:0 needs an even size")
        rate = stream.average_rate or stream.guessed_rate or Fraction(30)
        gop = max(1, round(KEYFRAME_SECONDS * float(rate)))
        options = {"crf": str(CRF), "preset": PRESET, "g": str(gop), "threads": str(THREADS)}
        video = out.add_stream("libx264", rate=rate, options=options)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        time_base = stream.time_base or Fraction(1, 90_000)
        video.time_base = time_base
        video.codec_context.time_base = time_base
        audio_out = out.add_stream_from_template(audio) if audio is not None else None
        frames, last_pts, first_time, last_time = 0, -1, None, 0.0
        try:
            for packet in container.demux(*(s for s in (stream, audio) if s is not None)):
                if packet.stream is not stream:
                    if packet.dts is not None and audio_out is not None:  # not the demuxer's closing empty packet
                        packet.stream = audio_out
                        out.mux(packet)
                    continue
                for frame in packet.decode():
                    if not isinstance(frame, av.VideoFrame):
                        continue
                    if (frame.width, frame.height) != (width, height):
                        raise errors.NotRenderable(f"{src.name} changes picture size at frame {frames}")
                    pts = frame.pts if frame.pts is not None else round(frames / rate / time_base)
                    pts = max(pts, last_pts + 1)  # x264 wants strictly increasing timestamps
                    masked = mask_video_frame(frame, banners)
                    masked.pts, masked.time_base = pts, time_base
                    out.mux(video.encode(masked))
                    frames, last_pts = frames + 1, pts
                    seconds = float(pts * time_base)
                    first_time = seconds if first_time is None else first_time
                    last_time = seconds
                    if frames % PROGRESS_EVERY == 0:
                        step(frames)
            out.mux(video.encode(None))
        except av.FFmpegError as exc:
            raise errors.NotRenderable(f"{src.name} cannot be decoded: {exc}") from None
    step(frames)
    duration = last_time - (first_time or 0.0) + (1 / float(rate) if frames else 0.0)
    return VideoReport(width, height, round(float(rate), 3), frames, round(duration, 3)), audio is not None


def mask_video_frame(frame: av.VideoFrame, banners: Sequence[Box]) -> av.VideoFrame:
    """A yuv420p copy of `frame` with every box black (luma at the frame's black level, chroma neutral). Chroma
    rows and columns are rounded outwards: half a chroma sample of the box's edge is blackened with it."""
    source = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
    planes = source.to_ndarray()  # a copy: the decoder's own buffers may be reference pictures
    height, width = source.height, source.width
    luma = planes[:height]
    chroma = planes[height:].reshape(2, height // 2, width // 2)
    black = 0 if source.color_range == 2 else 16
    for box in banners:
        luma[box.slices] = black
        rows = slice(box.y // 2, -(-(box.y + box.h) // 2))
        columns = slice(box.x // 2, -(-(box.x + box.w) // 2))
        chroma[:, rows, columns] = 128
    masked = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    masked.color_range = source.color_range
    return masked


def write_review_copy(src: Path, dest: Path, progress: Callable[[float], None]) -> MaskedMedia:
    """The review copy of one segment's media: :func:`mask_media` with the voice kept, written beside `dest` and
    renamed onto it once whole (a reader finds the whole copy or none), 0600 in a 0700 folder. `progress(fraction)`
    may raise to stop; on any failure nothing is left at `dest` or beside it."""
    make_private_dirs(dest.parent)
    partial = dest.with_name(f".{dest.name}.part")
    total = max(1, count_frames(src))
    try:
        made = mask_media(src, partial, lambda frames: progress(min(1.0, frames / total)), keep_audio=True)
        os.chmod(partial, FILE_MODE)  # PyAV made the file with the process's umask
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    log.info("review copy %s: %s frames, banners %s", dest, made.video.frames, list(made.banners))
    return made
