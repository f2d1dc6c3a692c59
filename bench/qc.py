"""QC bench: what the quality-control numerics cost, beside a bare numpy/OpenCV baseline measured in the same run.

    python -m bench.qc [--seconds 20] [--frames 600] [--rounds 5]

per_frame: the per-frame metric set of qc.frame (grey field of view at half scale: histogram metrics, TGC,
Tenengrad, Laplacian variance, no-contact gate) plus the freeze comparison of consecutive thumbnails, on 720p
frames of the synthetic thyroid scanner, pinned to one core with OpenCV single-threaded (target ≥ 200 frames/s).
live_sample: one sample of the live adapter (qc.live.LiveQc.process: the field-of-view bookkeeping on top).
baseline: cv2.cvtColor(BGR → grey) + a mean over the same frames, the least any per-frame check costs.
Rounds alternate baseline and QC, and the median round is reported, so load from other processes hits both.

offline: qc.offline.analyse of a 720p synthetic H.264 MP4 (written here with PyAV as the edge's recorder writes:
libx264 veryfast, CRF 23, a keyframe every 2 s), every core allowed, as a multiple of real time (target ≥ 20×):
by default (reference frames decoded, qc.media), with every frame decoded (--all-frames) and with deblocking
skipped (--fast-decode); beside the floors: the same file only decoded by PyAV, every frame and reference frames
only, which bound what any scorer can reach on this machine. `other_processes_cores` is the CPU the rest of the
host used meanwhile (a shared machine moves the wall-clock figures); `realtime_per_cpu_second` does not move
with it: media seconds per CPU second this process spent.

The edge's CPU with recording on and off is measured by the recording bench, not here.
Prints one JSON report and writes it to bench/out/qc-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from bench import procs
from edge_capture.frames import SourceFrame
from edge_capture.ring import FrameRing
from edge_capture.sources.synthetic import SyntheticSource
from qc.fov import best_fov
from qc.frame import THUMB_STRIDE, FrameAnalyser, to_grey
from qc.live import LiveQc
from qc.media import open_media
from qc.offline import analyse

OUT_DIR = Path(__file__).resolve().parent / "out"
TARGET_FPS = 200.0
TARGET_REALTIME = 20.0
CLOCK = 1_780_000_000.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rate(work: Callable[[np.ndarray], object], frames: list[np.ndarray], count: int) -> float:
    """Frames per second of `work` over `count` frames cycling through `frames`."""
    started = time.perf_counter()
    for k in range(count):
        work(frames[k % len(frames)])
    return count / (time.perf_counter() - started)


def per_frame(source: SyntheticSource, count: int, rounds: int) -> dict[str, Any]:
    frames = [source.render(k, CLOCK + k / 30) for k in range(source.cycle_frames)]
    thumbs = [to_grey(np.ascontiguousarray(f[::THUMB_STRIDE, ::THUMB_STRIDE])) for f in frames[::3]]
    mask, how = best_fov(frames[0].shape[:2], thumbs)
    analyser = FrameAnalyser(mask)
    previous = [analyser.thumbnail(frames[0])]

    def qc(image: np.ndarray) -> object:
        thumb = analyser.thumbnail(image)
        difference = analyser.difference(previous[0], thumb)
        previous[0] = thumb
        return analyser.measure(image), difference

    def baseline(image: np.ndarray) -> object:
        return float(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).mean())

    live = LiveQc(FrameRing())
    counter = iter(range(10**9))

    def live_sample(image: np.ndarray) -> object:
        k = next(counter)  # samples 0.2 s apart, as the adapter takes them
        return live.process(SourceFrame(k, int((CLOCK + k / 5) * 1e9), k * 200_000_000, image))

    for work in (qc, baseline, live_sample):  # warm up caches and lazy imports
        rate(work, frames, 20)
    results: dict[str, list[float]] = {"baseline": [], "per_frame": [], "live_sample": []}
    for _ in range(rounds):
        results["baseline"].append(rate(baseline, frames, count))
        results["per_frame"].append(rate(qc, frames, count))
        results["live_sample"].append(rate(live_sample, frames, max(50, count // 4)))
    medians = {name: round(statistics.median(values), 1) for name, values in results.items()}
    return {
        "frame": [source.width, source.height],
        "fov": {"how": how, "box": [analyser.box.x, analyser.box.y, analyser.box.w, analyser.box.h]},
        "fps": medians,
        "fps_rounds": {name: [round(v, 1) for v in values] for name, values in results.items()},
        "qc_vs_baseline": round(medians["baseline"] / medians["per_frame"], 2),
    }


def write_clip(source: SyntheticSource, path: Path, seconds: float) -> None:
    """As the edge's recorder writes (edge_capture/recording/mp4.py): x264 veryfast, CRF 23, a keyframe every 2 s."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"preset": "veryfast", "crf": "23", "g": "60"})
        stream.width, stream.height, stream.pix_fmt = source.width, source.height, "yuv420p"
        for k in range(round(seconds * 30)):
            frame = av.VideoFrame.from_ndarray(source.render(k, CLOCK + k / 30), format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def decode_seconds(path: Path, reference_only: bool) -> float:
    """Seconds to decode the file with PyAV and nothing else (every frame, or the reference frames only)."""
    started = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if reference_only:
            stream.codec_context.skip_frame = "NONREF"
        for frame in container.decode(stream):
            np.frombuffer(memoryview(frame.planes[0]), np.uint8)
    return time.perf_counter() - started


def offline(source: SyntheticSource, seconds: float, rounds: int) -> dict[str, Any]:
    variants: dict[str, dict[str, bool]] = {
        "default": {},
        "all_frames": {"all_frames": True},
        "fast_decode": {"fast": True},
    }
    timings: dict[str, list[float]] = {name: [] for name in [*variants, "floor_every_frame", "floor_reference"]}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    reports: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-qc-") as folder:
        path = Path(folder) / "clip.mp4"
        log(f"offline: writing a {seconds:g} s 720p MP4")
        write_clip(source, path, seconds)
        size = path.stat().st_size
        busy0, total0 = procs.host_jiffies()
        own0 = time.process_time()
        for _ in range(rounds):
            timings["floor_every_frame"].append(decode_seconds(path, reference_only=False))
            timings["floor_reference"].append(decode_seconds(path, reference_only=True))
            for name, options in variants.items():
                started, cpu_started = time.perf_counter(), time.process_time()
                reports[name] = analyse(open_media(path, **options)).to_dict()
                timings[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - cpu_started)
        busy1, total1 = procs.host_jiffies()
    tick = os.sysconf("SC_CLK_TCK")
    wall = (total1 - total0) / tick / len(os.sched_getaffinity(0))
    others = max(0.0, (busy1 - busy0) / tick - (time.process_time() - own0)) / wall if wall else None
    duration = reports["default"]["duration_s"] or seconds
    realtime = {name: round(duration / statistics.median(values), 1) for name, values in timings.items()}
    return {
        "media_seconds": duration,
        "file_mb": round(size / 1e6, 2),
        "frames_analysed": {name: report["frames"] for name, report in reports.items()},
        "samples": reports["default"]["samples"],
        "freezes_found": len(reports["default"]["freezes"]),
        "realtime": realtime,
        "realtime_rounds": {name: [round(duration / v, 1) for v in values] for name, values in timings.items()},
        # media seconds per CPU second of this process: what one idle core would give, whatever else runs
        "realtime_per_cpu_second": {name: round(duration / statistics.median(v), 1) for name, v in cpu.items()},
        "other_processes_cores": None if others is None else round(others, 2),  # what else ran meanwhile
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    cpus = sorted(os.sched_getaffinity(0))
    source = SyntheticSource("thyroid", 1280, 720, 30.0, paced=False, clock=lambda: CLOCK)
    report: dict[str, Any] = {
        "bench": "qc",
        "host": {"cpus": len(cpus), "loadavg_start": procs.loadavg(), "opencv_threads": cv2.getNumThreads()},
    }
    log(f"per-frame QC at 720p on one core, {args.rounds} rounds of {args.frames} frames")
    os.sched_setaffinity(0, {cpus[-1]})
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        report["per_frame"] = per_frame(source, args.frames, args.rounds)
    finally:
        cv2.setNumThreads(threads)
        os.sched_setaffinity(0, set(cpus))
    report["offline"] = offline(source, args.seconds, max(1, args.rounds // 2))
    fps = report["per_frame"]["fps"]["per_frame"]
    realtime = report["offline"]["realtime"]["default"]
    report["targets"] = [
        {"name": "per-frame QC at 720p, one core (frames/s)", "value": fps, "limit": TARGET_FPS,
         "met": fps >= TARGET_FPS},
        {"name": "offline scoring of a 720p MP4 (× real time)", "value": realtime, "limit": TARGET_REALTIME,
         "met": realtime >= TARGET_REALTIME},
    ]  # fmt: skip
    report["host"]["loadavg_end"] = procs.loadavg()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the offline test clip")
    parser.add_argument("--frames", type=int, default=600, help="frames per per-frame round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    report = run(args)
    text = json.dumps(report, indent=2)
    out = OUT_DIR / f"qc-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(text + "\n")
    print(text)
    log(f"written to {out}")


if __name__ == "__main__":
    main()
