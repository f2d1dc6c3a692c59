"""Live-video bench: teleus against the bare-aiortc floor, glass to glass, in the same headless Chromium.

    .venv/bin/python -m bench.live                       # 720p and 1080p, 20 s windows (about 4 minutes)
    .venv/bin/python -m bench.live --quick               # one short 720p floor + teleus pair (< 60 s)
    .venv/bin/python -m bench.live --soak 300            # one 5-minute 720p teleus run, per-minute figures

For each resolution it runs, one after the other, in one Chromium:

- ``floor_h264`` (and ``floor_vp8`` unless ``--no-vp8``): ``python -m bench.floor_sender`` streaming the
  stamped synthetic thyroid to a minimal page, with teleus's encoder settings;
- ``teleus``: ``teleus server`` (temp data dir, seeded through the CLI and the REST API), the real edge agent
  with stamped frames (``python -m bench.stamped_edge``), a consultation requested by the sonographer over REST
  and joined by the expert in the real console page; then the sonographer's page opens and the expert's
  pointer is timed to it.

Each page gets ``reader.js`` (stamp reader and stats). JSON goes to stdout and to
``bench/out/live-<timestamp>.json``; a human summary with the targets goes to stderr. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import platform
import random
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from bench import procs, stamp
from bench import stats as st

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
OUT_DIR = BENCH_DIR / "out"
PYTHON = sys.executable
TELEUS = str(Path(sys.executable).parent / "teleus")
RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080)}
PASSWORD = "bench-Pa55word"
FPS = 30.0
SOURCE = "synthetic:thyroid"
BARE_EDGE = ("--no-record", "--no-live-qc")  # the teleus_bare case: the live path alone
EXPERT_VIEWPORT = {"width": 1600, "height": 1000}
SONO_VIEWPORT = {"width": 1280, "height": 900}
EVAL_TIMEOUT = 30.0

# One set of Chromium flags for the benchmark and the end-to-end tests.
from tests.e2e.browser import ARGS as CHROMIUM_ARGS  # noqa: E402
from tests.e2e.browser import CHROMIUM, HOST_NETWORK  # noqa: E402

TARGET_P95_MS = 80.0
TARGET_FLOOR_RATIO = 1.15
TARGET_EDGE_CPU_PCT = 40.0
TARGET_POINTER_P95_MS = 50.0
TARGET_FPS = 29.0  # "30 fps sustained": a 30 fps source as decoded, with a little slack for pacing jitter
TARGET_GROWTH_MS = 10.0  # last-minute p95 − first-minute p95
TARGET_SLOPE_MS_PER_MIN = 2.0  # least-squares slope of the per-minute p95


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def reader_script(source_width: int | None = None) -> str:
    """reader.js configured; ``source_width``: the stamped source's width, so the reader finds the strip in a
    picture the sender scaled down (bench/network.py: the edge may give up resolution on a slow link)."""
    config = {
        "sourceWidth": source_width,
        "block": stamp.BLOCK,
        "cols": stamp.COLS,
        "rows": stamp.ROWS,
        "timeBits": stamp.TIME_BITS,
        "timeUnitMs": stamp.TIME_UNIT_NS / 1e6,
        "sample": 8,
    }
    return (BENCH_DIR / "reader.js").read_text().replace("__BENCH_CONFIG__", json.dumps(config))


@dataclass
class Options:
    duration: float
    warmup: float
    resolutions: list[str]
    vp8: bool
    pointer_moves: int
    pointer_hz: float
    soak: float | None
    profile: bool
    quick: bool
    av_sync: bool = False
    retries: int = 0
    noise_limit: float = 20.0
    wait_quiet: float = 0.0
    cases: list[str] = field(default_factory=list)
    edge_args: list[str] = field(default_factory=list)  # more `teleus edge` options for the teleus case
    log_dir: Path = field(default_factory=lambda: OUT_DIR)
    pin: bool = False  # the senders on one core, Chromium on the other (PIN_CPUS), as separate machines would be
    commands: dict[str, list[str]] = field(default_factory=dict)  # each sender's command line, for the report


# ``--pin``: the edge (or the floor sender) on core 0, every Chromium process on core 1, as a clinic PC and the
# expert's PC would be. The teleus server stays unpinned (it is a third machine in real use).
PIN_CPUS = {"sender": "0", "chromium": "1"}


def pinned(argv: list[str], opts: Options, role: str) -> list[str]:
    """``argv`` under ``taskset -c <core>`` when the bench pins (taskset execs the command: the pid is the same)."""
    return ["taskset", "-c", PIN_CPUS[role], *argv] if opts.pin else argv


def chromium_executable(opts: Options, directory: Path) -> str:
    """The Chromium to launch: with ``--pin``, a wrapper in ``directory`` that execs it under taskset, so the
    browser and every renderer it forks inherit the core."""
    if not opts.pin:
        return CHROMIUM
    wrapper = directory / "chromium-pinned"
    wrapper.write_text(f'#!/bin/sh\nexec taskset -c {PIN_CPUS["chromium"]} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def floor_command(
    opts: Options, name: str, width: int, height: int, codec: str, *, audio: bool = False, audio_split: bool = False
) -> list[str]:
    """The floor sender's command line (pinned with ``--pin``), recorded in ``opts.commands``."""
    argv = [PYTHON, "-m", "bench.floor_sender", "--width", str(width), "--height", str(height), "--fps", str(FPS),
            "--codec", codec, "--source", SOURCE,
            *(["--audio"] if audio else []), *(["--audio-split"] if audio_split else [])]  # fmt: skip
    opts.commands[name] = pinned(argv, opts, "sender")
    return opts.commands[name]


def edge_command(
    opts: Options, name: str, base: str, resolution: str, edge_dir: Path, edge_args: Sequence[str] = ()
) -> list[str]:
    """The stamped edge's command line (pinned with ``--pin``), recorded in ``opts.commands``."""
    argv = [PYTHON, "-m", "bench.stamped_edge", "--server", base, "--source", SOURCE, "--resolution", resolution,
            "--fps", str(FPS), "--ice-host", "127.0.0.1", "--spool", str(edge_dir / "outbox"),
            "--recordings", str(edge_dir / "recordings"), *edge_args]  # fmt: skip
    opts.commands[name] = pinned(argv, opts, "sender")
    return opts.commands[name]


async def js(page: Page, expression: str, arg: Any = None) -> Any:
    return await asyncio.wait_for(page.evaluate(expression, arg), EVAL_TIMEOUT)


async def wait_js(page: Page, predicate: str, within: float, what: str) -> Any:
    """Poll a JS expression until it is truthy; its value."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            value = await js(page, predicate)
            if value:
                return value
        await asyncio.sleep(0.25)
    raise TimeoutError(f"timed out after {within:.0f} s waiting for {what}")


# ---- one measuring window ------------------------------------------------------------------------------------


@dataclass
class Mark:
    """Everything read at one instant of a measuring window."""

    mono: float
    wall_ms: float
    cpu: dict[str, float | None]
    rss: dict[str, float | None]
    chromium_cpu: float
    tree_cpu: float
    host: tuple[int, int]
    stats: dict[str, Any] | None
    production: dict[str, Any] | None
    sender: dict[str, Any] | None
    clock: dict[str, float] | None
    threads: dict[str, float]


async def take_mark(page: Page, pids: dict[str, int], sender_stats: Any, console: bool) -> Mark:
    """``pids``: the processes to account; the first one is the sender (floor sender or edge)."""
    stats = await js(page, "() => window.__bench.stats()")
    production = await js(page, "() => window.__bench.production()") if console else None
    clock = await js(page, "() => window.__bench.clock()")
    return Mark(
        mono=time.monotonic(),
        wall_ms=time.time() * 1000,
        cpu={name: procs.cpu_seconds(pid) for name, pid in pids.items()},
        rss={name: procs.rss_mb(pid) for name, pid in pids.items()},
        chromium_cpu=procs.chromium_cpu_seconds(),
        tree_cpu=procs.tree_cpu_seconds(),
        host=procs.host_jiffies(),
        stats=stats,
        production=production,
        sender=await sender_stats(),
        clock=clock,
        threads=procs.thread_cpu_seconds(next(iter(pids.values()))),
    )


def cpu_pct(a: Mark, b: Mark) -> dict[str, float | None]:
    seconds = b.mono - a.mono
    out: dict[str, float | None] = {}
    for name in a.cpu:
        x, y = a.cpu.get(name), b.cpu.get(name)
        out[name] = None if x is None or y is None or seconds <= 0 else st.rnd((y - x) / seconds * 100)
    out["chromium"] = st.rnd((b.chromium_cpu - a.chromium_cpu) / seconds * 100) if seconds > 0 else None
    busy, total = b.host[0] - a.host[0], b.host[1] - a.host[1]
    out["host_busy_of_all_cores"] = st.rnd(busy / total * 100) if total > 0 else None
    if seconds > 0:
        # everything busy on the host that is not this bench's process tree: other people's work (noise)
        external = busy / procs.CLOCK_TICKS - (b.tree_cpu - a.tree_cpu)
        out["other_processes"] = st.rnd(max(0.0, external) / seconds * 100)
    return out


def thread_split(a: Mark, b: Mark, top: int = 10) -> dict[str, float]:
    """The sender's CPU by thread (% of one core), named from the sender's own report of its threads."""
    seconds = b.mono - a.mono
    names = (b.sender or {}).get("threads") or {}
    rows: dict[str, float] = {}
    for tid, cpu in b.threads.items():
        used = cpu - a.threads.get(tid, 0.0)
        if used <= 0 or seconds <= 0:
            continue
        name = names.get(tid, "native (not a Python thread)")
        rows[name] = rows.get(name, 0.0) + used / seconds * 100
    ranked = sorted(rows.items(), key=lambda kv: -kv[1])[:top]
    return {name: round(value, 1) for name, value in ranked}


def sender_frames(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any]:
    """Frames the sender captured and how many never reached its encoder (latest-frame-wins skips), between two
    of the sender's own reports (their times ``t``: the edge reports every 2 s, not at the bench's marks)."""
    if not a or not b or "t" not in a or "t" not in b or b["t"] <= a["t"]:
        return {}
    seconds = b["t"] - a["t"]
    captured = b.get("frames_captured", 0) - a.get("frames_captured", 0)
    out: dict[str, Any] = {"seconds": st.rnd(seconds, 2), "captured_fps": st.rnd(captured / seconds, 2)}
    if "overwritten" in b:  # the floor
        skipped = b["overwritten"] - a.get("overwritten", 0)
        out["skipped_before_encoder"] = skipped
    else:  # the edge: per viewer
        before = {v["peer"]: v for v in a.get("viewers", [])}
        out["viewers"] = [
            {
                "role": v["role"],
                "encoded_fps": st.rnd(
                    (v["frames_sent"] - before.get(v["peer"], {}).get("frames_sent", 0)) / seconds, 2
                ),
                "skipped_before_encoder": v["frames_skipped"] - before.get(v["peer"], {}).get("frames_skipped", 0),
            }
            for v in b.get("viewers", [])
        ]
    return out


def _counters(report: dict[str, Any] | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {k: v for k, v in report.items() if k not in ("threads", "loop_lags_ms")}


def summarise(
    a: Mark, b: Mark, samples: list[dict[str, Any]], console: bool, earlier: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The window from mark ``a`` to mark ``b``; ``earlier`` samples only serve the console-estimate comparison."""
    seconds = b.mono - a.mono
    gaps = st.frame_gaps(samples)
    out: dict[str, Any] = {
        "seconds": st.rnd(seconds, 2),
        "latency_ms": st.latency(samples),
        "fps_stamped": st.rnd(gaps["frames_shown"] / seconds, 2) if seconds > 0 else None,
        "frames": gaps,
        "inbound": st.inbound(a.stats, b.stats),
        "cpu_pct_of_one_core": cpu_pct(a, b),
        "rss_mb": {k: st.rnd(v) for k, v in b.rss.items()},
        "loadavg_1min": procs.loadavg()[0],
    }
    out["sender_frames"] = sender_frames(a.sender, b.sender)
    out["sender_threads_cpu_pct"] = thread_split(a, b)
    out["sender_loop_lag_ms"] = st.dist((b.sender or {}).get("loop_lags_ms", []), 2)
    if a.clock and b.clock:
        # the page's performance clock against its own wall clock: any drift would bias every latency
        out["page_clock_drift_ms"] = st.rnd(
            (b.clock["perf"] - b.clock["date"]) - (a.clock["perf"] - a.clock["date"]), 2
        )
    if console:
        out["production_estimate"] = production_accuracy((earlier or []) + samples, b.production)
    return out


def production_accuracy(samples: list[dict[str, Any]], production: dict[str, Any] | None) -> dict[str, Any]:
    """The console's own latency figure against the stamped truth.

    The console's snapshot gives p50/p95 over its last 10 s; the truth is taken over the stamped frames
    displayed in those same 10 s (the warm-up just before the window included). Per frame (same frames),
    ``rtp_map_error_ms`` is the capture time the edge announced for a
    frame's RTP timestamp minus the time stamped into that frame (0 when the map is right; a multiple of 33 ms
    when it is off by frames); ``clock_offset_ms`` is the ping-estimated edge−page offset (truly 0 here: one host
    clock); ``per_frame_error_ms`` = production's per-frame latency − the stamped latency."""
    if not production:
        return {}
    offset = (production.get("offset") or {}).get("offsetMs")
    at = production["at"]
    recent = [s for s in samples if s.get("disp") is not None and at - 10_000 <= s["disp"] <= at + 100]
    truth = st.dist(st.g2g(recent))
    mapped = [s for s in samples if s.get("ecap") is not None and s.get("disp") is not None]
    map_errors = [s["ecap"] - s["cap"] for s in mapped]
    per_frame = (
        [(s["disp"] - (s["ecap"] - offset)) - (s["disp"] - s["cap"]) for s in mapped] if offset is not None else []
    )
    return {
        "console_p50_ms": st.rnd(production.get("p50")),
        "console_p95_ms": st.rnd(production.get("p95")),
        "console_samples": production.get("count"),
        "stamped_p50_ms_same_10s": truth["p50"],
        "stamped_p95_ms_same_10s": truth["p95"],
        "error_p50_ms": st.rnd(production["p50"] - truth["p50"])
        if production.get("p50") is not None and truth["p50"] is not None
        else None,
        "error_p95_ms": st.rnd(production["p95"] - truth["p95"])
        if production.get("p95") is not None and truth["p95"] is not None
        else None,
        "clock_offset_ms": st.rnd(offset, 2),
        "ping_rtt_ms": st.rnd((production.get("offset") or {}).get("rttMs"), 2),
        "frames_with_rtp_map": len(mapped),
        "frames_stamped": len(samples),
        "rtp_map_error_ms": st.dist(map_errors, 2),
        # > 5 ms: the capture thread read its clock late (it was descheduled between read() and time_ns());
        # a wrong RTP map would be off by whole frames (≥ 33 ms)
        "rtp_map_late_clock_frames": sum(1 for e in map_errors if 5 < abs(e) < 20),
        "rtp_map_wrong_frame": sum(1 for e in map_errors if abs(e) >= 20),
        "rtp_map_examples_over_5ms": [
            {"counter": s["n"], "rtp": s["rtp"], "error_ms": st.rnd(s["ecap"] - s["cap"], 2)}
            for s in mapped
            if abs(s["ecap"] - s["cap"]) > 5
        ][:5],
        "per_frame_error_ms": st.dist(per_frame, 2),
    }


async def wait_for_video(page: Page, within: float) -> None:
    await wait_js(
        page,
        "() => window.__bench && (window.__bench.samples.length > 5"
        " || (window.__bench.callbacks > 30 && window.__bench.bad > 0))",
        within,
        "stamped video in the page",
    )
    drained = await js(page, "() => window.__bench.drain()")
    if not drained["samples"] and drained["bad"]:
        raise RuntimeError(f"the page shows video but no stamp decodes ({drained['bad']} bad reads)")


async def measure(
    page: Page,
    pids: dict[str, int],
    duration: float,
    warmup: float,
    *,
    console: bool,
    sender_stats: Any,
    slice_seconds: float | None = None,
    on_slice: Any = None,
    dump: Path | None = None,
) -> dict[str, Any]:
    """Warm up, then measure for ``duration`` s; with ``slice_seconds``, also per slice. ``dump``: where to
    write the raw per-frame samples (JSON)."""
    await asyncio.sleep(warmup)
    warm = (await js(page, "() => window.__bench.drain()"))["samples"]
    first = await take_mark(page, pids, sender_stats, console)
    start_drain = await js(page, "() => window.__bench.drain()")
    # frames shown before the window: the console's 10 s latency figure may reach back into them
    earlier = warm + start_drain["samples"]
    bad0, callbacks0, decode0 = start_drain["bad"], start_drain["callbacks"], start_drain["decodeMs"]
    samples: list[dict[str, Any]] = []
    pings: list[dict[str, Any]] = []
    slices: list[dict[str, Any]] = []
    slice_len = slice_seconds or duration
    n_slices = max(1, math.ceil(duration / slice_len - 1e-9))
    previous = first
    last_drain = start_drain
    for index in range(n_slices):
        slice_end = first.mono + min((index + 1) * slice_len, duration)
        slice_samples: list[dict[str, Any]] = []
        while (remaining := slice_end - time.monotonic()) > 0:
            await asyncio.sleep(min(5.0, remaining))
            last_drain = await js(page, "() => window.__bench.drain()")
            slice_samples.extend(last_drain["samples"])
            pings.extend(last_drain["pings"])
        mark = await take_mark(page, pids, sender_stats, console)
        samples.extend(slice_samples)
        if slice_seconds:
            summary = summarise(previous, mark, slice_samples, console, earlier=earlier)
            earlier = slice_samples
            summary["minute"] = index + 1
            slices.append(summary)
            if on_slice is not None:
                on_slice(summary)
        previous = mark
    out = summarise(first, previous, samples, console, earlier=warm + start_drain["samples"])
    out["reader"] = {
        "callbacks": last_drain["callbacks"] - callbacks0,
        "bad_reads": last_drain["bad"] - bad0,
        "errors": last_drain["errors"],
        "last_error": last_drain["lastError"],
        "frame_mismatch_discarded": last_drain["mismatched"] - start_drain["mismatched"],
        "videoframe_reads": last_drain["frameReads"] - start_drain["frameReads"],
        "canvas_reads": last_drain["canvasReads"] - start_drain["canvasReads"],
        "reader_ms_per_callback": st.rnd(
            (last_drain["decodeMs"] - decode0) / max(1, last_drain["callbacks"] - callbacks0), 3
        ),
    }
    out["sender_counters"] = {"start": _counters(first.sender), "end": _counters(previous.sender)}
    if console:
        out["datachannel_ping_ms"] = {
            "page_to_edge": st.dist((p["edgeMs"] - p["t"] for p in pings), 2),
            "edge_to_page": st.dist((p["received"] - p["edgeMs"] for p in pings), 2),
            "note": "the console's 1 Hz clock pings on the `live` channel; one host clock, so one-way times",
        }
    if dump is not None:
        await asyncio.to_thread(dump.write_text, json.dumps(samples))
        out["raw_samples"] = str(dump.relative_to(ROOT)) if dump.is_relative_to(ROOT) else str(dump)
    if slices:
        out["slices"] = slices
    return out


# ---- the browser ------------------------------------------------------------------------------------------------


@asynccontextmanager
async def chromium(opts: Options | None = None) -> AsyncIterator[Browser]:
    with _tempdir("teleus-bench-chromium-") as wrapper_dir:
        async with async_playwright() as p:
            executable = chromium_executable(opts, Path(wrapper_dir)) if opts else CHROMIUM
            browser = await p.chromium.launch(executable_path=executable, args=[*CHROMIUM_ARGS, HOST_NETWORK])
            try:
                yield browser
            finally:
                with contextlib.suppress(Exception):
                    await browser.close()


async def new_page(
    stack: AsyncExitStack, browser: Browser, viewport: dict[str, int], name: str, source_width: int | None = None
) -> Page:
    context: BrowserContext = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    stack.push_async_callback(_close_quietly, context)
    await context.add_init_script(script=reader_script(source_width))
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("crash", lambda _: log(f"page {name} crashed"))
    return page


async def _close_quietly(context: BrowserContext) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(context.close(), 15)


# ---- profiling (optional) ---------------------------------------------------------------------------------------


async def start_profile(stack: AsyncExitStack, pid: int, seconds: float, out: Path) -> Path:
    """py-spy samples the sender for the window (it pauses the target for each sample: profiled runs are for
    attribution, not for the CPU and latency figures)."""
    py_spy = str(Path(sys.executable).parent / "py-spy")
    raw = out.with_suffix(".txt")
    child = await procs.spawn(
        out.stem,
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            str(PROFILE_RATE_HZ),
            "--threads",
            "--format",
            "raw",
            "--output",
            str(raw),
        ],
        out.parent,
        ROOT,
    )
    stack.push_async_callback(child.stop, 5.0)
    return raw


PROFILE_RATE_HZ = 100
BOILERPLATE = (
    "threading.py",
    "runpy>",
    "asyncio/runners.py",
    "asyncio/base_events.py",
    "asyncio/events.py",
    "concurrent/futures/thread.py",
    "<module>",
    "main (bench/",
)


# Leaf frames where a thread waits (py-spy here does not tell idle threads apart): not CPU, left out.
IDLE_LEAVES = (
    "concurrent/futures/thread.py:81)",
    "(threading.py:3",  # Condition.wait / Event.wait
    "(selectors.py:468)",
    "Pacer.wait (",
    "(queue.py:",
)


def profile_summary(raw: Path, seconds: float, top: int = 25) -> dict[str, Any]:
    """py-spy's collapsed stacks as % of one core (non-idle samples ÷ (rate × seconds)): per thread, per function
    (self), and per function inside the event loop's thread (inclusive). Waiting leaves (IDLE_LEAVES) are left
    out; the figures approximate CPU, /proc's per-thread split (``sender_threads_cpu_pct``) is the measurement."""
    if not raw.exists():
        return {"error": f"no profile at {raw}"}
    own: dict[str, int] = {}
    main_inclusive: dict[str, int] = {}
    threads: dict[str, int] = {}
    total = 0
    for line in raw.read_text("utf-8", "replace").splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack_text.split(";")
        if any(idle in frames[-1] for idle in IDLE_LEAVES):
            continue
        total += count
        thread = frames[0].split(": ", 1)[-1]
        threads[thread] = threads.get(thread, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        if thread == "MainThread":
            for frame in set(frames[1:]):
                if not any(b in frame for b in BOILERPLATE):
                    main_inclusive[frame] = main_inclusive.get(frame, 0) + count
    scale = 100 / (PROFILE_RATE_HZ * seconds)

    def share(table: dict[str, int]) -> list[list[Any]]:
        return [[name, round(n * scale, 1)] for name, n in sorted(table.items(), key=lambda kv: -kv[1])[:top]]

    return {
        "busy_samples": total,
        "seconds": seconds,
        "threads_pct_of_one_core": share(threads),
        "self_pct_of_one_core": share(own),
        "event_loop_inclusive_pct_of_one_core": share(main_inclusive),
        "raw": str(raw.relative_to(ROOT)) if raw.is_relative_to(ROOT) else str(raw),
    }


# ---- the floor ---------------------------------------------------------------------------------------------------


async def floor_case(
    browser: Browser,
    resolution: str,
    codec: str,
    opts: Options,
    settle: asyncio.Task[Any] | None = None,
    audio: bool = False,
    tag: str = "",
    audio_split: bool = False,
) -> dict[str, Any]:
    """``settle``: a task (the teleus server starting meanwhile) that must be over before the window opens."""
    width, height = RESOLUTIONS[resolution]
    name = f"floor-{codec}{'-audio' if audio else ''}{'-audio-split' if audio_split else ''}-{resolution}{tag}"
    async with AsyncExitStack() as stack:
        sender = await procs.spawn(
            name,
            floor_command(opts, name, width, height, codec, audio=audio, audio_split=audio_split),
            opts.log_dir,
            ROOT,
        )
        stack.push_async_callback(sender.stop)
        ready = json.loads(await sender.first_line(90))
        url = ready["url"]
        http = aiohttp.ClientSession()
        stack.push_async_callback(http.close)

        async def sender_stats() -> Any:
            with contextlib.suppress(Exception):
                async with http.get(url + "stats", timeout=aiohttp.ClientTimeout(total=5)) as r:
                    return await r.json()
            return None

        page = await new_page(stack, browser, EXPERT_VIEWPORT, name)
        await page.goto(url)
        await wait_for_video(page, 45)
        if settle is not None:
            await asyncio.wait([settle], timeout=90)
        profile = None
        if opts.profile:
            profile = await start_profile(
                stack, sender.pid, opts.warmup + opts.duration, opts.log_dir / f"profile-{name}"
            )
        result = await measure(
            page,
            {"sender": sender.pid},
            opts.duration,
            opts.warmup,
            console=False,
            sender_stats=sender_stats,
            dump=opts.log_dir / f"samples-{name}.json",
        )
        result["path"] = f"bare aiortc {codec.upper()} sender → minimal page" + (
            " (+ silent audio, same stream)" if audio else " (+ silent audio, own stream)" if audio_split else ""
        )
        if profile is not None:
            await asyncio.sleep(2)
            result["profile"] = profile_summary(profile, opts.warmup + opts.duration)
        return result


# ---- teleus ------------------------------------------------------------------------------------------------------


@dataclass
class Teleus:
    """A running teleus server with a seeded site, sonographer, expert and edge device; owns its cleanup."""

    base: str
    server: procs.Child
    credential: str
    sono: aiohttp.ClientSession
    sono_csrf: str
    stack: AsyncExitStack

    @classmethod
    async def start(cls, name: str, opts: Options) -> Teleus:
        stack = AsyncExitStack()
        try:
            return await start_teleus(stack, name, opts)
        except BaseException:
            await stack.aclose()
            raise

    async def aclose(self) -> None:
        await self.stack.aclose()


async def close_world(task: asyncio.Task[Teleus]) -> None:
    """Stop a world that is starting (cancel) or started (close it)."""
    if not task.done():
        task.cancel()
    try:
        world = await task
    except BaseException:
        return
    await world.aclose()


async def api_login(session: aiohttp.ClientSession, base: str, username: str) -> str:
    async with session.post(base + "api/v1/auth/login", json={"username": username, "password": PASSWORD}) as r:
        if r.status != 200:
            raise RuntimeError(f"login {username}: {r.status} {await r.text()}")
        return str((await r.json())["csrf_token"])


async def api_post(session: aiohttp.ClientSession, base: str, path: str, body: dict[str, Any], csrf: str) -> Any:
    async with session.post(base + path, json=body, headers={"X-CSRF-Token": csrf}) as r:
        if r.status not in (200, 201):
            raise RuntimeError(f"POST {path}: {r.status} {await r.text()}")
        return await r.json()


async def start_teleus(
    stack: AsyncExitStack, name: str, opts: Options, host: str = "127.0.0.1", env: dict[str, str] | None = None
) -> Teleus:
    """A fresh server on a free port of ``host`` with a temp data dir: admin from the CLI, the rest over the REST
    API. ``env``: settings added to the server's environment (e.g. ``TELEUS_DICOM_PORT``)."""
    data_dir = Path(stack.enter_context(_tempdir(f"teleus-bench-{name}-")))
    password_file = Path(data_dir) / "admin-password"
    password_file.write_text(PASSWORD + "\n")
    await procs.run_command(
        [TELEUS, "user", "add", "admin", "--role", "admin", "--password-file", str(password_file),
         "--data-dir", str(data_dir)], ROOT,
    )  # fmt: skip
    password_file.unlink()
    port = procs.free_port()
    server = await procs.spawn(
        f"server-{name}",
        [TELEUS, "server", "--data-dir", str(data_dir), "--host", host, "--port", str(port)],
        opts.log_dir,
        ROOT,
        env=env,
    )
    stack.push_async_callback(server.stop)
    base = f"http://{host}:{port}/"
    admin = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    stack.push_async_callback(admin.close)
    deadline = time.monotonic() + 60
    while True:
        try:
            async with admin.get(base, timeout=aiohttp.ClientTimeout(total=2)) as r:
                if r.status == 200:
                    break
        except (aiohttp.ClientError, TimeoutError):
            pass
        if not server.running or time.monotonic() > deadline:
            raise RuntimeError(f"teleus server did not come up:\n{server.tail()}")
        await asyncio.sleep(0.2)
    csrf = await api_login(admin, base, "admin")
    site = await api_post(admin, base, "api/v1/sites", {"code": "bench", "name": "Bench clinic"}, csrf)
    for username, role in (("sono", "sonographer"), ("expert", "expert")):
        body = {"username": username, "name": f"Bench {role}", "role": role, "password": PASSWORD,
                "must_change_password": False}  # fmt: skip
        if role == "sonographer":
            body["site_id"] = site["id"]
        user = await api_post(admin, base, "api/v1/users", body, csrf)
        if role == "expert":  # an expert sees the sites they serve (docs/SECURITY.md §2)
            await api_post(admin, base, f"api/v1/users/{user['id']}/sites", {"site_id": site["id"]}, csrf)
    device = await api_post(admin, base, "api/v1/devices", {"site_id": site["id"], "name": "bench edge"}, csrf)
    sono = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    stack.push_async_callback(sono.close)
    sono_csrf = await api_login(sono, base, "sono")
    return Teleus(base, server, str(device["credential"]), sono, sono_csrf, stack)


@contextlib.contextmanager
def _tempdir(prefix: str) -> Any:
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def end_consultation(world: Teleus, cid: str) -> None:
    """The sonographer ends the consultation, so a later case's edge does not join it again."""
    with contextlib.suppress(Exception):
        await api_post(world.sono, world.base, f"api/v1/consultations/{cid}/end", {}, world.sono_csrf)


async def page_login(page: Page, base: str, username: str) -> None:
    await page.goto(base + "#/login")
    await page.fill("#login-form [name=username]", username)
    await page.fill("#login-form [name=password]", PASSWORD)
    await page.click("#login-form [type=submit]")
    await page.wait_for_function("() => !location.hash.startsWith('#/login')", timeout=30_000)


async def teleus_case(
    browser: Browser,
    resolution: str,
    opts: Options,
    world_task: asyncio.Task[Teleus],
    *,
    duration: float,
    slice_seconds: float | None = None,
    pointer: bool = True,
    on_slice: Any = None,
    tag: str = "",
    edge_args: Sequence[str] = (),
) -> dict[str, Any]:
    bare = tuple(edge_args) == BARE_EDGE
    name = f"teleus-{resolution}" + ("-soak" if slice_seconds else "") + ("-bare" if bare else "") + tag
    async with AsyncExitStack() as stack:
        world = await world_task
        log(f"  server up at {world.base}")
        edge_dir = Path(stack.enter_context(_tempdir("teleus-bench-edge-")))
        edge = await procs.spawn(
            f"edge-{name}",
            edge_command(opts, f"edge-{name}", world.base, resolution, edge_dir, edge_args),
            opts.log_dir,
            ROOT,
            env={"TELEUS_DEVICE_CREDENTIAL": world.credential},  # never on its argv
        )
        stack.push_async_callback(edge.stop)
        consultation = await api_post(
            world.sono,
            world.base,
            "api/v1/consultations",
            {
                "exam_type": "thyroid",
                "patient": {"id": "BENCH-1", "name": "BENCH^PATIENT", "sex": "F", "birth_date": ""},
            },
            world.sono_csrf,
        )
        cid = consultation["id"]
        stack.push_async_callback(end_consultation, world, cid)
        log(f"  consultation {cid} requested; edge starting")

        expert = await new_page(stack, browser, EXPERT_VIEWPORT, f"expert-{name}")
        await page_login(expert, world.base, "expert")
        row = expert.locator(f"[data-consultation-id='{cid}']")
        await row.wait_for(timeout=30_000)
        await row.locator("[data-action=join]").click()
        log("  expert joined; waiting for stamped video")
        try:
            await wait_for_video(expert, 90)
        except Exception as exc:
            raise RuntimeError(f"{exc}\nedge log:\n{edge.tail()}") from exc
        await wait_js(expert, "() => window.teleus.live.snapshot().role === 'expert'", 10, "the expert role")

        cursor = {"t": time.monotonic()}

        async def edge_stats() -> Any:
            """The edge's latest report, with the loop lags of every report since the previous call."""
            now = time.monotonic()
            lags = [v for t, r in edge.reports if cursor["t"] < t <= now for v in r.get("loop_lags_ms", [])]
            cursor["t"] = now
            return {**(edge.report or {}), "loop_lags_ms": lags}

        pids = {"edge": edge.pid, "server": world.server.pid}
        profile = None
        if opts.profile:
            profile = await start_profile(stack, edge.pid, opts.warmup + duration, opts.log_dir / f"profile-{name}")
        result = await measure(
            expert,
            pids,
            duration,
            opts.warmup,
            console=True,
            sender_stats=edge_stats,
            slice_seconds=slice_seconds,
            on_slice=on_slice,
            dump=opts.log_dir / f"samples-{name}.json",
        )
        result["path"] = "teleus edge agent → teleus server signaling → expert console"
        if profile is not None:
            await asyncio.sleep(2)
            result["profile"] = profile_summary(profile, opts.warmup + duration)
        if pointer and opts.pointer_moves > 0:
            try:
                result["pointer"] = await pointer_case(stack, browser, world, cid, expert, edge, opts)
            except Exception as exc:  # the video figures stand on their own
                result["pointer"] = {"error": f"{type(exc).__name__}: {exc}"}
        return result


async def pointer_case(
    stack: AsyncExitStack, browser: Browser, world: Teleus, cid: str, expert: Page, edge: procs.Child, opts: Options
) -> dict[str, Any]:
    """The expert moves the pointer N times at a fixed rate; each move is timed to the sonographer's page."""
    log(f"  pointer: {opts.pointer_moves} moves at {opts.pointer_hz:g} Hz to the sonographer's page")
    sono = await new_page(stack, browser, SONO_VIEWPORT, "sono")
    await page_login(sono, world.base, "sono")
    await sono.goto(world.base + f"#/c/{cid}")
    open_live = "() => window.teleus && window.teleus.live && window.teleus.live.snapshot().channels.live === 'open'"
    await wait_js(sono, open_live, 60, "the sonographer's live channel")
    await wait_js(expert, open_live, 10, "the expert's live channel")
    await wait_js(sono, "() => window.teleus.live.snapshot().framesDecoded > 30", 30, "video on the sonographer's page")
    await expert.click("[data-tool=pointer]")
    await js(expert, "() => window.__bench.trackMoves()")
    await js(sono, "() => window.__bench.trackPointers()")
    rect = await js(expert, "() => window.teleus.live.videoContentRect()")
    for page in (expert, sono):  # forget the pings so far: keep those of this phase
        await js(page, "() => window.__bench.drain()")
    cpu0, t0 = procs.cpu_seconds(edge.pid), time.monotonic()
    chromium0, host0, tree0 = procs.chromium_cpu_seconds(), procs.host_jiffies(), procs.tree_cpu_seconds()
    rng = random.Random(1729)
    targets: list[tuple[float, float]] = []
    previous = (0.5, 0.5)
    for i in range(opts.pointer_moves):
        x, y = previous
        for _ in range(100):
            x, y = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)
            if math.hypot(x - previous[0], y - previous[1]) > 0.05:
                break
        previous = (x, y)
        px, py = rect["left"] + x * rect["width"], rect["top"] + y * rect["height"]
        await asyncio.wait_for(expert.mouse.move(px, py), EVAL_TIMEOUT)
        targets.append((px, py))
        delay = t0 + (i + 1) / opts.pointer_hz - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    await asyncio.sleep(1.0)
    cpu1, t1 = procs.cpu_seconds(edge.pid), time.monotonic()
    phase_lags = [v for t, r in edge.reports if t0 < t <= t1 + 2 for v in r.get("loop_lags_ms", [])]
    chromium1, host1, tree1 = procs.chromium_cpu_seconds(), procs.host_jiffies(), procs.tree_cpu_seconds()
    pings = [p for page in (expert, sono) for p in (await js(page, "() => window.__bench.drain()"))["pings"]]
    moves = await js(expert, "() => window.__bench.moves")
    sends = await js(expert, "() => window.__bench.sends")
    received = await js(sono, "() => window.__bench.pointers")
    latencies: list[float] = []
    to_send: list[float] = []
    to_edge: list[float] = []
    edge_to_page: list[float] = []
    unmatched_moves = 0
    move_index = 0
    for px, py in targets:
        event = None
        for j in range(move_index, len(moves)):
            if abs(moves[j]["x"] - px) <= 1.0 and abs(moves[j]["y"] - py) <= 1.0:
                event, move_index = moves[j], j + 1
                break
        if event is None:
            unmatched_moves += 1
            continue
        ex = (event["x"] - rect["left"]) / rect["width"]
        ey = (event["y"] - rect["top"]) / rect["height"]

        def near(x: Any, y: Any, ex: float = ex, ey: float = ey) -> bool:
            return x is not None and y is not None and abs(x - ex) < 0.004 and abs(y - ey) < 0.004

        for sent in sends:
            message = json.loads(sent["data"])
            if sent["t"] >= event["t"] - 1 and near(message.get("x"), message.get("y")):
                to_send.append(sent["t"] - event["t"])
                break
        for r in received:
            if r["visible"] is not False and r["t"] >= event["t"] - 1 and near(r["x"], r["y"]):
                latencies.append(r["t"] - event["t"])
                if r.get("at") is not None:
                    to_edge.append(r["at"] - event["t"])
                    edge_to_page.append(r["t"] - r["at"])
                break
    lat = st.dist(latencies)
    return {
        "moves": len(targets),
        "rate_hz": opts.pointer_hz,
        "received": len(latencies),
        "lost": len(targets) - len(latencies) - unmatched_moves,
        "moves_not_seen_by_page": unmatched_moves,
        "latency_ms": lat,
        "breakdown_ms": {
            "move_to_send": st.dist(to_send),
            "move_to_edge_relay": st.dist(to_edge),
            "edge_relay_to_page": st.dist(edge_to_page),
        },
        "edge_loop_lag_ms_same_phase": st.dist(phase_lags, 2),
        "datachannel_ping_ms_same_phase": {
            "page_to_edge": st.dist((p["edgeMs"] - p["t"] for p in pings), 2),
            "edge_to_page": st.dist((p["received"] - p["edgeMs"] for p in pings), 2),
        },
        "cpu_pct_of_one_core_same_phase": {
            "edge_two_viewers": st.rnd((cpu1 - cpu0) / (t1 - t0) * 100)
            if cpu0 is not None and cpu1 is not None
            else None,
            "chromium_two_pages": st.rnd((chromium1 - chromium0) / (t1 - t0) * 100),
            "host_busy_of_all_cores": st.rnd((host1[0] - host0[0]) / max(1, host1[1] - host0[1]) * 100),
            "other_processes": st.rnd(
                max(0.0, (host1[0] - host0[0]) / procs.CLOCK_TICKS - (tree1 - tree0)) / (t1 - t0) * 100
            ),
        },
        "note": "expert pointermove (event.timeStamp) → sonographer's page receives it (pointerReceivedAt); "
        "both pages in one browser, clock performance.timeOrigin + performance clock; move_to_send is the "
        "console's requestAnimationFrame batching; the edge relay time is the pointer's `at` (edge wall clock)",
    }


# ---- targets and the report -----------------------------------------------------------------------------------------


def check(name: str, value: float | None, op: str, limit: float, unit: str) -> dict[str, Any]:
    ok = None if value is None else (value <= limit if op == "<=" else value >= limit)
    return {"target": f"{name} {op} {limit:g}{unit}", "value": value, "pass": ok}


def case_ratios(floor: dict[str, Any] | None, teleus: dict[str, Any] | None) -> dict[str, Any]:
    if not floor or not teleus or "error" in floor or "error" in teleus:
        return {}
    f, t = floor["latency_ms"]["glass_to_glass"], teleus["latency_ms"]["glass_to_glass"]
    fc, tc = floor["cpu_pct_of_one_core"].get("sender"), teleus["cpu_pct_of_one_core"].get("edge")
    return {
        "latency_p50": st.ratio(t["p50"], f["p50"]),
        "latency_p95": st.ratio(t["p95"], f["p95"]),
        "sender_cpu": st.ratio(tc, fc),
        "against": "floor_h264",
    }


def targets_for(report: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cases = report.get("cases", {})
    c720 = cases.get("720p", {})
    teleus = c720.get("teleus")
    if teleus and "error" not in teleus:
        p95 = teleus["latency_ms"]["glass_to_glass"]["p95"]
        out.append(check("720p30 teleus glass-to-glass p95", p95, "<=", TARGET_P95_MS, " ms"))
        ratio = c720.get("ratios", {}).get("latency_p95")
        out.append(check("720p30 teleus p95 / floor p95", ratio, "<=", TARGET_FLOOR_RATIO, "×"))
        out.append(
            check(
                "720p30 edge CPU (one core = 100 %)",
                teleus["cpu_pct_of_one_core"].get("edge"),
                "<=",
                TARGET_EDGE_CPU_PCT,
                " %",
            )
        )
        out.append(check("720p30 received fps", teleus["inbound"].get("fps_decoded"), ">=", TARGET_FPS, " fps"))
        pointer = teleus.get("pointer") or {}
        if "latency_ms" in pointer:
            out.append(check("pointer p95", pointer["latency_ms"]["p95"], "<=", TARGET_POINTER_P95_MS, " ms"))
    soak = report.get("soak")
    if soak and "error" not in soak:
        growth = soak.get("growth", {})
        out.append(check("soak: min per-minute fps", growth.get("min_fps"), ">=", TARGET_FPS, " fps"))
        out.append(
            check("soak: last − first minute p95", growth.get("p95_last_minus_first_ms"), "<=", TARGET_GROWTH_MS, " ms")
        )
        out.append(
            check(
                "soak: per-minute p95 slope",
                growth.get("p95_slope_ms_per_min"),
                "<=",
                TARGET_SLOPE_MS_PER_MIN,
                " ms/min",
            )
        )
        out.append(
            check(
                "soak: glass-to-glass p95 (whole run)",
                soak["latency_ms"]["glass_to_glass"]["p95"],
                "<=",
                TARGET_P95_MS,
                " ms",
            )
        )
    # a verdict from a window someone else's load ran through says little: name those windows
    noisy = [name for name, c in c720.items() if isinstance(c, dict) and c.get("noisy")]
    for t in out:
        if not t["target"].startswith("soak"):
            t["noisy_windows"] = noisy or None
    return out


def human_summary(report: dict[str, Any]) -> str:
    lines = [""]
    header = (
        f"{'case':<24}{'fps':>6}{'g2g p50':>9}{'p95':>7}{'max':>7}{'sender CPU':>12}{'Mb/s':>7}{'lost':>6}"
        f"{'cap→recv p50':>14}{'recv→disp p50':>15}{'sync+':>7}{'loop lag p95':>14}{'others':>8}"
    )
    for resolution, cases in report.get("cases", {}).items():
        lines.append(f"== {resolution} ==")
        lines.append(header)
        for name in ("floor_h264", "floor_vp8", "floor_h264_audio", "floor_h264_audio_split", "teleus"):
            c = cases.get(name)
            if not c:
                continue
            if "error" in c:
                lines.append(f"{name:<24}ERROR {c['error'].splitlines()[0][:90]}")
                continue
            g = c["latency_ms"]["glass_to_glass"]
            cpu = c["cpu_pct_of_one_core"].get("edge", c["cpu_pct_of_one_core"].get("sender"))
            inbound = c["inbound"]
            lines.append(
                f"{name:<24}{inbound.get('fps_decoded') or 0:>6.1f}{g['p50'] or 0:>9.1f}{g['p95'] or 0:>7.1f}"
                f"{g['max'] or 0:>7.1f}{cpu or 0:>11.1f}%{inbound.get('bitrate_mbps') or 0:>7.2f}"
                f"{c['frames']['frames_lost'] if c['frames']['frames_lost'] is not None else '?':>6}"
                f"{c['latency_ms']['capture_to_received']['p50'] or 0:>14.1f}"
                f"{c['latency_ms']['received_to_display']['p50'] or 0:>15.1f}"
                f"{inbound.get('jitter_buffer_sync_added_ms') or 0:>7.1f}"
                f"{c['sender_loop_lag_ms']['p95'] or 0:>14.1f}"
                f"{c['cpu_pct_of_one_core'].get('other_processes') or 0:>7.0f}%"
            )
            if name == "teleus":
                pe = c.get("production_estimate", {})
                lines.append(
                    f"  console estimate p50/p95 {pe.get('console_p50_ms')}/{pe.get('console_p95_ms')} ms vs "
                    f"stamped {pe.get('stamped_p50_ms_same_10s')}/{pe.get('stamped_p95_ms_same_10s')} ms"
                )
                p = c.get("pointer", {})
                if "latency_ms" in p:
                    b = p["breakdown_ms"]
                    lines.append(
                        f"  pointer p50/p95 {p['latency_ms']['p50']}/{p['latency_ms']['p95']} ms "
                        f"({p['received']}/{p['moves']} received; p50 move→send {b['move_to_send']['p50']}, "
                        f"move→edge {b['move_to_edge_relay']['p50']}, edge→page {b['edge_relay_to_page']['p50']}; "
                        f"host busy {p['cpu_pct_of_one_core_same_phase']['host_busy_of_all_cores']}% of all cores)"
                    )
        if cases.get("ratios"):
            r = cases["ratios"]
            lines.append(f"  teleus/floor: p50 ×{r['latency_p50']}  p95 ×{r['latency_p95']}  CPU ×{r['sender_cpu']}")
    soak = report.get("soak")
    if soak and "error" not in soak:
        lines.append("== soak (720p teleus) ==")
        for m in soak.get("minutes", []):
            lines.append(
                f"  minute {m['minute']}: fps {m['fps']}  p50 {m['p50']}  p95 {m['p95']}  lost {m['frames_lost']}  "
                f"edge CPU {m['edge_cpu_pct']}%  edge RSS {m['edge_rss_mb']} MB  others {m['other_processes_pct']}%"
            )
    lines.append(
        "(sender CPU: % of one core; lost: stamped frames never presented; sync+: jitter-buffer delay Chromium adds"
        " beyond network jitter (A/V sync); others: CPU of processes outside the bench, % of one core)"
    )
    lines.append("== targets ==")
    for t in report.get("targets", []):
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[t["pass"]]
        note = f"  (noisy: {', '.join(t['noisy_windows'])})" if t.get("noisy_windows") else ""
        lines.append(f"  [{verdict}] {t['target']}: {t['value']}{note}")
    for e in report.get("errors", []):
        lines.append(f"  ERROR {e}")
    return "\n".join(lines)


def soak_summary(result: dict[str, Any]) -> dict[str, Any]:
    minutes = []
    for s in result.get("slices", []):
        g = s["latency_ms"]["glass_to_glass"]
        minutes.append(
            {
                "minute": s["minute"],
                "fps": s["inbound"].get("fps_decoded"),
                "fps_stamped": s["fps_stamped"],
                "p50": g["p50"],
                "p95": g["p95"],
                "max": g["max"],
                "frames_missing": s["frames"]["frames_missing"],
                "edge_cpu_pct": s["cpu_pct_of_one_core"].get("edge"),
                "edge_rss_mb": s["rss_mb"].get("edge"),
                "console_p95": (s.get("production_estimate") or {}).get("console_p95_ms"),
                "bitrate_mbps": s["inbound"].get("bitrate_mbps"),
                "host_busy_pct": s["cpu_pct_of_one_core"].get("host_busy_of_all_cores"),
                "other_processes_pct": s["cpu_pct_of_one_core"].get("other_processes"),
                "frames_lost": s["frames"]["frames_lost"],
                "capture_to_received_p50": s["latency_ms"]["capture_to_received"]["p50"],
                "received_to_display_p50": s["latency_ms"]["received_to_display"]["p50"],
                "jitter_buffer_target_ms": s["inbound"].get("jitter_buffer_target_ms"),
                "jitter_buffer_sync_added_ms": s["inbound"].get("jitter_buffer_sync_added_ms"),
                "edge_loop_lag_p95": s["sender_loop_lag_ms"]["p95"],
            }
        )
    full = [m for m in minutes if m["p95"] is not None]
    growth: dict[str, Any] = {}
    if full:
        growth = {
            "min_fps": min((m["fps"] for m in full if m["fps"] is not None), default=None),
            "p95_first_minute_ms": full[0]["p95"],
            "p95_last_minute_ms": full[-1]["p95"],
            "p95_last_minus_first_ms": st.rnd(full[-1]["p95"] - full[0]["p95"]),
            "p95_slope_ms_per_min": st.trend_ms_per_minute(
                [m["minute"] * 60_000 for m in full], [m["p95"] for m in full]
            ),
            "p50_slope_ms_per_min": st.trend_ms_per_minute(
                [m["minute"] * 60_000 for m in full], [m["p50"] for m in full]
            ),
            "edge_rss_first_last_mb": [full[0]["edge_rss_mb"], full[-1]["edge_rss_mb"]],
        }
    out = {k: v for k, v in result.items() if k != "slices"}
    out["minutes"] = minutes
    out["growth"] = growth
    return out


async def run(opts: Options) -> dict[str, Any]:
    started = dt.datetime.now(dt.UTC)
    report: dict[str, Any] = {
        "bench": "teleus live video: floor vs teleus",
        "started": started.isoformat(timespec="seconds"),
        "options": {
            "duration_s": opts.duration,
            "warmup_s": opts.warmup,
            "resolutions": opts.resolutions,
            "vp8": opts.vp8,
            "pointer_moves": opts.pointer_moves,
            "pointer_hz": opts.pointer_hz,
            "soak_s": opts.soak,
            "quick": opts.quick,
            "profile": opts.profile,
            "av_sync_check": opts.av_sync,
            "noise_limit_pct": opts.noise_limit,
            "retries": opts.retries,
            "wait_quiet_s": opts.wait_quiet,
            "pin": {"sender": PIN_CPUS["sender"], "chromium": PIN_CPUS["chromium"], "server": None}
            if opts.pin
            else None,
            "fps": FPS,
            "source": SOURCE,
        },
        "host": {"cpus": _cpus(), "loadavg_start": procs.loadavg(), "python": platform.python_version()},
        "logs": str(opts.log_dir.relative_to(ROOT)),
        "cases": {},
        "errors": [],
    }
    report["host"].update(_versions())
    report["code"] = await _git_state()
    try:
        await _run_cases(opts, report)
    except asyncio.CancelledError:
        # SIGTERM/SIGINT: the cases' own clean-up has run on the way out; keep what was measured
        report["errors"].append("interrupted (SIGTERM or SIGINT): the report is partial")
    report["host"]["loadavg_end"] = procs.loadavg()
    report["commands"] = opts.commands
    report["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    report["targets"] = targets_for(report)
    return report


async def _run_cases(opts: Options, report: dict[str, Any]) -> None:
    async with chromium(opts) as browser:
        report["host"]["chromium"] = browser.version
        if opts.soak:
            log(f"soak: 720p teleus for {opts.soak:.0f} s (+{opts.warmup:.0f} s warm-up)")

            def on_slice(s: dict[str, Any]) -> None:
                g = s["latency_ms"]["glass_to_glass"]
                log(
                    f"  minute {s['minute']}: fps {s['inbound'].get('fps_decoded')} p50 {g['p50']} p95 {g['p95']}"
                    f" edge CPU {s['cpu_pct_of_one_core'].get('edge')}%"
                )

            if opts.wait_quiet:
                await wait_until_quiet(opts.wait_quiet, opts.noise_limit)
            world_task = asyncio.create_task(Teleus.start("soak", opts))
            try:
                result = await teleus_case(
                    browser,
                    "720p",
                    opts,
                    world_task,
                    duration=opts.soak,
                    slice_seconds=60.0,
                    pointer=False,
                    on_slice=on_slice,
                )
                report["soak"] = soak_summary(result)
            except Exception as exc:
                report["soak"] = {"error": _error_text(exc)}
                report["errors"].append(f"soak: {_error_text(exc).splitlines()[0]}")
            finally:
                await close_world(world_task)
        else:
            for resolution in opts.resolutions:
                cases: dict[str, Any] = {}
                report["cases"][resolution] = cases
                # the teleus server starts (and sits idle) while the floor runs; the window opens after it is up
                world_task = asyncio.create_task(Teleus.start(resolution, opts))
                try:
                    await _resolution(browser, resolution, opts, world_task, cases, report["errors"])
                finally:
                    await close_world(world_task)
                cases["ratios"] = case_ratios(cases.get("floor_h264"), cases.get("teleus"))


async def _resolution(
    browser: Browser,
    resolution: str,
    opts: Options,
    world_task: asyncio.Task[Teleus],
    cases: dict[str, Any],
    errors: list[str],
) -> None:
    plan: list[tuple[str, str | None]] = [("floor_h264", "h264")]
    if opts.vp8:
        plan.append(("floor_vp8", "vp8"))
    if opts.av_sync:
        plan.append(("floor_h264_audio", "h264"))
        plan.append(("floor_h264_audio_split", "h264"))
    if "teleus_bare" in opts.cases:  # only on request (bench/qc.py): recording and live QC off
        plan.append(("teleus_bare", None))
    plan.append(("teleus", None))
    for name, codec in plan:
        if opts.cases and name not in opts.cases:
            continue
        attempts: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        for attempt in range(1 + opts.retries):
            tag = f"-try{attempt + 1}" if opts.retries else ""
            if opts.wait_quiet:
                await wait_until_quiet(opts.wait_quiet, opts.noise_limit)
            log(f"{resolution} {name}{tag}: {opts.warmup:.0f} s warm-up + {opts.duration:.0f} s")
            case_started = time.monotonic()
            try:
                if name == "teleus_bare":
                    result = await teleus_case(browser, resolution, opts, world_task, duration=opts.duration,
                                               tag=tag, pointer=False, edge_args=BARE_EDGE)  # fmt: skip
                elif codec is None:
                    result = await teleus_case(browser, resolution, opts, world_task, duration=opts.duration, tag=tag,
                                               edge_args=opts.edge_args)  # fmt: skip
                else:
                    result = await floor_case(
                        browser,
                        resolution,
                        codec,
                        opts,
                        settle=world_task,
                        audio=name.endswith("_audio"),
                        audio_split=name.endswith("_audio_split"),
                        tag=tag,
                    )
            except Exception as exc:
                cases[name] = {"error": _error_text(exc)}
                errors.append(f"{resolution} {name}: {_error_text(exc).splitlines()[0]}")
                log(f"  → ERROR {_error_text(exc)}")
                best = None
                break
            result["wall_seconds"] = round(time.monotonic() - case_started, 1)
            noise = result["cpu_pct_of_one_core"].get("other_processes") or 0.0
            g = result["latency_ms"]["glass_to_glass"]
            attempts.append({"other_processes": noise, "p50": g["p50"], "p95": g["p95"]})
            log(
                f"  → p50 {g['p50']} p95 {g['p95']} ms, fps {result['inbound'].get('fps_decoded')}, "
                f"CPU {result['cpu_pct_of_one_core']}"
            )
            best_noise = (best or {}).get("cpu_pct_of_one_core", {}).get("other_processes")
            if best is None or noise < (best_noise if best_noise is not None else float("inf")):
                best = result
            if noise <= opts.noise_limit:
                break
            log(f"  noisy window: other processes used {noise}% of a core (limit {opts.noise_limit}%)")
        if best is not None:
            best["noisy"] = (best["cpu_pct_of_one_core"].get("other_processes") or 0.0) > opts.noise_limit
            if len(attempts) > 1:
                best["attempts"] = attempts
            cases[name] = best


async def wait_until_quiet(within: float, limit: float, probe: float = 3.0, needed: int = 3) -> None:
    """Wait (up to ``within`` s) until other processes use less than ``limit`` % of a core in ``needed``
    consecutive probes of ``probe`` s (one quiet probe between two test runs is not a quiet machine)."""
    deadline = time.monotonic() + within
    quiet = 0
    while True:
        host0, tree0, t0 = procs.host_jiffies(), procs.tree_cpu_seconds(), time.monotonic()
        await asyncio.sleep(probe)
        host1, tree1, t1 = procs.host_jiffies(), procs.tree_cpu_seconds(), time.monotonic()
        others = max(0.0, (host1[0] - host0[0]) / procs.CLOCK_TICKS - (tree1 - tree0)) / (t1 - t0) * 100
        quiet = quiet + 1 if others <= limit else 0
        if quiet >= needed:
            return
        if time.monotonic() >= deadline:
            log(f"  still busy after {within:.0f} s (others {others:.0f}% of a core): going ahead")
            return
        if quiet == 0:
            log(f"  waiting for a quiet machine: others use {others:.0f}% of a core")


async def _git_state() -> dict[str, Any]:
    """Which teleus was measured: the commit and whether the work tree had changes (others edit as we run)."""
    out: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        out["commit"] = (await procs.run_command(["git", "rev-parse", "HEAD"], ROOT, 10)).strip()
        status = await procs.run_command(
            ["git", "status", "--porcelain", "--", "edge_capture", "signaling_server", "expert_console"], ROOT, 10
        )
        out["uncommitted_product_files"] = [line[3:] for line in status.splitlines() if line.strip()]
    return out


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {}
    for package in ("aiortc", "av", "aioice", "playwright"):
        with contextlib.suppress(Exception):
            out[package] = version(package)
    return out


def parse(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.live", description="teleus live video against the floor")
    p.add_argument("--duration", type=float, default=20.0, help="measuring window per case, s (default 20)")
    p.add_argument("--warmup", type=float, default=5.0, help="warm-up before each window, s (default 5)")
    p.add_argument("--resolutions", default="720p,1080p", help="comma-separated: 720p,1080p")
    p.add_argument("--no-vp8", action="store_true", help="skip the VP8 floor")
    p.add_argument("--pointer-moves", type=int, default=100)
    p.add_argument("--pointer-hz", type=float, default=10.0)
    p.add_argument("--soak", type=float, default=None, metavar="S", help="one S-second 720p teleus run, per minute")
    p.add_argument("--quick", action="store_true", help="one short 720p floor+teleus pair (smoke check)")
    p.add_argument("--profile", action="store_true", help="py-spy the sender/edge during each window")
    p.add_argument("--cases", default="", help="only these cases (floor_h264, floor_vp8, floor_h264_audio, teleus)")
    p.add_argument(
        "--noise-limit",
        type=float,
        default=20.0,
        help="a window in which other processes used more than this %% of a core is noisy (default 20)",
    )
    p.add_argument("--retries", type=int, default=0, help="rerun a noisy case up to N times, keep the quietest")
    p.add_argument("--edge-args", default="", help="more `teleus edge` options for the teleus case, space-separated")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each case, wait up to S s for a quiet machine",
    )
    p.add_argument(
        "--pin",
        action="store_true",
        help="run the edge and the floor sender under `taskset -c 0` and Chromium under `taskset -c 1`",
    )
    p.add_argument(
        "--av-sync-check",
        action="store_true",
        help="add a floor case with a silent audio track in the video's stream (what lip sync costs)",
    )
    a = p.parse_args(argv)
    resolutions = [r.strip() for r in a.resolutions.split(",") if r.strip()]
    for r in resolutions:
        if r not in RESOLUTIONS:
            p.error(f"unknown resolution {r!r} (720p, 1080p)")
    opts = Options(
        duration=a.duration,
        warmup=a.warmup,
        resolutions=resolutions,
        vp8=not a.no_vp8,
        pointer_moves=a.pointer_moves,
        pointer_hz=a.pointer_hz,
        soak=a.soak,
        profile=a.profile,
        quick=a.quick,
        av_sync=a.av_sync_check,
        retries=max(0, a.retries),
        noise_limit=a.noise_limit,
        wait_quiet=max(0.0, a.wait_quiet),
        cases=[c.strip() for c in a.cases.split(",") if c.strip()],
        edge_args=a.edge_args.split(),
        pin=a.pin,
    )
    if a.quick:
        opts.duration, opts.warmup, opts.resolutions, opts.vp8 = (
            min(a.duration, 8.0),
            min(a.warmup, 3.0),
            ["720p"],
            False,
        )
        opts.pointer_moves = min(a.pointer_moves, 30)
    if opts.duration <= 0 or opts.warmup < 0 or opts.pointer_moves < 0 or opts.pointer_hz <= 0:
        p.error("durations, moves and rates must be positive")
    if opts.soak is not None and opts.soak < 60:
        p.error("--soak needs at least 60 s (it reports per minute)")
    return opts


async def _interruptible(opts: Options) -> dict[str, Any]:
    """run(), with SIGTERM and SIGINT cancelling it cleanly (children stopped, a partial report written)."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    inner = asyncio.create_task(run(opts))
    try:
        return await asyncio.shield(inner)
    except asyncio.CancelledError:
        log("interrupted: stopping the case and writing what was measured")
        inner.cancel()
        return await inner


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    stamp_name = time.strftime("%Y%m%d-%H%M%S")
    kind = "live-soak" if opts.soak else "live"
    opts.log_dir = OUT_DIR / f"{kind}-{stamp_name}-logs"
    opts.log_dir.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(_interruptible(opts))
    text = json.dumps(report, indent=2, ensure_ascii=False)
    out = OUT_DIR / f"{kind}-{stamp_name}.json"
    out.write_text(text + "\n")
    print(text)
    print(human_summary(report), file=sys.stderr)
    log(f"wrote {out.relative_to(ROOT)}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
