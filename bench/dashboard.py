"""Dashboard bench: GET /api/v1/qc/dashboard over thousands of recorded sessions, beside bare round trips.

    python -m bench.dashboard [--recordings 5000] [--requests 100] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

A fresh PostgreSQL database (created here, dropped afterwards) is migrated by the real app and seeded with
--recordings complete recordings over two sites and ten sonographers, a month apart at most, each with its stored QC
record (a ``qc_results`` row of kind ``offline``, the shape recordings/qc_record.py writes) and one in five with a
trainer's review. The real app (signaling_server.app.create_app) then serves on 127.0.0.1 through aiohttp's test
server, and one signed-in trainer asks, round-robin, --requests times each:

- ``dashboard``: ``GET /api/v1/qc/dashboard`` (the newest 500 sessions, their reviews, people and QC records; target
  p95 ≤ 200 ms);
- ``count`` (the bare baseline): a bench-only route doing one ``SELECT count(*) FROM recordings`` through the same
  app, engine and session pool;
- ``scheme``: ``GET /api/v1/reviews/scheme`` (the same sign-in check as the dashboard, no query of its own).

Each request's SQL statements are counted (an SQLAlchemy event listener on the engine), so the report also shows that
the dashboard's queries do not grow with the sessions. ``cpu`` is the CPU time this process (server and client
together: the test server runs in it) spent per request: on a shared machine the wall-clock figures move with
other processes' load (``host.loadavg``), the CPU figures much less. Prints one JSON report and writes it to
bench/out/dashboard-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bench import procs
from qc.score import OSAUS_ITEMS
from recordings import qc_record
from recordings import timeline as tl
from signaling_server import admin
from signaling_server.app import create_app
from signaling_server.appkeys import DB, ENGINE
from signaling_server.auth.passwords import hash_password
from signaling_server.db.models import Consultation, QcResult, Recording, TrainerReview, User
from signaling_server.settings import Settings

OUT_DIR = Path(__file__).resolve().parent / "out"
TARGET_P95_MS = 200.0
PASSWORD = "bench dashboard password"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SONOGRAPHERS = 10
REVIEWED_SHARE = 0.2


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@asynccontextmanager
async def fresh_database(admin_dsn: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; yields its SQLAlchemy URL."""
    name = "teleus_bench_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        conn = await asyncpg.connect(admin_dsn, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def session_record(rng: random.Random, minutes: int = 12) -> dict[str, Any]:
    """A stored QC record as the scorer writes it for a thyroid exam of `minutes` (values varied per session)."""
    structures = ["thyroid right lobe", "thyroid left lobe", "thyroid isthmus"]
    events: list[tl.Event] = [tl.Join(0.0, "p-expert", "expert", "Expert")]
    for k in range(rng.randint(1, 6)):
        labels = {"side": rng.choice("RL"), "structure": rng.choice(structures),
                  "plane": rng.choice(["transverse", "longitudinal"]), "mode": "b_mode"}  # fmt: skip
        events.append(tl.Capture(10.0 + 30 * k, f"c{k}", f"1.2.3.{k}", "still", 1, labels))
    for k in range(rng.randint(0, 4)):
        events += [tl.Qc(40.0 + 90 * k, "gain_saturation", "raised", "too much gain"),
                   tl.Qc(45.0 + 90 * k, "gain_saturation", "cleared", "")]  # fmt: skip
    fps = 30.0
    for second in range(1, 60 * minutes + 1):
        low = rng.random() < 0.01
        events.append(tl.Link(float(second), (tl.ViewerLink("p-expert", 6.0 if low else fps, 2500.0,
                                                            rng.uniform(30, 120), rng.uniform(0, 0.02)),)))  # fmt: skip
    timeline = tl.Timeline(tl.Header("c", 1.79e12, 1280, 720, fps), tuple(sorted(events, key=lambda e: e.t)))
    found = qc_record.from_timelines("thyroid", [timeline])
    image = {k: {"score": float(rng.randint(2, 5)), "metric": k} for k in ("gain", "tgc", "depth", "focus")}
    record = qc_record.SessionQc(
        "offline", found.completeness, {**image, "visibility": None}, found.link, found.alerts, found.freezes,
        frozen_image=((61.0, 63.5),), no_contact=((200.0, 201.5),), segments=found.segments,
    )
    frames = {"saturation": 0.002, "dark_fraction": 0.2, "tgc_slope": 8.0, "dynamic_range": 180.0,
              "tenengrad": 2500.0, "laplacian_variance": 700.0}  # fmt: skip
    return qc_record.record_metrics(record, frames, round(rng.uniform(0.4, 0.95), 4), 40.0)


async def seed(app: web.Application, recordings: int, seed_value: int = 7) -> dict[str, Any]:
    """Sites, people, a device, and `recordings` complete recordings with their QC records (bulk inserts)."""
    rng = random.Random(seed_value)
    started = time.perf_counter()
    async with app[DB]() as db:
        sites = [await admin.create_site(db, "north", "North Community Health Centre"),
                 await admin.create_site(db, "river", "Riverside Community Health Centre")]  # fmt: skip
        hashed = hash_password(PASSWORD)
        people = []
        for k in range(SONOGRAPHERS):
            people.append(User(username=f"sono{k}", name=f"Sonographer {k}", role="sonographer",
                               site_id=sites[k % 2].id, password_hash=hashed))  # fmt: skip
        trainer = User(username="trainer", name="Trainer", role="trainer", password_hash=hashed)
        db.add_all([*people, trainer])
        await db.commit()
        devices = [(await admin.register_device(db, site.id, f"{site.code}-us-1"))[0] for site in sites]
        records = [session_record(rng) for _ in range(50)]  # reused in turn: the values vary, the shape does not
        now = datetime.now(UTC)
        for first in range(0, recordings, 1000):
            chunk = range(first, min(recordings, first + 1000))
            consultations, rows, results, reviews = [], [], [], []
            for k in chunk:
                person = people[k % SONOGRAPHERS]
                site = 0 if person.site_id == sites[0].id else 1
                at = now - timedelta(minutes=rng.randint(0, 30 * 24 * 60))
                cid, rid = uuid.uuid4().hex, uuid.uuid4().hex
                consultations.append({
                    "id": cid, "state": "ended", "exam_type": "thyroid", "site_id": sites[site].id,
                    "device_id": devices[site].id, "patient_id": f"P{k:05d}", "patient_name": "Doe^Jane",
                    "patient_sex": "F", "patient_birth_date": "1970-05-01", "accession": f"A{k:05d}",
                    "requested_by_id": person.id, "requested_at": at, "started_at": at,
                    "ended_at": at + timedelta(minutes=12),
                })  # fmt: skip
                rows.append({"id": rid, "consultation_id": cid, "site_id": sites[site].id, "sonographer_id": person.id,
                             "state": "complete", "started_at": at, "ended_at": at + timedelta(minutes=12),
                             "duration_seconds": 720.0, "completed_at": at + timedelta(minutes=13)})  # fmt: skip
                results.append({"consultation_id": cid, "kind": "offline", "metrics": records[k % len(records)],
                                "created_at": at + timedelta(minutes=14)})  # fmt: skip
                if rng.random() < REVIEWED_SHARE:
                    rating = rng.randint(2, 5)
                    reviews.append({
                        "id": uuid.uuid4().hex, "recording_id": rid, "trainer_id": trainer.id,
                        "sonographer_id": person.id, "osaus": dict.fromkeys(OSAUS_ITEMS, rating),
                        "image_quality": {"gain": rating, "tgc": rating, "depth": rating, "colour_doppler": None,
                                          "key_information": rating, "overall": rating},
                        "comments": [], "score": {}, "created_at": at, "updated_at": at,
                    })  # fmt: skip
            for table, values in ((Consultation, consultations), (Recording, rows), (QcResult, results),
                                  (TrainerReview, reviews)):  # fmt: skip
                if values:
                    await db.execute(insert(table), values)
            await db.commit()
        reviewed = await db.scalar(select(func.count()).select_from(TrainerReview))
    return {"recordings": recordings, "reviewed": reviewed, "sonographers": SONOGRAPHERS, "sites": len(sites),
            "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip


async def count_route(request: web.Request) -> web.Response:
    """The baseline: one trivial query through the same app, engine and pool."""
    db: AsyncSession
    async with request.app[DB]() as db:
        total = await db.scalar(select(func.count()).select_from(Recording))
    return web.json_response({"recordings": total})


def summary(times_ms: list[float]) -> dict[str, float]:
    ordered = sorted(times_ms)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 2),
        "max_ms": round(ordered[-1], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


async def measure(client: TestClient, app: web.Application, requests: int, warmup: int) -> dict[str, Any]:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    base = str(client.make_url("")).rstrip("/")
    statements = 0

    def counted(*_: Any) -> None:
        nonlocal statements
        statements += 1

    engine = app[ENGINE].sync_engine
    event.listen(engine, "before_cursor_execute", counted)
    try:
        async with session.post(f"{base}/api/v1/auth/login", json={"username": "trainer", "password": PASSWORD}) as r:
            assert r.status == 200, await r.text()
        paths = {"dashboard": "/api/v1/qc/dashboard", "count": "/bench/count", "scheme": "/api/v1/reviews/scheme"}
        times: dict[str, list[float]] = {name: [] for name in paths}
        cpu: dict[str, list[float]] = {name: [] for name in paths}
        queries: dict[str, set[int]] = {name: set() for name in paths}
        size = sessions = 0
        for round_ in range(warmup + requests):
            for name, path in paths.items():
                before = statements
                started, started_cpu = time.perf_counter(), time.process_time()
                async with session.get(base + path) as r:
                    body = await r.read()
                    assert r.status == 200, body[:300]
                elapsed = 1000 * (time.perf_counter() - started)
                elapsed_cpu = 1000 * (time.process_time() - started_cpu)
                if round_ >= warmup:
                    times[name].append(elapsed)
                    cpu[name].append(elapsed_cpu)
                    queries[name].add(statements - before)
                if name == "dashboard":
                    size = len(body)
                    sessions = len(json.loads(body)["sessions"])
    finally:
        event.remove(engine, "before_cursor_execute", counted)
        await session.close()
    return {
        "requests": {
            name: {**summary(found), "cpu": summary(cpu[name]), "statements": sorted(queries[name])}
            for name, found in times.items()
        },
        "dashboard_sessions": sessions,
        "dashboard_bytes": size,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"bench": "dashboard", "host": {"loadavg_start": procs.loadavg()}}
    async with fresh_database(args.pg) as url:
        with tempfile.TemporaryDirectory(prefix="teleus-bench-dashboard-") as folder:
            app = create_app(Settings(data_dir=Path(folder), database_url=url))
            app.router.add_get("/bench/count", count_route)
            client = TestClient(TestServer(app, host="127.0.0.1", port=0))
            await client.start_server()
            try:
                log(f"seeding {args.recordings} recordings with their QC records")
                report["seed"] = await seed(app, args.recordings)
                log(f"{args.requests} requests each, round-robin: dashboard, count, scheme")
                report.update(await measure(client, app, args.requests, args.warmup))
            finally:
                await client.close()
    p95 = report["requests"]["dashboard"]["p95_ms"]
    report["targets"] = [{"name": f"GET /api/v1/qc/dashboard p95 at {args.recordings} recordings, PostgreSQL (ms)",
                          "value": p95, "limit": TARGET_P95_MS, "met": p95 <= TARGET_P95_MS}]  # fmt: skip
    report["host"]["loadavg_end"] = procs.loadavg()
    return report


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=100, help="measured requests per kind")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--pg", default=PG_ADMIN, help="an admin DSN of the PostgreSQL server (trust on loopback)")
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    text = json.dumps(report, indent=2)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"dashboard-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(text + "\n")
    out(text)
    log(f"written to {path}")


if __name__ == "__main__":
    main()
