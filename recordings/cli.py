"""`teleus qc`: score files offline.

    teleus qc score FILE|FOLDER [--exam thyroid|carotid] [--depth-mm MM] [--gcnr G]
                                [--osaus R R R R R R R] [--weights JSON] [--metrics-per-second N]
                                [--min-frozen-seconds S] [--fast-decode] [--all-frames]
                                [--progress | --no-progress] [--indent N]

FILE is an MP4 (or any video PyAV reads) or a DICOM image or cine; FOLDER a recording (media.mp4 +
timeline.jsonl). Prints one JSON object (offline.score_path): ``segments`` (where each starts on the session clock,
RECORDINGS.md §2), ``media`` (per file: the field of view, per-metric summaries over all samples and over the imaging
ones, freezes, no-contact and dark stretches, speed), ``freezes``, ``no_contact``, ``dark``, ``live_alerts``,
``completeness``, ``link``, ``image`` (the five items), ``score`` (qc.score.session_score) and ``record`` (the
session's QC record as the server stores it, recordings/qc_record.py). Every time is on the session clock. A progress
bar goes to stderr when it is a terminal (or with --progress).

Exit status: 0 scored; 2 the file cannot be read (``{"error": code, "message": text}`` printed instead);
64 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, TextIO

from qc.completeness import PROTOCOLS
from qc.score import DEFAULT_WEIGHTS, OSAUS_ITEMS, parse_weights

if TYPE_CHECKING:
    from recordings.offline import ScoreOptions

BAR_WIDTH = 30
METRICS_PER_SECOND = 2.0  # qc.offline.OfflineConfig's defaults, without importing the decoders to build a parser
MIN_FROZEN_SECONDS = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="qc_command", required=True)
    p = sub.add_parser("score", help="score a video, a DICOM file or a recording folder; prints JSON")
    p.add_argument("path", help="an MP4, a DICOM file, or a recording folder (media.mp4 + timeline.jsonl)")
    p.add_argument("--exam", choices=sorted(PROTOCOLS), help="the exam protocol (default: from the captures)")
    p.add_argument("--depth-mm", type=float, help="imaging depth when the file has no US region calibration")
    p.add_argument("--gcnr", type=float, help="target visibility as measured gCNR (0–1)")
    p.add_argument("--osaus", type=float, nargs=len(OSAUS_ITEMS), metavar="R",
                   help=f"the trainer's OSAUS ratings 1–5, in order: {', '.join(OSAUS_ITEMS)}")  # fmt: skip
    p.add_argument("--weights", help=f"JSON object of part weights (default {json.dumps(DEFAULT_WEIGHTS)})")
    p.add_argument("--metrics-per-second", type=float, default=METRICS_PER_SECOND)
    p.add_argument("--min-frozen-seconds", type=float, default=MIN_FROZEN_SECONDS)
    p.add_argument("--fast-decode", action="store_true",
                   help="skip H.264 deblocking: about a fifth faster, sharpness reads a little higher")  # fmt: skip
    p.add_argument("--all-frames", action="store_true",
                   help="decode every frame, not only the reference frames (slower; freezes to the frame)")  # fmt: skip
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")  # fmt: skip
    p.add_argument("--indent", type=int, default=2)


class ProgressBar:
    """A plain-text bar redrawn in place with carriage returns."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream, self.label = stream, label
        self._shown = -1

    def __call__(self, done: float) -> None:
        percent = int(100 * min(1.0, max(0.0, done)))
        if percent == self._shown:
            return
        self._shown = percent
        filled = BAR_WIDTH * percent // 100
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent:3d} %")
        if percent == 100:
            self.stream.write("\n")
        self.stream.flush()


def _options(args: argparse.Namespace) -> ScoreOptions:
    from qc.offline import OfflineConfig
    from recordings.offline import ScoreOptions

    weights = parse_weights(args.weights or "")
    if args.metrics_per_second <= 0 or args.min_frozen_seconds < 0:
        raise ValueError("--metrics-per-second must be > 0 and --min-frozen-seconds >= 0")
    return ScoreOptions(
        exam=args.exam,
        depth_mm=args.depth_mm,
        target_gcnr=args.gcnr,
        osaus=dict(zip(OSAUS_ITEMS, args.osaus, strict=True)) if args.osaus else None,
        weights=weights,
        offline=OfflineConfig(metrics_per_second=args.metrics_per_second, min_frozen_seconds=args.min_frozen_seconds),
        fast_decode=args.fast_decode,
        all_frames=args.all_frames,
    )


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from recordings.media import MediaError
    from recordings.offline import score_path

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        options = _options(args)
        show = args.progress if args.progress is not None else err.isatty()
        report = score_path(args.path, options, ProgressBar(err, "qc") if show else None)
    except MediaError as exc:
        out.write(json.dumps({"error": exc.code, "message": exc.message}) + "\n")
        return 2
    except ValueError as exc:  # bad weights or OSAUS ratings
        out.write(json.dumps({"error": "bad_arguments", "message": str(exc)}) + "\n")
        return 64
    out.write(json.dumps(report, indent=args.indent or None, ensure_ascii=False) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="teleus qc", description="quality control of recorded sessions")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
