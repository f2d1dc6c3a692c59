"""The real teleus edge agent with stamped frames: a bench-only launcher for `teleus edge`.

    TELEUS_DEVICE_CREDENTIAL=dev_… python -m bench.stamped_edge --server URL --source synthetic:thyroid \\
        --resolution 720p --ice-host 127.0.0.1

Takes exactly the options of `teleus edge` (``edge_capture.cli``), builds the same ``EdgeConfig`` and runs the
same ``EdgeAgent``; the only difference is the source it is handed: ``StampedSource(open_source(...))``, which
paints a frame counter and the capture time into every frame (bench/stamp.py). Every ``--report-seconds`` it
prints one ``BENCH {json}`` line on stdout with the agent's own counters (capture fps, frames each viewer's
encoder took and skipped, the REMB-derived target of each viewer's sender and the bitrate the consultation's shared
encoder runs at), read from the agent's attributes, the event loop's lag since the last report and the
process's thread names (bench/loopwatch.py). SIGTERM or SIGINT stops it like `teleus edge`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from typing import Any

from bench.loopwatch import LoopLag, thread_names
from bench.stamp import StampedSource
from edge_capture import eventloop
from edge_capture.agent import EdgeAgent, EdgeConfig
from edge_capture.cli import add_arguments, config_from
from edge_capture.fanout import PacketVideoTrack
from edge_capture.sources.base import open_source


def agent_report(agent: EdgeAgent, source: StampedSource, lag: LoopLag) -> dict[str, Any]:
    capture = agent.capture.stats() if agent.capture is not None else None
    viewers: list[dict[str, Any]] = []
    encoders: list[dict[str, Any]] = []
    recorders: list[dict[str, Any]] = []
    for link, _ in list(agent.links.values()):
        for peer_id, viewer in list(link.viewers.items()):
            # aiortc's REMB-derived target for this page's sender (read, as the shared encoder reads it)
            target = viewer.video.target_bitrate() if isinstance(viewer.video, PacketVideoTrack) else None
            # NACKed packets by what the resend hook did with them (edge_capture.resend), cumulative
            resends = viewer.video.resends if isinstance(viewer.video, PacketVideoTrack) else None
            viewers.append({"peer": peer_id, "role": viewer.role, "target_bitrate_bps": target, "resends": resends,
                            **viewer.stats})  # fmt: skip
        shared = link.shared_video
        if shared is not None:  # the bitrate the consultation's one x264 runs at (the lowest target, capped)
            encoders.append({"consultation": link.cid, "bitrate_bps": shared.bitrate_bps,
                             "max_bitrate_bps": shared.max_bitrate_bps, "frames_encoded": shared.frames_encoded,
                             "keyframes_encoded": shared.keyframes_encoded, "frames_shed": shared.frames_shed,
                             "frames_skipped": shared.frames_skipped,
                             "rate": shared.rate.report() if hasattr(shared, "rate") else None})  # fmt: skip
        recorder = link.recording.recorder if link.recording is not None else None
        if recorder is not None:  # copied from the live bitstream or encoded again (recordings/RECORDINGS.md §3)
            recorders.append({"consultation": link.cid, "frames_written": recorder.frames_written,
                              "frames_copied": recorder.frames_copied, "frames_dropped": recorder.frames_dropped,
                              "frames_not_live": recorder.frames_not_live, "segments": recorder.segments})  # fmt: skip
    return {
        "t": time.time(),
        "capture_fps": capture.fps if capture else None,
        "frames_captured": capture.frames_captured if capture else 0,
        "stamp_ms_avg": source.stamp_ns_total / max(1, source.counter) / 1e6,
        "viewers": viewers,
        "encoders": encoders,
        "recorders": recorders,
        "loop_lags_ms": lag.drain(),
        "threads": thread_names(),
    }


async def _report(agent: EdgeAgent, source: StampedSource, every: float) -> None:
    lag = LoopLag()
    lag.start()
    try:
        while True:
            await asyncio.sleep(every)
            print("BENCH " + json.dumps(agent_report(agent, source, lag)), flush=True)
    finally:
        await lag.stop()


async def _main(config: EdgeConfig, source: StampedSource, report_seconds: float) -> None:
    agent = EdgeAgent(config, source=source)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, agent.stop)
    reporter = asyncio.create_task(_report(agent, source, report_seconds))
    try:
        await agent.run()
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stamped_edge", description="teleus edge, stamped frames")
    add_arguments(parser)
    parser.add_argument("--report-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    config = config_from(args)
    source = StampedSource(open_source(config.source, config.width, config.height, config.fps))
    eventloop.run(_main(config, source, args.report_seconds), args.event_loop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
