"""Reconnection after a cut link: how long until the expert's console decodes video again.

The real parts, as in production across a network: the teleus server and headless Chromium (the expert's console)
on this host, the edge agent (``teleus edge``, synthetic thyroid 720p30) in a network namespace of its own, joined
to the host by a veth link (bench/netlab.py; needs root). For each cut length the bench waits for steady video,
measures the frame rate, drops every packet of the edge's namespace (nftables) for that long, restores the link and
measures, from the moment the link is back:

- ``offer_s``: until the page holds a new peer connection (the edge is back in the room and has offered again),
  or null when the old call survived the cut;
- ``video_s``: until the page's ``framesDecoded`` grows again (on the old call or a new one);
- ``fps_before`` / ``fps_after``: the decoded frame rate over 5 s before the cut and over 5 s starting 3 s after
  the video came back.

    python -m bench.reconnect [--cuts 5,35,60] [--repeats 1] [--out bench/out/reconnect.json]

Prints one JSON object (also written to ``--out``): ``cases`` with one entry per cut and a summary per length.
Figures: docs/LIVE.md, Reconnection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from playwright.async_api import Page, async_playwright

from bench import live, netlab, procs

# Chromium reaches the server over the lab's link address: no loopback flag needed, the rest as the suite's.
CHROMIUM_ARGS = [a for a in live.CHROMIUM_ARGS if a != "--allow-loopback-in-peer-connection"]

# The page's video: [a number naming the current RTCPeerConnection (0 for none), framesDecoded on it].
VIDEO_PROBE = """async () => {
  const live = window.teleus && window.teleus.live;
  const pc = live && live.pc;
  if (!pc) return [0, 0];
  if (!pc.__benchId) pc.__benchId = (window.__benchPcs = (window.__benchPcs || 0) + 1);
  let frames = 0;
  for (const r of (await pc.getStats()).values()) {
    if (r.type === "inbound-rtp" && r.kind === "video") frames = r.framesDecoded || 0;
  }
  return [pc.__benchId, frames];
}"""


def log(message: str) -> None:
    print(f"[reconnect] {message}", file=sys.stderr, flush=True)


async def probe(page: Page) -> tuple[int, int]:
    pc, frames = await page.evaluate(VIDEO_PROBE)
    return int(pc), int(frames)


async def fps_over(page: Page, seconds: float) -> float:
    start_pc, start_frames = await probe(page)
    began = time.monotonic()
    await asyncio.sleep(seconds)
    pc, frames = await probe(page)
    if pc != start_pc:
        return float("nan")
    return (frames - start_frames) / (time.monotonic() - began)


async def wait_video(page: Page, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        _, frames = await probe(page)
        if frames > 60:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("no video on the expert's page")


async def one_cut(page: Page, clinic: netlab.Namespace, seconds: float, limit: float = 60.0) -> dict[str, Any]:
    fps_before = await fps_over(page, 5.0)
    clinic.cut()
    await asyncio.sleep(seconds)
    old_pc, old_frames = await probe(page)
    clinic.restore()
    back = time.monotonic()
    offer_s: float | None = None
    video_s: float | None = None
    while time.monotonic() - back < limit:
        pc, frames = await probe(page)
        now = time.monotonic() - back
        if pc not in (0, old_pc) and offer_s is None:
            offer_s = now
        if (pc == old_pc and frames > old_frames) or (pc not in (0, old_pc) and frames > 0):
            video_s = now
            break
        await asyncio.sleep(0.05)
    if video_s is not None:
        await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - back - video_s)))
    fps_after = await fps_over(page, 5.0) if video_s is not None else None
    result = {
        "cut_s": seconds,
        "offer_s": _round(offer_s),
        "video_s": _round(video_s),
        "fps_before": _round(fps_before, 1),
        "fps_after": _round(fps_after, 1),
    }
    log(json.dumps(result))
    return result


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None or value != value else round(value, digits)


async def run(cuts: list[float], repeats: int, out: Path) -> dict[str, Any]:
    opts = live.Options(duration=0, warmup=0, resolutions=[], vp8=False, pointer_moves=0, pointer_hz=0, soak=None,
                        profile=False, quick=True, log_dir=out.parent)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    cases: list[dict[str, Any]] = []
    with netlab.Lab() as lab:
        clinic = lab.namespace("clinic")
        link = lab.link(clinic, None)
        async with AsyncExitStack() as stack:
            world = await live.start_teleus(stack, "reconnect", opts, host=link.b_address)
            spool = Path(stack.enter_context(live._tempdir("teleus-bench-reconnect-edge-")))
            edge = await procs.spawn(
                "edge-reconnect",
                clinic.argv([live.TELEUS, "edge", "--server", world.base, "--allow-insecure-http",
                             "--ice-host", link.a_address, "--source", live.SOURCE, "--spool", f"{spool}/outbox",
                             "--recordings", f"{spool}/recordings"]),
                out.parent, live.ROOT, env={"TELEUS_DEVICE_CREDENTIAL": world.credential},
            )  # fmt: skip
            stack.push_async_callback(edge.stop)
            consultation = await live.api_post(
                world.sono, world.base, "api/v1/consultations",
                {"exam_type": "thyroid", "patient": {"id": "BENCH-1", "name": "Bench^Patient", "sex": "F",
                                                     "birth_date": ""}},
                world.sono_csrf,
            )  # fmt: skip
            cid = consultation["id"]
            playwright = await stack.enter_async_context(async_playwright())
            browser = await playwright.chromium.launch(executable_path=live.CHROMIUM, args=CHROMIUM_ARGS)
            stack.push_async_callback(browser.close)
            expert = await (await browser.new_context(viewport={"width": 1600, "height": 1000})).new_page()
            await live.page_login(expert, world.base, "expert")
            await expert.goto(world.base + f"#/c/{cid}")
            await wait_video(expert, 90)
            log(f"video flowing; cuts {cuts} x {repeats}")

            for _ in range(repeats):
                for seconds in cuts:
                    cases.append(await one_cut(expert, clinic, seconds))
                    await wait_video(expert, 60)
            await live.end_consultation(world, cid)
    summary = {}
    for seconds in cuts:
        videos = [c["video_s"] for c in cases if c["cut_s"] == seconds and c["video_s"] is not None]
        summary[f"{seconds:g}"] = {
            "runs": sum(1 for c in cases if c["cut_s"] == seconds),
            "video_s_median": round(statistics.median(videos), 2) if videos else None,
            "video_s_max": max(videos) if videos else None,
        }
    report = {"bench": "reconnect", "host": os.uname().nodename, "cpus": os.cpu_count(), "cases": cases,
              "summary": summary}  # fmt: skip
    await asyncio.to_thread(out.write_text, json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cuts", default="5,35,60", help="cut lengths in seconds, comma-separated")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--out", type=Path, default=live.OUT_DIR / "reconnect.json")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.reconnect needs root (network namespaces)", file=sys.stderr)
        return 2
    cuts = [float(c) for c in args.cuts.split(",") if c.strip()]
    report = asyncio.run(run(cuts, args.repeats, args.out))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
