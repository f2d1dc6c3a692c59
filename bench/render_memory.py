"""Render memory bench: what rendering one large frame allocates, beside bare numpy baselines, in one run.

    python -m bench.render_memory [--size 6000] [--viewport 256] [--before b72fbac] [--repeat 3]

One synthetic MONOCHROME2 image of --size × --size 16-bit pixels (a rescale slope and intercept and a stored
window, as a CT or CR has) is built in memory. Each case then runs --repeat times under tracemalloc (numpy reports
its buffers to it), and the report gives the peak bytes allocated during the call, per case and per pixel:

- ``decode`` (baseline): ``pydicom.pixels.pixel_array(ds, index=0)``, the decoded frame every render starts from;
- ``float64_copy`` (baseline): the decoded frame plus ``frame.astype(numpy.float64)``, the one copy the old path
  made before its windowing temporaries;
- ``render_full`` / ``render_viewport``: ``signaling_server.dicomstore.render.render`` at full size, and with a
  --viewport square (a thumbnail);
- ``before_full`` / ``before_viewport``: the same calls on render.py as it was at git revision --before (read with
  ``git show``), when that revision exists.

``cpu_seconds`` is this process's CPU time per call (the median), for orientation only. Prints one JSON report and
writes it to bench/out/render-memory-<time>.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
import tracemalloc
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import pixel_array
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from signaling_server.dicomstore import render

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = Path(__file__).resolve().parent / "out"
RENDER_PATH = "signaling_server/dicomstore/render.py"


def large_image(size: int) -> Dataset:
    """A CT-like frame: 16-bit stored values, rescaled to Hounsfield-like units, with a stored window."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    rows = np.arange(size, dtype=np.uint32)[:, None]
    pixels = ((rows * 7 + np.arange(size, dtype=np.uint32)[None, :] * 13) % 4096).astype(np.uint16)
    ds.set_pixel_data(pixels, "MONOCHROME2", 12, generate_instance_uid=False)
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def load_before(revision: str) -> types.ModuleType | None:
    """render.py as it was at `revision`, as a module of its own (None when git or the revision is missing)."""
    try:
        source = subprocess.run(
            ["git", "show", f"{revision}:{RENDER_PATH}"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    spec = importlib.util.spec_from_loader("render_before", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    exec(compile(source, f"{revision}:{RENDER_PATH}", "exec"), module.__dict__)
    return module


def measure(call: Callable[[], object], repeat: int) -> dict[str, float]:
    peaks, cpu = [], []
    for _ in range(repeat):
        tracemalloc.start()
        started = time.process_time()
        result = call()
        cpu.append(time.process_time() - started)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        del result
    return {"peak_bytes": max(peaks), "cpu_seconds": round(statistics.median(cpu), 3)}


def cases(ds: Dataset, viewport: int, before: types.ModuleType | None) -> dict[str, Callable[[], object]]:
    def float64_copy() -> object:
        frame = pixel_array(ds, index=0)
        return frame, frame.astype(np.float64)

    found: dict[str, Callable[[], object]] = {
        "decode": lambda: pixel_array(ds, index=0),
        "float64_copy": float64_copy,
        "render_full": lambda: render.render(ds, 0),
        "render_viewport": lambda: render.render(ds, 0, viewport=(viewport, viewport)),
    }
    if before is not None:
        found["before_full"] = lambda: before.render(ds, 0)
        found["before_viewport"] = lambda: before.render(ds, 0, viewport=(viewport, viewport))
    return found


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=6000, help="rows = columns of the frame")
    parser.add_argument("--viewport", type=int, default=256, help="the thumbnail's side")
    parser.add_argument("--before", default="b72fbac", help="the git revision whose render.py is the 'before'")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    ds = large_image(args.size)
    pixels = args.size * args.size
    before = load_before(args.before)
    results: dict[str, Any] = {}
    for name, call in cases(ds, args.viewport, before).items():
        figures = measure(call, args.repeat)
        figures["bytes_per_pixel"] = round(figures["peak_bytes"] / pixels, 2)
        results[name] = figures
        print(f"{name:16} peak {figures['peak_bytes'] / 2**20:8.1f} MiB  ({figures['bytes_per_pixel']:5.2f} B/px)  "
              f"cpu {figures['cpu_seconds']:.2f} s", file=sys.stderr)
    report = {
        "bench": "render_memory",
        "frame": {"rows": args.size, "columns": args.size, "bits_allocated": 16, "pixels": pixels},
        "viewport": args.viewport,
        "before_revision": args.before if before is not None else None,
        "numpy": np.__version__,
        "cases": results,
    }
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / f"render-memory-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
