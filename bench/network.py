"""The live path through an impaired link: loss, delay and bottlenecks built from network namespaces.

    python -m bench.network                                  # every case, 10 s clean, 40 s impaired, 40 s after
    python -m bench.network --cases loss1,drop6to1 --impaired 60

The real parts, as in production across a network: the teleus server and headless Chromium (the expert's console,
with bench/reader.js reading the stamped frames) on this host, the edge agent with stamped frames
(``python -m bench.stamped_edge``, synthetic thyroid 720p30, as shipped: recording and live QC on) in a network
namespace of its own, joined to the host by a veth link (bench/netlab.py; needs root). The link's impairments are
netlab's: random loss on the wire (nftables, each direction), a rate cap (``tc tbf``, each direction, 100 ms of
queue) and a one-way delay (this kernel has no netem: when a chosen case has a delay, the link is a userspace wire,
``bench/netdelay.py``, that holds every frame for the case's delay each way, all through the case, from before the
call is made; other cases on that run get the same wire at 0 ms).

Each case is a fresh edge and consultation: ``warmup`` s of video, then a per-second timeline of three windows:
``baseline`` (the clean link; the drop case's link is already capped at 6 Mb/s), ``impaired`` (the impairment set
at its first instant) and ``recovery`` (the impairment lifted). Every second the bench reads the page's
``getStats()`` (frames decoded, bytes received, packets lost, NACKs, PLIs, Chromium's ``freezeCount`` and
``totalFreezesDuration``), the stamped frames shown since the last second (glass-to-glass latency) and the edge's
own latest report (every 0.5 s: the REMB-derived target of the page's sender and the bitrate the shared encoder
runs at). A freeze is a gap of more than 1 s between two stamped frames shown (or between the last one and the end
of the timeline). JSON on stdout and in ``bench/out/network-<time>.json``; the edge's and server's logs in
``bench/out/network-<time>-logs/``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from bench import live, netlab, procs
from bench import stats as st
from tests.e2e.browser import ARGS, CHROMIUM

# Chromium reaches the server over the lab's link address: no loopback flag needed.
CHROMIUM_ARGS = [a for a in ARGS if a != "--allow-loopback-in-peer-connection"]
FREEZE_MS = 1000.0  # a gap between two frames shown longer than this is a freeze
EDGE_REPORT_SECONDS = 0.5

# The targets (docs: bench/README.md, "bench/network.py").
TARGET_FPS = 29.0
TARGET_FREEZES_PER_MIN = 1.0
TARGET_G2G_OVER_ONE_WAY_MS = 120.0  # glass-to-glass p95 ≤ one-way delay + this
TARGET_FOLLOW_S = 2.0  # the encoder under the bottleneck within this long
TARGET_LATENCY_MS = 200.0  # and latency back under this …
TARGET_SETTLE_S = 5.0  # … within this long


@dataclass(frozen=True)
class Case:
    """One impairment: ``loss`` percent each way, or a ``rate`` cap (Mb/s, each way) over a ``base_rate`` link.

    ``delay_ms`` (one way, each direction) is not an impairment of the middle window: it is on the link for the
    whole case, from before the call is made, as a far clinic's link would be.
    """

    name: str
    title: str
    loss: float = 0.0
    rate: float | None = None
    base_rate: float | None = None
    delay_ms: float = 0.0

    def impair(self, ns: netlab.Namespace) -> None:
        if self.loss:
            ns.loss(self.loss)
        if self.rate is not None:
            ns.rate(self.rate)

    def lift(self, ns: netlab.Namespace) -> None:
        ns.loss(0)
        ns.rate(self.base_rate)


CASES = {
    c.name: c
    for c in (
        Case("loss1", "1 % random loss each way", loss=1.0),
        Case("loss5", "5 % random loss each way", loss=5.0),
        Case("rate2", "a 2 Mb/s bottleneck", rate=2.0),
        Case("rate1", "a 1 Mb/s bottleneck", rate=1.0),
        Case("drop6to1", "6 Mb/s, dropping to 1 Mb/s mid-session", rate=1.0, base_rate=6.0),
        Case("rtt100", "a 100 ms round trip (50 ms each way) all through", delay_ms=50.0),
        Case("rtt100loss1", "a 100 ms round trip all through, 1 % random loss each way", loss=1.0, delay_ms=50.0),
        Case("rtt300", "a 300 ms round trip (150 ms each way) all through", delay_ms=150.0),
    )
}
PHASES = ("baseline", "impaired", "recovery")


@dataclass
class Options:
    cases: list[str] = field(default_factory=lambda: list(CASES))
    baseline: float = 10.0
    impaired: float = 40.0
    recovery: float = 40.0
    warmup: float = 20.0
    edge_args: list[str] = field(default_factory=list)
    log_dir: Path = field(default_factory=lambda: live.OUT_DIR)


def log(message: str) -> None:
    print(f"[network {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- one second of the timeline --------------------------------------------------------------------------------


def _delta(a: dict[str, Any] | None, b: dict[str, Any] | None, key: str) -> float | None:
    if not a or not b or a.get(key) is None or b.get(key) is None:
        return None
    return float(b[key]) - float(a[key])


def edge_bitrates(report: dict[str, Any] | None) -> tuple[float | None, float | None]:
    """(the lowest REMB-derived target of the edge's senders, the shared encoder's bitrate), Mb/s."""
    if not report:
        return None, None
    targets = [v["target_bitrate_bps"] for v in report.get("viewers", []) if v.get("target_bitrate_bps")]
    encoders = [e["bitrate_bps"] for e in report.get("encoders", []) if e.get("bitrate_bps")]
    target = min(targets) / 1e6 if targets else None
    encoder = min(encoders) / 1e6 if encoders else None
    return target, encoder


def edge_rate(report: dict[str, Any] | None) -> dict[str, Any]:
    """The shared encoder's rate controller as the edge last reported it (edge_capture.encoding.SenderRate)."""
    rates = [e["rate"] for e in (report or {}).get("encoders", []) if e.get("rate")]
    if not rates:
        return {}
    rate = rates[0]
    resends: dict[str, int] = {}  # cumulative, over the pages: resent, superseded, too_old, over_budget
    for viewer in (report or {}).get("viewers", []):
        for verdict, count in (viewer.get("resends") or {}).items():
            resends[verdict] = resends.get(verdict, 0) + count
    keyframes = sum(e.get("keyframes_encoded") or 0 for e in (report or {}).get("encoders", []))
    lost = rate.get("fraction_lost")
    return {"edge_remb_mbps": st.rnd(rate["remb_bps"] / 1e6, 3) if rate.get("remb_bps") else None,
            "edge_rr_loss_pct": st.rnd(lost * 100, 1) if lost is not None else None,
            "edge_rr_rtt_ms": rate.get("rtt_ms"), "edge_rate_reason": rate.get("reason"),
            "edge_rate_cuts": rate.get("cuts"), "edge_scale": rate.get("scale"),
            "edge_rate_divisor": rate.get("rate_divisor"),
            "edge_delivered_mbps": st.rnd(rate["delivered_bps"] / 1e6, 3) if rate.get("delivered_bps") else None,
            "edge_resends": resends or None, "edge_keyframes_encoded": keyframes}  # fmt: skip


def second_row(
    t: float,
    phase: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    samples: list[dict[str, Any]],
    edge: dict[str, Any] | None,
) -> dict[str, Any]:
    """One row of the timeline: the second ending at ``t`` (s since the timeline began)."""
    seconds = ((after or {}).get("t", 0) - (before or {}).get("t", 0)) / 1000 if before and after else None
    decoded = _delta(before, after, "framesDecoded")
    received = _delta(before, after, "bytesReceived")
    g2g = st.dist(st.g2g(samples))
    target, encoder = edge_bitrates(edge)
    freeze_s = _delta(before, after, "totalFreezesDuration")
    return {
        "t": round(t, 2),
        "phase": phase,
        "fps": st.rnd(decoded / seconds, 1) if decoded is not None and seconds else None,
        "mbps": st.rnd(received * 8 / seconds / 1e6, 3) if received is not None and seconds else None,
        "frames_stamped": g2g["n"],
        "g2g_p50_ms": g2g["p50"],
        "g2g_p95_ms": g2g["p95"],
        "g2g_max_ms": g2g["max"],
        "packets_lost": _delta(before, after, "packetsLost"),
        "nacks": _delta(before, after, "nackCount"),
        "plis": _delta(before, after, "pliCount"),
        "keyframes": _delta(before, after, "keyFramesDecoded"),
        "chromium_freezes": _delta(before, after, "freezeCount"),
        "chromium_freeze_ms": st.rnd(freeze_s * 1000, 0) if freeze_s is not None else None,
        "edge_target_mbps": st.rnd(target, 3),
        "edge_encoder_mbps": st.rnd(encoder, 3),
        "rtt_ms": st.rnd((after or {}).get("rttMs"), 2),
        **edge_rate(edge),
    }


def freezes(display_ms: Sequence[float], start_ms: float, end_ms: float) -> list[dict[str, float]]:
    """Gaps longer than FREEZE_MS between frames shown (and from the last one to ``end_ms``), in wall ms."""
    times = sorted(t for t in display_ms if start_ms <= t <= end_ms)
    if not times:
        return [{"from_ms": start_ms, "to_ms": end_ms}] if end_ms - start_ms > FREEZE_MS else []
    return [{"from_ms": a, "to_ms": b} for a, b in zip(times, [*times[1:], end_ms], strict=True) if b - a > FREEZE_MS]


# ---- one case ---------------------------------------------------------------------------------------------------


PAGE_TIMES = ("disp", "pres", "cb", "recv")


async def _tick_reads(page: Page, edge: procs.Child) -> tuple[dict[str, Any] | None, list[dict[str, Any]], Any, float]:
    """The page's stats, the stamped frames shown since the last call and the edge's latest report.

    The page's times are ``performance.timeOrigin`` + its monotonic clock; the stamps are the host's wall clock.
    When the wall clock is stepped or slewed the two part (on this host the wall clock once moved 14 ms against
    the monotonic one within 3 s, and one run read stamps 0.5 s "after" their display), so each frame's page
    times are moved onto the wall clock by the page's own offset (performance − ``Date.now()``) read at the same
    moment; the offset is returned."""
    stats = await live.js(page, "() => window.__bench.stats()")
    drained = await live.js(page, "() => window.__bench.drain()")
    clock = await live.js(page, "() => window.__bench.clock()")
    offset = float(clock["perf"]) - float(clock["date"])
    samples = drained["samples"]
    for sample in samples:
        for key in PAGE_TIMES:
            if sample.get(key) is not None:
                sample[key] -= offset
    return stats, samples, edge.report, offset


def host_busy_pct(a: tuple[int, int], b: tuple[int, int]) -> float | None:
    """How busy the host's cores were between two /proc/stat readings (100 = all cores; the bench included)."""
    busy, total = b[0] - a[0], b[1] - a[1]
    return st.rnd(busy / total * 100, 0) if total > 0 else None


async def timeline(
    page: Page, edge: procs.Child, clinic: netlab.Namespace, case: Case, opts: Options
) -> tuple[list[dict[str, Any]], dict[str, tuple[float, float]], list[dict[str, Any]]]:
    """The per-second rows, each window's (start, end) in wall ms, and every stamped frame shown."""
    windows = {"baseline": opts.baseline, "impaired": opts.impaired, "recovery": opts.recovery}
    rows: list[dict[str, Any]] = []
    bounds: dict[str, tuple[float, float]] = {}
    shown: list[dict[str, Any]] = []
    before, _, _, _ = await _tick_reads(page, edge)
    jiffies = procs.host_jiffies()
    began = time.monotonic()
    elapsed = 0.0
    for phase in PHASES:
        if phase == "impaired":
            await asyncio.to_thread(case.impair, clinic)
        elif phase == "recovery":
            await asyncio.to_thread(case.lift, clinic)
        phase_start_ms = time.time() * 1000
        phase_end = elapsed + windows[phase]
        while elapsed < phase_end - 1e-6:
            elapsed = min(phase_end, elapsed + 1.0)
            await asyncio.sleep(max(0.0, began + elapsed - time.monotonic()))
            after, samples, report, offset = await _tick_reads(page, edge)
            row = second_row(time.monotonic() - began, phase, before, after, samples, report)
            row["page_clock_offset_ms"] = st.rnd(offset, 1)
            row["link_mbps"] = case.rate if phase == "impaired" and case.rate is not None else case.base_rate
            now_jiffies = procs.host_jiffies()
            row["host_busy_pct"] = host_busy_pct(jiffies, now_jiffies)
            jiffies = now_jiffies
            rows.append(row)
            shown.extend(samples)
            if after is not None:
                before = after
            log(
                f"  {row['t']:6.1f} s {phase:<9} fps {row['fps']}  {row['mbps']} Mb/s  g2g p50/p95 "
                f"{row['g2g_p50_ms']}/{row['g2g_p95_ms']} ms  lost {row['packets_lost']}  edge target "
                f"{row['edge_target_mbps']} encoder {row['edge_encoder_mbps']} Mb/s"
            )
        bounds[phase] = (phase_start_ms, time.time() * 1000)
    return rows, bounds, shown


def window_summary(
    phase: str, rows: list[dict[str, Any]], bounds: tuple[float, float], shown: list[dict[str, Any]]
) -> dict[str, Any]:
    mine = [r for r in rows if r["phase"] == phase]
    seconds = (bounds[1] - bounds[0]) / 1000
    frames = [s for s in shown if s.get("disp") is not None and bounds[0] <= s["disp"] <= bounds[1]]
    found = freezes([s["disp"] for s in frames], bounds[0], bounds[1])

    def total(key: str) -> float | None:
        values = [r[key] for r in mine if r[key] is not None]
        return sum(values) if values else None

    def median(key: str) -> float | None:
        values = [r[key] for r in mine if r[key] is not None]
        return st.rnd(statistics.median(values), 3) if values else None

    decoded_fps = [r["fps"] for r in mine if r["fps"] is not None]
    mbps = [r["mbps"] for r in mine if r["mbps"] is not None]
    busy = [r["host_busy_pct"] for r in mine if r.get("host_busy_pct") is not None]
    return {
        "seconds": st.rnd(seconds, 1),
        "host_busy_pct": st.rnd(statistics.fmean(busy), 0) if busy else None,
        "fps_decoded": st.rnd(statistics.fmean(decoded_fps), 2) if decoded_fps else None,
        "fps_decoded_min_second": min(decoded_fps) if decoded_fps else None,
        "bitrate_mbps": st.rnd(statistics.fmean(mbps), 3) if mbps else None,
        "latency_ms": st.latency(frames),
        "freezes_over_1s": len(found),
        "freezes_per_minute": st.rnd(len(found) / seconds * 60, 2) if seconds > 0 else None,
        "longest_freeze_ms": st.rnd(max((f["to_ms"] - f["from_ms"] for f in found), default=0.0), 0),
        "freeze_starts_s": [st.rnd((f["from_ms"] - bounds[0]) / 1000, 1) for f in found],
        "chromium_freezes": total("chromium_freezes"),
        "chromium_freeze_ms": total("chromium_freeze_ms"),
        "packets_lost": total("packets_lost"),
        "nacks": total("nacks"),
        "plis": total("plis"),
        "keyframes": total("keyframes"),
        "edge_target_mbps": {"median": median("edge_target_mbps"), "last": mine[-1]["edge_target_mbps"] if mine
                             else None, "min": min((r["edge_target_mbps"] for r in mine
                                                    if r["edge_target_mbps"] is not None), default=None)},
        "edge_encoder_mbps": {"median": median("edge_encoder_mbps"),
                              "last": mine[-1]["edge_encoder_mbps"] if mine else None},
    }  # fmt: skip


def responses(case: Case, rows: list[dict[str, Any]], windows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """How fast the path answered the impairment and its lifting, from the per-second rows."""
    impaired = [r for r in rows if r["phase"] == "impaired"]
    recovery = [r for r in rows if r["phase"] == "recovery"]
    start = impaired[0]["t"] - 1.0 if impaired else 0.0
    rec_start = recovery[0]["t"] - 1.0 if recovery else 0.0
    out: dict[str, Any] = {}
    if case.rate is not None:
        fits = [r for r in impaired if r["edge_encoder_mbps"] is not None and r["edge_encoder_mbps"] <= case.rate]
        out["encoder_under_link_s"] = st.rnd(fits[0]["t"] - start, 1) if fits else None
    # the first second from which every second of the impaired window has frames and a p95 under 200 ms
    settle: float | None = None
    for i, r in enumerate(impaired):
        if all(x["g2g_p95_ms"] is not None and x["g2g_p95_ms"] < TARGET_LATENCY_MS for x in impaired[i:]):
            settle = max(0.0, r["t"] - 1.0 - start)
            break
    out["latency_under_200ms_s"] = st.rnd(settle, 1)
    base = windows["baseline"]
    base_mbps, base_encoder = base["bitrate_mbps"], base["edge_encoder_mbps"]["median"]
    if base_mbps:
        back = [r for r in recovery if r["mbps"] is not None and r["mbps"] >= 0.8 * base_mbps]
        out["bitrate_back_to_80pct_s"] = st.rnd(back[0]["t"] - rec_start, 1) if back else None
    if base_encoder:
        back = [r for r in recovery if (r["edge_encoder_mbps"] or 0.0) >= 0.8 * base_encoder]
        out["encoder_back_to_80pct_s"] = st.rnd(back[0]["t"] - rec_start, 1) if back else None
    return out


def within(name: str, seconds: float | None, limit: float) -> dict[str, Any]:
    """A time-to target; None (it never happened in the window) fails."""
    out = live.check(name, seconds, "<=", limit, " s")
    if seconds is None:
        out["pass"] = False
        out["note"] = "never within the impaired window"
    return out


def case_targets(case: Case, result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, checked where this case applies."""
    w, r = result["windows"]["impaired"], result["responses"]
    name = case.name
    out: list[dict[str, Any]] = []
    if case.loss or case.delay_ms:
        out.append(live.check(f"{name}: impaired fps", w["fps_decoded"], ">=", TARGET_FPS, " fps"))
        out.append(live.check(f"{name}: impaired freezes > 1 s a minute", w["freezes_per_minute"], "<=",
                              TARGET_FREEZES_PER_MIN, ""))  # fmt: skip
        p95 = w["latency_ms"]["glass_to_glass"]["p95"]
        out.append(live.check(f"{name}: impaired glass-to-glass p95 (one-way delay {case.delay_ms:g} ms + 120)",
                              p95, "<=", case.delay_ms + TARGET_G2G_OVER_ONE_WAY_MS, " ms"))  # fmt: skip
    if case.rate is not None:
        out.append(within(f"{name}: encoder at or under the link after", r.get("encoder_under_link_s"),
                          TARGET_FOLLOW_S))  # fmt: skip
        longest = max(result["windows"][p]["longest_freeze_ms"] or 0.0 for p in ("impaired", "recovery"))
        out.append(live.check(f"{name}: longest freeze, impaired and recovery", longest, "<=", FREEZE_MS, " ms"))
        out.append(within(f"{name}: glass-to-glass p95 under 200 ms for good after", r.get("latency_under_200ms_s"),
                          TARGET_SETTLE_S))  # fmt: skip
    return out


async def run_case(
    browser: Browser, world: live.Teleus, clinic: netlab.Namespace, link: netlab.Link, case: Case, opts: Options
) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        await asyncio.to_thread(case.lift, clinic)  # the clean link (the drop case's 6 Mb/s) from the start
        if link.wire is not None:
            link.set_delay(case.delay_ms)
            stack.callback(link.set_delay, 0.0)
        elif case.delay_ms:
            raise RuntimeError("this case needs a delayed link (the run made a veth pair)")
        spool = Path(stack.enter_context(live._tempdir("teleus-bench-network-edge-")))
        edge = await procs.spawn(
            f"edge-{case.name}",
            clinic.argv([live.PYTHON, "-m", "bench.stamped_edge", "--server", world.base, "--allow-insecure-http",
                         "--ice-host", link.a_address, "--source", live.SOURCE, "--resolution", "720p",
                         "--fps", str(live.FPS), "--spool", f"{spool}/outbox", "--recordings", f"{spool}/recordings",
                         "--report-seconds", str(EDGE_REPORT_SECONDS), *opts.edge_args]),
            opts.log_dir, live.ROOT, env={"TELEUS_DEVICE_CREDENTIAL": world.credential},
        )  # fmt: skip
        stack.push_async_callback(edge.stop)
        consultation = await live.api_post(
            world.sono, world.base, "api/v1/consultations",
            {"exam_type": "thyroid", "patient": {"id": "BENCH-1", "name": "BENCH^PATIENT", "sex": "F",
                                                 "birth_date": ""}},
            world.sono_csrf,
        )  # fmt: skip
        cid = consultation["id"]
        stack.push_async_callback(live.end_consultation, world, cid)
        # 720p: the reader finds the stamps in a picture the edge scaled down (--degradation resolution)
        page = await live.new_page(stack, browser, live.EXPERT_VIEWPORT, f"expert-{case.name}", source_width=1280)
        page.set_default_timeout(120_000)  # a busy machine: the sign-in page may take its time
        await live.page_login(page, world.base, "expert")
        await page.goto(world.base + f"#/c/{cid}")
        try:
            await live.wait_for_video(page, 120)
        except Exception as exc:
            raise RuntimeError(f"{exc}\nedge log:\n{edge.tail()}") from exc
        log(f"{case.name}: video flowing; {opts.warmup:g} s warm-up, then {opts.baseline:g} s clean, "
            f"{opts.impaired:g} s {case.title}, {opts.recovery:g} s after")  # fmt: skip
        await asyncio.sleep(opts.warmup)
        try:
            rows, bounds, shown = await timeline(page, edge, clinic, case, opts)
        finally:
            await asyncio.to_thread(case.lift, clinic)
            await asyncio.to_thread(clinic.rate, None)
        windows = {p: window_summary(p, rows, bounds[p], shown) for p in PHASES}
        result: dict[str, Any] = {
            "title": case.title,
            "impairment": {"loss_percent_each_way": case.loss, "rate_mbit": case.rate,
                           "base_rate_mbit": case.base_rate, "one_way_delay_ms": case.delay_ms},
            "windows": windows,
            "timeline": rows,
        }  # fmt: skip
        result["responses"] = responses(case, rows, windows)
        result["targets"] = case_targets(case, result)
        return result


# ---- the run ----------------------------------------------------------------------------------------------------


async def run(opts: Options) -> dict[str, Any]:
    report: dict[str, Any] = {
        "bench": "teleus live video through an impaired link",
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "options": {"cases": opts.cases, "baseline_s": opts.baseline, "impaired_s": opts.impaired,
                    "recovery_s": opts.recovery, "warmup_s": opts.warmup, "edge_args": opts.edge_args,
                    "freeze_ms": FREEZE_MS, "source": live.SOURCE, "resolution": "720p"},
        "host": {"cpus": os.cpu_count(), "loadavg_start": procs.loadavg()},
        "cases": {},
        "errors": [],
    }  # fmt: skip
    opts.log_dir.mkdir(parents=True, exist_ok=True)
    with netlab.Lab() as lab:
        clinic = lab.namespace("clinic")
        # a userspace wire only when some case needs a delay: the other cases keep the kernel's veth pair
        delayed = any(CASES[name].delay_ms for name in opts.cases)
        link = lab.link(clinic, None, delay_ms=0.0 if delayed else None)
        report["host"]["link"] = "userspace wire (bench/netdelay.py)" if delayed else "veth pair"
        async with AsyncExitStack() as stack:
            # no DICOM listener: the bench needs none, and another server on this host may hold 11112
            world = await live.start_teleus(
                stack, "network", opts_for_live(opts), host=link.b_address, env={"TELEUS_DICOM_PORT": "off"}
            )
            playwright = await stack.enter_async_context(async_playwright())
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            stack.push_async_callback(browser.close)
            report["host"]["chromium"] = browser.version
            for name in opts.cases:
                case = CASES[name]
                log(f"{name}: {case.title}")
                try:
                    report["cases"][name] = await run_case(browser, world, clinic, link, case, opts)
                except Exception as exc:
                    text = f"{type(exc).__name__}: {exc}"
                    report["cases"][name] = {"error": text}
                    report["errors"].append(f"{name}: {text.splitlines()[0]}")
                    log(f"  → ERROR {text}")
    report["host"]["loadavg_end"] = procs.loadavg()
    report["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    report["targets"] = [t for c in report["cases"].values() for t in c.get("targets", [])]
    return report


def opts_for_live(opts: Options) -> live.Options:
    return live.Options(duration=0, warmup=0, resolutions=[], vp8=False, pointer_moves=0, pointer_hz=0, soak=None,
                        profile=False, quick=True, log_dir=opts.log_dir)  # fmt: skip


def human_summary(report: dict[str, Any]) -> str:
    lines = ["", f"{'case':<10}{'window':<10}{'fps':>6}{'Mb/s':>7}{'g2g p50':>9}{'p95':>7}{'freezes':>9}"
             f"{'lost':>6}{'edge target':>13}{'encoder':>9}"]  # fmt: skip
    for name, c in report["cases"].items():
        if "error" in c:
            lines.append(f"{name:<10}ERROR {c['error'].splitlines()[0][:100]}")
            continue
        for phase, w in c["windows"].items():
            g = w["latency_ms"]["glass_to_glass"]
            lines.append(
                f"{name:<10}{phase:<10}{w['fps_decoded'] or 0:>6.1f}{w['bitrate_mbps'] or 0:>7.2f}"
                f"{g['p50'] or 0:>9.0f}{g['p95'] or 0:>7.0f}{w['freezes_over_1s']:>9}{w['packets_lost'] or 0:>6.0f}"
                f"{w['edge_target_mbps']['median'] or 0:>13.2f}{w['edge_encoder_mbps']['median'] or 0:>9.2f}"
            )
        lines.append(f"  responses: {json.dumps(c['responses'])}")
    lines.append("== targets ==")
    for t in report["targets"]:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[t["pass"]]
        lines.append(f"  [{verdict}] {t['target']}: {t['value']}" + (f" ({t['note']})" if t.get("note") else ""))
    for e in report["errors"]:
        lines.append(f"  ERROR {e}")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.network", description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    p.add_argument("--baseline", type=float, default=10.0, help="clean window before the impairment, s")
    p.add_argument("--impaired", type=float, default=40.0, help="impaired window, s")
    p.add_argument("--recovery", type=float, default=40.0, help="window after the impairment is lifted, s")
    p.add_argument("--warmup", type=float, default=20.0, help="video before the timeline starts, s (REMB ramps up)")
    p.add_argument("--edge-args", default="", help="more `teleus edge` options, space-separated")
    a = p.parse_args(argv)
    cases = [c.strip() for c in a.cases.split(",") if c.strip()]
    for c in cases:
        if c not in CASES:
            p.error(f"unknown case {c!r} ({', '.join(CASES)})")
    if min(a.baseline, a.impaired, a.recovery) < 1 or a.warmup < 0:
        p.error("each window needs at least 1 s")
    return Options(cases=cases, baseline=a.baseline, impaired=a.impaired, recovery=a.recovery, warmup=a.warmup,
                   edge_args=a.edge_args.split())  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    if os.geteuid() != 0:
        print("bench.network needs root (network namespaces)", file=sys.stderr)
        return 2
    stamp_name = time.strftime("%Y%m%d-%H%M%S")
    opts.log_dir = live.OUT_DIR / f"network-{stamp_name}-logs"
    report = asyncio.run(run(opts))
    text = json.dumps(report, indent=2, ensure_ascii=False)
    out = live.OUT_DIR / f"network-{stamp_name}.json"
    out.write_text(text + "\n")
    print(text)
    print(human_summary(report), file=sys.stderr)
    log(f"wrote {out.relative_to(live.ROOT)}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
