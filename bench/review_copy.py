"""What a trainer's review copy costs: the wall time and CPU time to make the de-identified copy of one recording
segment (recordings/masked_video.py `write_review_copy`, as the server's review-copy worker runs it), from a
recording written the way the edge writes it (a synthetic scanner screen with a patient banner, H.264 + AAC voice).

    .venv/bin/python -m bench.review_copy                 # 60 s of 720p30 (≈ 1–2 min on the 2-core machine)
    .venv/bin/python -m bench.review_copy --seconds 10 --resolution 1080p

Prints one JSON object: the recording's length, the copy's wall seconds, the process's CPU seconds during it (user +
system, every thread: the encoder's and the decoder's included), the ratio to real time, and the banners found.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edge_capture.recording.mp4 import Mp4Writer, VideoSettings
from edge_capture.sources.synthetic import SyntheticSource
from recordings.masked_video import write_review_copy

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
FPS = 30
FRAME_PTS = 90_000 // FPS  # the edge's media clock


def write_recording(path: Path, width: int, height: int, seconds: float) -> None:
    """A segment as the edge records it: the screen (clock ticking, banner static) and a voice tone."""
    scanner = SyntheticSource("thyroid", width, height, FPS, cycle_seconds=2.0, paced=False, patient="MORGAN^ALEXA",
                              patient_id="PID-551937")  # fmt: skip
    writer = Mp4Writer(path, width, height, FPS, VideoSettings(preset="ultrafast"), audio=True)
    tone = (3000 * np.sin(np.arange(960) * 2 * np.pi * 440 / 48_000)).astype(np.int16)
    start = 1_780_000_000.0
    for n in range(round(seconds * FPS)):
        writer.write_video(cv2.cvtColor(scanner.render(n, start + n / FPS), cv2.COLOR_BGR2YUV_I420), n * FRAME_PTS)
        if n % 3 == 0:
            writer.write_voice(np.repeat(tone, 2), 1024 + n * 1600)
    writer.close()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--resolution", choices=sorted(SIZES), default="720p")
    args = parser.parse_args(argv)
    width, height = SIZES[args.resolution]
    with tempfile.TemporaryDirectory(prefix="review-copy-") as folder:
        source = Path(folder) / "media.mp4"
        write_recording(source, width, height, args.seconds)
        cpu, wall = cpu_seconds(), time.perf_counter()
        made = write_review_copy(source, Path(folder) / "review" / "media.mp4", lambda _: None)
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        report = {
            "recording_seconds": args.seconds,
            "resolution": f"{width}x{height}@{FPS}",
            "frames": made.video.frames,
            "wall_seconds": round(wall, 2),
            "cpu_seconds": round(cpu, 2),
            "times_real_time": round(args.seconds / wall, 2),
            "cores_busy": round(cpu / wall, 2),
            "banners": [[b.x, b.y, b.w, b.h] for b in made.banners],
            "voice_kept": made.audio,
            "source_mb": round(source.stat().st_size / 1e6, 1),
            "copy_mb": round((Path(folder) / "review" / "media.mp4").stat().st_size / 1e6, 1),
        }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
