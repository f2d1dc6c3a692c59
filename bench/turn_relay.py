"""What the TURN relay costs: a live consultation between two lab networks through a real coturn, measured.

The relay lab of tests/e2e/test_turn_relay.py (tests/e2e/relaylab.py): the real edge agent and the sonographer's
Chromium in the clinic's network namespace, the expert's Chromium in another, the teleus server and coturn on the
host. The clinic's site is relay-only. Once the expert's video plays, every second for ``--duration`` seconds:
the expert page's received fps, bitrate, RTT, loss and glass-to-glass latency estimate (the console's own
figures), and the CPU of coturn and of the edge. ``--rate`` caps the clinic's link (tc tbf), ``--loss`` drops
packets on it (nftables), ``--transport`` picks the TURN URL the edge uses (udp or tcp).

    .venv/bin/python -m bench.turn_relay [--duration 20] [--rate MBIT] [--loss PCT] [--transport udp|tcp]

Needs root (bench/netlab.py). Output: JSON on stdout and in bench/out/turn-relay-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.procs import cpu_seconds
from signaling_server.app import create_app
from signaling_server.settings import Settings
from tests.conftest import seed
from tests.databases import database
from tests.e2e.relaylab import (
    SECRET,
    browser_in,
    edge_in,
    join_as_expert,
    relay_lab,
    request_consultation,
    selected_pair,
)
from tests.e2e.test_live_consultation import snapshot, wait_for
from tests.turnserver import coturn

OUT = Path(__file__).resolve().parent / "out"


def _summary(values: list[float | None]) -> dict[str, float | None]:
    seen = [v for v in values if v is not None]
    if not seen:
        return {"median": None, "min": None, "max": None}
    return {"median": round(statistics.median(seen), 2), "min": round(min(seen), 2), "max": round(max(seen), 2)}


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with relay_lab() as net:
        if args.rate:
            net.clinic.rate(args.rate)
        if args.loss:
            net.clinic.loss(args.loss)
        with coturn(tmp / "coturn", [net.hub], net.hub, SECRET) as turn:
            urls = (f"turn:{net.hub}:{turn.port}?transport=udp", f"turn:{net.hub}:{turn.port}?transport=tcp")
            async with database("sqlite", tmp) as url:
                settings = Settings(data_dir=tmp, database_url=url, turn_urls=urls, turn_secret=SECRET,
                                    relay_sites=("north",))  # fmt: skip
                app = create_app(settings)
                runner = web.AppRunner(app)
                await runner.setup()
                await web.TCPSite(runner, net.hub, 0).start()
                base = f"http://{net.hub}:{runner.addresses[0][1]}/"
                try:
                    world = await seed(app)
                    extra = ("--turn-transport", args.transport)
                    async with (
                        edge_in(net.clinic, base, world.device_a_credential, tmp / "edge", extra) as edge,
                        browser_in(net.clinic) as clinic_browser,
                        browser_in(net.expert) as expert_browser,
                    ):
                        return await _measure(args, base, clinic_browser, expert_browser, turn.pid, edge.pid)
                finally:
                    await runner.cleanup()


async def _measure(
    args: argparse.Namespace, base: str, clinic_browser: Any, expert_browser: Any, turn_pid: int, edge_pid: int
) -> dict[str, Any]:
    sono = await (await clinic_browser.new_context()).new_page()
    expert = await (await expert_browser.new_context(viewport={"width": 1600, "height": 1000})).new_page()
    started = time.monotonic()
    cid = await request_consultation(sono, base)
    await wait_for(sono, "s => s.framesDecoded > 0", within=120)
    await join_as_expert(expert, base, cid)
    joined = time.monotonic()
    await wait_for(expert, "s => s.framesDecoded > 0", within=120)
    first_frame = time.monotonic() - joined
    await wait_for(expert, "s => s.framesDecoded > 60", within=120)
    pair = await selected_pair(expert)
    samples: list[dict[str, Any]] = []
    cpu0 = (time.monotonic(), cpu_seconds(turn_pid) or 0.0, cpu_seconds(edge_pid) or 0.0)
    for _ in range(int(args.duration)):
        await asyncio.sleep(1.0)
        s = await snapshot(expert)
        samples.append(s["stats"] if s else {})
    cpu1 = (time.monotonic(), cpu_seconds(turn_pid) or 0.0, cpu_seconds(edge_pid) or 0.0)
    wall = cpu1[0] - cpu0[0]
    return {
        "options": {
            "duration": args.duration, "rate_mbit": args.rate, "loss_pct": args.loss,
            "edge_turn_transport": args.transport,
        },
        "expert_pair": pair,
        "setup_seconds": round(joined - started, 1),
        "expert_first_frame_seconds": round(first_frame, 2),
        "expert": {
            key: _summary([sample.get(key) for sample in samples])
            for key in ("fps", "bitrateMbps", "rttMs", "lossPct", "latencyP50", "latencyP95")
        },
        "cpu_pct": {
            "coturn": round(100 * (cpu1[1] - cpu0[1]) / wall, 1),
            "edge": round(100 * (cpu1[2] - cpu0[2]) / wall, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.turn_relay", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=None, help="cap the clinic's link at MBIT Mbit/s")
    parser.add_argument("--loss", type=float, default=0.0, help="drop PCT %% of the clinic's packets each way")
    parser.add_argument("--transport", choices=["udp", "tcp"], default="udp", help="the TURN URL the edge uses")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="turn-relay-") as tmp:
        report = asyncio.run(run(args, Path(tmp)))
    text = json.dumps(report, indent=2)
    OUT.mkdir(exist_ok=True)
    (OUT / f"turn-relay-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text + "\n")
    print(text)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
