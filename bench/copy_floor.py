"""Copy-floor bench: the picture quality of the live H.264 at each rate and size, against the recorder's own encode.

    .venv/bin/python -m bench.copy_floor [--seconds 3] [--rates 2,3,4,5,6,8] [--resolutions 720p,1080p]

The recorder writes the live encoder's bitstream into the recording instead of encoding the frames a second time
while the live rate is at or above a floor (recordings/RECORDINGS.md §3). What a reader of the recording loses is
detail in the ultrasound image, so this measures, on the synthetic thyroid and carotid at 30 fps, the luma PSNR
inside the field of view (the B-mode image, not the scanner's static screen around it) of:

- the live encoder (edge_capture.encoding.open_libx264, ultrafast, Constrained Baseline, VBV-capped ABR, the
  shared live encoder's exact settings) at each rate in ``--rates`` (Mb/s);
- the recorder's own encode (edge_capture.recording.mp4.VideoSettings: superfast CRF 22 with B-frames), with the
  rate it took.

Each frame is encoded in order from a fresh context, as the live path does after a keyframe; PSNR is over every
frame. One JSON report on stdout and in bench/out/copy-floor-<time>.json. No timing: the figures do not move with
the host's load.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from edge_capture.encoding import open_libx264
from edge_capture.recording.mp4 import VideoSettings
from edge_capture.sources.synthetic import SyntheticSource

OUT_DIR = Path(__file__).resolve().parent / "out"
RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080)}
CLOCK = 1_780_000_000.0
FPS = 30


def log(message: str) -> None:
    print(f"[copy-floor {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    error = float(np.mean((reference.astype(np.float32) - decoded.astype(np.float32)) ** 2))
    return 10 * float(np.log10(255**2 / max(error, 1e-9)))


def fov_psnr(frames: list[np.ndarray], decoded: list[np.ndarray], fov: tuple[slice, slice]) -> float:
    """Mean luma PSNR inside the field of view over the frames (decoded in the same order)."""
    if len(decoded) != len(frames):
        raise RuntimeError(f"{len(decoded)} frames decoded of {len(frames)}")
    height = decoded[0].shape[0] * 2 // 3
    values = [psnr(f[:height][fov], d[:height][fov]) for f, d in zip(frames, decoded, strict=True)]
    return round(float(np.mean(values)), 2)


def decode(data: bytes, container_format: str | None) -> list[np.ndarray]:
    with av.open(io.BytesIO(data), format=container_format) as container:
        return [frame.to_ndarray(format="yuv420p") for frame in container.decode(video=0)]


def live(frames: list[np.ndarray], width: int, height: int, bitrate: int) -> tuple[bytes, float]:
    """The shared live encoder's settings at ``bitrate``: the Annex B stream and its rate in Mb/s."""
    codec, _ = open_libx264(width, height, bitrate, "ultrafast")
    out = bytearray()
    for k, planes in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = k * 3000
        out += b"".join(bytes(p) for p in codec.encode(frame))
    out += b"".join(bytes(p) for p in codec.encode(None))
    return bytes(out), len(out) * 8 / (len(frames) / FPS) / 1e6


def recorder(frames: list[np.ndarray], width: int, height: int) -> tuple[bytes, float]:
    video = VideoSettings()
    buffer = io.BytesIO()
    options = {"preset": video.preset, "crf": str(video.crf), "x264-params": video.x264_params, "threads": "1"}
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for planes in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(planes, format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = buffer.getvalue()
    return data, len(data) * 8 / (len(frames) / FPS) / 1e6


def measure(preset: str, resolution: str, seconds: float, rates: list[float]) -> dict[str, Any]:
    width, height = RESOLUTIONS[resolution]
    source = SyntheticSource(preset, width, height, float(FPS), paced=False, clock=lambda: CLOCK)
    count = round(FPS * seconds)
    frames = [cv2.cvtColor(source.render(k, CLOCK + k / FPS), cv2.COLOR_BGR2YUV_I420) for k in range(count)]
    fov = source.fov.slices
    log(f"{preset} {resolution}: {count} frames, field of view {source.fov.w}×{source.fov.h}")
    data, mbps = recorder(frames, width, height)
    result: dict[str, Any] = {
        "recorder": {"mbit_per_s": round(mbps, 2), "fov_luma_psnr_db": fov_psnr(frames, decode(data, None), fov)},
        "live": [],
    }
    for rate in rates:
        data, mbps = live(frames, width, height, int(rate * 1e6))
        result["live"].append({
            "target_mbit_per_s": rate, "mbit_per_s": round(mbps, 2),
            "bits_per_pixel": round(rate * 1e6 / (width * height * FPS), 3),
            "fov_luma_psnr_db": fov_psnr(frames, decode(data, "h264"), fov),
        })  # fmt: skip
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.copy_floor", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rates", default="2,3,4,5,6,8", help="live rates to try, Mb/s, comma-separated")
    parser.add_argument("--resolutions", default="720p,1080p")
    parser.add_argument("--presets", default="thyroid,carotid")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    report: dict[str, Any] = {"bench": "copy_floor", "seconds": args.seconds, "results": {}}
    for preset in args.presets.split(","):
        for resolution in args.resolutions.split(","):
            report["results"][f"{preset} {resolution}"] = measure(preset, resolution, args.seconds, rates)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2)
    (OUT_DIR / f"copy-floor-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
