"""`make fuzz`: malformed input against a live teleus server, then the checks of issue 10 (docs/SECURITY.md §10).

A real `teleus server` (free port on 127.0.0.1, temp data dir, SQLite) is seeded over its REST API with two sites,
a sonographer per site, an expert, a trainer and an edge device per site. The north sonographer requests a
consultation; its edge device, the sonographer and the expert join the room. Then, after a warm-up, the cases:

- WebSocket messages of every client type, each with one field mutated (wrong type, empty, too long, a lone
  surrogate, a control character, NaN or Infinity, nested 20 deep...) or the whole frame broken (cut JSON, not an
  object, deep arrays, a BOM, binary), sent by the edge and by the sonographer; protocol refusals (unknown peer,
  an offer from a page, an answer with nothing pending, a second join, captures reported by a page); frames over
  64 KiB of UTF-8 (close 1009) and text frames that are not UTF-8 (close 1007), after which the socket rejoins.
  Each case's answer is predicted by the codec itself (`signaling_server.signaling.messages.decode`) or by the
  protocol's rules, and the reply must carry exactly that code;
- REST JSON bodies (strictly invalid: not JSON, not UTF-8, NaN, lone surrogates, nesting, wrong types, too large)
  to the sonographer's and the edge's POST endpoints, and odd query strings to GET endpoints;
- STOW-RS bodies from the edge that must all be refused (cut objects, no DICM, missing or invalid UIDs, trailing
  bytes, broken multipart framing, wrong part types, a study mismatch).

Then it checks: the server process is alive and answers; no response was >= 500; no row of any table and no file
of the data dir changed across the rejected cases (the `consultation_events` joined/left rows of rejoining sockets
and any audit table are reported, not compared); the server's RSS after a settling period is within 10 % of before;
a fresh member of the fuzzed room sees exactly the peers that are there (no ghosts) and receives every one of a
series of broadcasts; a user holds at most the shipped number of sockets. The report is JSON on stdout (and in
bench/out/fuzz-<time>.json); the exit status is 1 when a check failed.

Rates are raised for the fuzzed server (TELEUS_SIGNAL_RATE, TELEUS_CHAT_RATE...) so that the cases reach the
decoder rather than the rate limiter; the limits themselves are tested in the suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import procs
from bench.fuzzcases import OTHER, RestCase, WsCase, dicom_image, multipart, rest_cases, stow_case, ws_case
from signaling_server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
TELEUS = str(Path(sys.executable).parent / "teleus")
PASSWORD = "fuzz-Pa55word-long-enough"
RAISED_LIMITS = {
    "TELEUS_SIGNAL_RATE": "1000000",
    "TELEUS_SIGNAL_BURST": "1000000",
    "TELEUS_CHAT_RATE": "1000000",
    "TELEUS_CHAT_BURST": "1000000",
    "TELEUS_DICOM_PORT": "off",
    "TELEUS_QC_SCORING": "0",
}
IGNORED_TABLES = ("consultation_events", "alembic_version")  # joined/left rows of rejoining sockets
KEEP_ALIVE = 5.0  # seconds between the probes of an idle fuzzing socket
REPLY_TIMEOUT = 20.0  # seconds without the answer a case must get: the case failed
BATCH = 32  # WebSocket cases in flight on one socket (well under its outbox of 256)
QUIET = ("peer-joined", "peer-left", "state")  # room traffic that reconnecting fuzz sockets cause, not leaks


# ---- the world ---------------------------------------------------------------------------------------------


@dataclass
class Person:
    session: aiohttp.ClientSession
    csrf: str | None = None

    def headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf} if self.csrf else {}


@dataclass
class World:
    base: str
    server: procs.Child
    data_dir: Path
    people: dict[str, Person]
    cid: str
    other_cid: str  # a consultation of the other site
    study_uid: str  # a study the edge stored, for study-mismatch cases
    stack: AsyncExitStack

    @property
    def ws_url(self) -> str:
        return self.base.replace("http://", "ws://") + f"api/v1/consultations/{self.cid}/signal"


async def _json(response: aiohttp.ClientResponse) -> Any:
    return await response.json(content_type=None)


async def _post(person: Person, base: str, path: str, body: Any) -> Any:
    async with person.session.post(base + path, json=body, headers=person.headers()) as r:
        if r.status not in (200, 201, 202):
            raise RuntimeError(f"seeding: POST {path}: {r.status} {await r.text()}")
        return await _json(r)


async def _login(base: str, username: str, stack: AsyncExitStack) -> Person:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    stack.push_async_callback(session.close)
    async with session.post(base + "api/v1/auth/login", json={"username": username, "password": PASSWORD}) as r:
        if r.status != 200:
            raise RuntimeError(f"login {username}: {r.status} {await r.text()}")
        return Person(session, (await r.json())["csrf_token"])


def _device(base: str, credential: str, stack: AsyncExitStack) -> Person:
    session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {credential}"})
    stack.push_async_callback(session.close)
    return Person(session)


async def start_world(stack: AsyncExitStack, log_dir: Path, env: dict[str, str] | None = None) -> World:
    """The seeded server; `env`: its TELEUS_* settings (default: the raised rates of the fuzzing)."""
    data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="teleus-fuzz-")))
    await procs.run_command(
        [TELEUS, "user", "add", "admin", "--role", "admin", "--data-dir", str(data_dir)], ROOT, stdin=PASSWORD + "\n"
    )  # the password on stdin: never on a command line
    port = procs.free_port()
    argv = [TELEUS, "server", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
    server = await procs.spawn("fuzz-server", argv, log_dir, ROOT, env=RAISED_LIMITS if env is None else env)
    stack.push_async_callback(server.stop)
    base = f"http://127.0.0.1:{port}/"
    await procs.wait_up(base, server)
    admin = await _login(base, "admin", stack)
    sites = {}
    for code, name in (("north", "North Community Health Centre"), ("river", "Riverside Community Health Centre")):
        sites[code] = (await _post(admin, base, "api/v1/sites", {"code": code, "name": name}))["id"]
    ids = {}
    for username, role, site in (
        ("sono", "sonographer", "north"),
        ("sono_river", "sonographer", "river"),
        ("expert", "expert", None),
        ("trainer", "trainer", None),
    ):
        user = {"username": username, "name": username.title(), "role": role, "password": PASSWORD}
        user["must_change_password"] = False  # a password they chose
        made = await _post(admin, base, "api/v1/users", {**user, **({"site_id": sites[site]} if site else {})})
        ids[username] = made["id"]
        if role == "expert":  # the expert serves both sites (docs/SECURITY.md §2)
            for code in sites:
                await _post(admin, base, f"api/v1/users/{made['id']}/sites", {"site_id": sites[code]})
    devices = {}
    for code in sites:
        made = await _post(admin, base, "api/v1/devices", {"site_id": sites[code], "name": f"{code}-us-1"})
        devices[code] = made["credential"]
    people = {name: await _login(base, name, stack) for name in ("sono", "sono_river", "expert", "trainer")}
    people["edge"] = _device(base, devices["north"], stack)
    people["edge_river"] = _device(base, devices["river"], stack)
    body = {
        "exam_type": "thyroid",
        "patient": {"id": "P-F1", "name": "Fuzz^Patient", "sex": "F", "birth_date": "1970-01-01"},
    }
    cid = (await _post(people["sono"], base, "api/v1/consultations", body))["id"]
    other = (await _post(people["sono_river"], base, "api/v1/consultations", body))["id"]
    # The trainer who joins the fuzzed room at the end is invited by its sonographer (docs/SECURITY.md §2).
    await _post(people["sono"], base, f"api/v1/consultations/{cid}/observers", {"user_id": ids["trainer"]})
    study_uid = await _store_one(people["edge"], base)
    return World(base, server, data_dir, people, cid, other, study_uid, stack)


async def _store_one(edge: Person, base: str) -> str:
    """One real image through STOW (before any snapshot): its study is the target of study-mismatch cases."""
    study_uid = "1.2.826.0.1.3680043.10.543.1"
    content_type, body = multipart([dicom_image(random.Random(1), study_uid=study_uid)])
    headers = {"Content-Type": content_type, "Accept": "application/dicom+json"}
    async with edge.session.post(base + "dicomweb/studies", data=io.BytesIO(body), headers=headers) as r:
        if r.status != 200:
            raise RuntimeError(f"seeding: STOW: {r.status} {await r.text()}")
    return study_uid


# ---- what the server holds -----------------------------------------------------------------------------------


def snapshot(data_dir: Path) -> dict[str, int]:
    """Rows per table and files in the data dir (SQLite read-only, beside the running server)."""
    counts: dict[str, int] = {}
    db = sqlite3.connect(f"file:{data_dir / 'teleus.sqlite3'}?mode=ro", uri=True, timeout=30)
    try:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for name in names:
            counts[f"rows:{name}"] = db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
    finally:
        db.close()
    files = [p for p in data_dir.rglob("*") if p.is_file() and not p.name.startswith("teleus.sqlite3")]
    counts["files"] = len(files)
    return counts


def compared(before: dict[str, int], after: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """(changes that count as partial writes, changes that are reported only)."""
    changed = {k: after.get(k, 0) - before.get(k, 0) for k in {*before, *after} if after.get(k, 0) != before.get(k, 0)}
    ignored = {k: v for k, v in changed.items() if k.split(":", 1)[-1] in IGNORED_TABLES or "audit" in k}
    return {k: v for k, v in changed.items() if k not in ignored}, ignored


async def settled_rss(pid: int) -> float | None:
    """RSS (MB) once the server is idle: its CPU time has grown by < 20 ms over a whole second (at most 30 s),
    then the median of 5 readings 0.2 s apart."""
    deadline = time.monotonic() + 30
    last = procs.cpu_seconds(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = procs.cpu_seconds(pid)
        if now is None or last is None or now - last < 0.02:
            break
        last = now
    readings = []
    for _ in range(5):
        value = procs.rss_mb(pid)
        if value is not None:
            readings.append(value)
        await asyncio.sleep(0.2)
    return sorted(readings)[len(readings) // 2] if readings else None


# ---- the sockets ---------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    replies: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    unexpected_count: int = 0
    accepted: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    rejoins: int = 0

    def miss(self, what: str) -> None:
        self.unexpected_count += 1
        if len(self.unexpected) < 25:
            self.unexpected.append(what[:300])


class Member:
    """One fuzzing socket (the edge or the sonographer): sends cases, reads their answers, rejoins after a close."""

    def __init__(self, name: str, person: Person, world: World, tally: Tally) -> None:
        self.name, self.person, self.world, self.tally = name, person, world, tally
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.peer_id = ""
        self.other: Member | None = None  # the other fuzzing socket, whose peer id protocol cases aim at
        self.lock = asyncio.Lock()  # one batch (or keep-alive probe) at a time on the socket

    async def join(self) -> dict[str, Any]:
        headers = {"Origin": self.world.base.rstrip("/"), **self.person.headers()}
        self.ws = await self.person.session.ws_connect(self.world.ws_url, headers=headers, max_msg_size=0)
        await self.ws.send_str('{"type": "join"}')
        welcome = await self.next_reply(("welcome",))
        self.peer_id = welcome["you"]["id"]
        return welcome

    async def next_reply(self, kinds: tuple[str, ...] = ("error",)) -> dict[str, Any]:
        assert self.ws is not None
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), REPLY_TIMEOUT)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"the socket closed ({msg.type.name} {msg.data} {msg.extra})")
            data = json.loads(msg.data)
            if data.get("type") in kinds:
                return dict(data)
            if data.get("type") not in QUIET:
                self.tally.leaks.append(f"{self.name} got {msg.data[:200]}")

    async def run_batch(self, cases: list[WsCase]) -> None:
        """Send the cases, then read one answer for each; a socket that stops answering or closes unasked is a
        failure of every case still waiting, and is replaced by a fresh one."""
        async with self.lock:
            await self._run_batch(cases)

    async def keep_alive(self) -> None:
        """While the socket idles (the other phases run, the server settles), read it now and then: only reading
        answers the server's heartbeat pings (20 s), which would otherwise close it."""
        while True:
            await asyncio.sleep(KEEP_ALIVE)
            async with self.lock:
                assert self.ws is not None
                try:
                    await self.ws.send_str('{"type": "join"}')
                    await self.next_reply()  # already_joined
                except (TimeoutError, ConnectionError, aiohttp.ClientError) as exc:
                    self.tally.miss(f"{self.name}: the idle socket failed ({exc!r})")
                    await self.rejoin()

    async def _run_batch(self, cases: list[WsCase]) -> None:
        assert self.ws is not None
        other = self.other.peer_id if self.other is not None else "p-nobody"
        waiting = list(cases)
        try:
            for case in cases:
                if case.binary:
                    await self.ws.send_bytes(case.payload if isinstance(case.payload, bytes) else case.payload.encode())
                elif isinstance(case.payload, bytes):
                    await self.ws.send_frame(case.payload, aiohttp.WSMsgType.TEXT)
                else:
                    await self.ws.send_str(case.payload.replace(OTHER, other))
            while waiting:
                case = waiting[0]
                if case.expect.close is not None:
                    await self._expect_close(case)
                else:
                    reply = await self.next_reply()
                    self.tally.replies[reply["code"]] += 1
                    if reply["code"] != case.expect.code:
                        self.tally.miss(
                            f"{self.name} {case.kind}: expected {case.expect.code}, got {reply} for {case.shown}"
                        )
                waiting.pop(0)
        except (TimeoutError, ConnectionError, aiohttp.ClientError) as exc:
            for case in waiting:
                self.tally.miss(f"{self.name} {case.kind}: no answer ({exc!r}) for {case.shown}")
            self.tally.replies["no answer"] += len(waiting)
            await self.rejoin()

    async def _expect_close(self, case: WsCase) -> None:
        assert self.ws is not None
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), REPLY_TIMEOUT)
            if msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data.get("type") not in QUIET:
                    self.tally.leaks.append(f"{self.name} got {msg.data[:200]} before a close")
                continue
            break
        code = self.ws.close_code
        self.tally.replies[f"close {code}"] += 1
        # The server drops the connection while the rest of an oversize frame is still arriving: now and then the
        # kernel's reset overtakes its 1009 close frame, and the client sees 1006 (abnormal closure) instead.
        if code != case.expect.close and not (case.expect.close == 1009 and code == 1006):
            self.tally.miss(f"{self.name} {case.kind}: expected close {case.expect.close}, got {code}")
        await self.rejoin()

    async def rejoin(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 10)
        self.tally.rejoins += 1
        await self.join()


class Watcher:
    """A room member who only listens (the expert): anything but peer traffic reaching it is a leak."""

    def __init__(self, member: Member) -> None:
        self.member = member
        self.task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        assert self.member.ws is not None
        async for msg in self.member.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data.get("type") not in QUIET:
                    self.member.tally.leaks.append(f"expert got {msg.data[:200]}")

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        if self.member.ws is not None:
            await self.member.ws.close()


# ---- the phases --------------------------------------------------------------------------------------------------


async def run_ws(members: dict[str, Member], cases: list[tuple[str, WsCase]]) -> None:
    """Cases in batches per sender; a case that closes the socket is sent alone."""
    pending: dict[str, list[WsCase]] = {name: [] for name in members}
    for sender, case in cases:
        member = members[sender]
        if case.expect.close is not None:
            if pending[sender]:
                await member.run_batch(pending[sender])
                pending[sender] = []
            await member.run_batch([case])
            continue
        pending[sender].append(case)
        if len(pending[sender]) >= BATCH:
            await member.run_batch(pending[sender])
            pending[sender] = []
    for sender, batch in pending.items():
        if batch:
            await members[sender].run_batch(batch)


async def run_rest(world: World, cases: list[RestCase], tally: Tally) -> None:
    for case in cases:
        person = world.people[case.who]
        headers = {**person.headers(), **case.headers}
        url = world.base + case.path.lstrip("/")
        try:
            data = io.BytesIO(case.body) if case.body is not None else None  # big raw bytes: aiohttp warns
            async with person.session.request(
                case.method, url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=60)
            ) as r:
                await r.read()
                status = r.status
        except aiohttp.ClientError as exc:
            tally.miss(f"{case.kind} {case.method} {case.path}: the connection failed: {exc!r}")
            continue
        tally.statuses[str(status)] += 1
        if status >= 500:
            tally.server_errors.append(f"{status} {case.kind} {case.method} {case.path[:120]} {case.shown}")
        elif case.expect_refused and status < 400:
            tally.accepted.append(f"{status} {case.kind} {case.method} {case.path[:120]} {case.shown}")


def plan(rng: random.Random, world: World, count: int) -> tuple[list[tuple[str, WsCase]], list[RestCase]]:
    """`count` cases: about 65 % WebSocket, 25 % REST, 10 % STOW."""
    ws: list[tuple[str, WsCase]] = []
    rest: list[RestCase] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.65:
            sender = rng.choice(["edge", "sono"])
            ws.append((sender, ws_case(rng, sender, OTHER)))
        elif roll < 0.90:
            rest.append(rng.choice(rest_cases(rng, world.cid, world.other_cid)))
        else:
            rest.append(stow_case(rng, world.study_uid))
    return ws, rest


async def phase(world: World, members: dict[str, Member], tally: Tally, rng: random.Random, count: int) -> None:
    ws, rest = plan(rng, world, count)
    for _, case in ws:
        tally.cases[f"ws:{case.kind}"] += 1
    for rest_case in rest:
        tally.cases[f"{'stow' if rest_case.kind.startswith('stow') else 'rest'}:{rest_case.kind}"] += 1
    await asyncio.gather(run_ws(members, ws), run_rest(world, rest, tally))


async def fresh_member_check(world: World, members: dict[str, Member], broadcasts: int) -> dict[str, Any]:
    """A trainer joins the fuzzed room: the peers it is told about must be the ones there; then the edge reports
    `broadcasts` captures and the sonographer says as many chat lines, and the trainer must receive every one."""
    trainer = Member("trainer", world.people["trainer"], world, Tally())
    welcome = await trainer.join()
    there = {m.peer_id for m in members.values()}
    told = {p["id"] for p in welcome["peers"]}
    edge, sono = members["edge"], members["sono"]
    assert edge.ws is not None and sono.ws is not None and trainer.ws is not None
    for n in range(broadcasts):
        await edge.ws.send_json(
            {"type": "captured", "id": f"f{n}", "sop_uid": "1.2.3", "frames": 1, "frame_capture_ms": None}
        )
        await sono.ws.send_json({"type": "chat", "text": f"after the fuzz {n}"})
    captures, chats = set(), set()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(60):
            while len(captures) < broadcasts or len(chats) < broadcasts:
                msg = await trainer.ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                if data["type"] == "capture-status" and data["state"] == "captured":
                    captures.add(data["id"])
                elif data["type"] == "chat":
                    chats.add(data["text"])
    await trainer.ws.close()
    return {
        "peers_told": len(told),
        "peers_there": len(there),
        "ghost_peers": sorted(told - there),
        "missing_peers": sorted(there - told),
        "broadcasts_sent": 2 * broadcasts,
        "broadcasts_received": len(captures) + len(chats),
    }


async def quota_check(world: World, limit: int) -> dict[str, Any]:
    """The expert (one socket already in the room) opens sockets until refused: `limit` at once, no more."""
    person = world.people["expert"]
    opened: list[aiohttp.ClientWebSocketResponse] = []
    refused_status = None
    headers = {"Origin": world.base.rstrip("/")}
    try:
        for _ in range(limit + 5):
            try:
                opened.append(await person.session.ws_connect(world.ws_url, headers=headers))
            except aiohttp.WSServerHandshakeError as exc:
                refused_status = exc.status
                break
    finally:
        for ws in opened:
            await ws.close()
    return {"limit": limit, "held_by_the_expert": len(opened) + 1, "refused_with": refused_status}


async def health(world: World) -> dict[str, Any]:
    out: dict[str, Any] = {"process_alive": world.server.running}
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with world.people["sono"].session.get(world.base + "api/v1/auth/me") as r:
            out["auth_me"] = r.status
        async with world.people["sono"].session.get(world.base + f"api/v1/consultations/{world.cid}") as r:
            out["consultation"] = r.status
    return out


# ---- the run --------------------------------------------------------------------------------------------------------


async def run(cases: int, seed: int, log_dir: Path, warmup: int | None = None, broadcasts: int = 50) -> dict[str, Any]:
    """Start a server, fuzz it with `cases` cases (after `warmup` more, default cases/10), check, report."""
    rng = random.Random(seed)
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        world = await start_world(stack, log_dir)
        warm, tally = Tally(), Tally()
        members = {name: Member(name, world.people[name], world, warm) for name in ("edge", "sono", "expert")}
        members["edge"].other, members["sono"].other = members["sono"], members["edge"]
        for member in members.values():
            await member.join()
        watcher = Watcher(members.pop("expert"))
        fuzzing = {name: members[name] for name in ("edge", "sono")}
        keeping = [asyncio.create_task(member.keep_alive()) for member in fuzzing.values()]
        await phase(world, fuzzing, warm, rng, warmup if warmup is not None else max(100, cases // 10))
        for member in (*fuzzing.values(), watcher.member):
            member.tally = tally

        rss_before = await settled_rss(world.server.pid)
        before = snapshot(world.data_dir)
        fuzz_started = time.monotonic()
        await phase(world, fuzzing, tally, rng, cases)
        fuzz_seconds = time.monotonic() - fuzz_started
        rss_after = await settled_rss(world.server.pid)
        after = snapshot(world.data_dir)
        partial, reported = compared(before, after)
        alive = await health(world)
        for member in fuzzing.values():  # stop the keep-alives between two probes
            await member.lock.acquire()
        for task in keeping:
            task.cancel()
        await asyncio.gather(*keeping, return_exceptions=True)
        for member in fuzzing.values():
            member.lock.release()
        watcher.member.tally = Tally()  # what it hears from now on are the check's own broadcasts
        fresh = await fresh_member_check(world, {**fuzzing, "expert": watcher.member}, broadcasts)
        quota = await quota_check(world, Settings().max_sockets_per_user)
        await watcher.stop()
        for member in fuzzing.values():
            if member.ws is not None:
                await member.ws.close()
        alive_at_end = world.server.running

    total = sum(tally.cases.values())
    report: dict[str, Any] = {
        "cases": total,
        "warmup_cases": sum(warm.cases.values()),
        "seed": seed,
        "seconds": round(time.monotonic() - started, 1),
        "fuzz_seconds": round(fuzz_seconds, 1),
        "cases_per_second": round(total / fuzz_seconds, 1) if fuzz_seconds else None,
        "by_kind": dict(sorted(Counter(k.split(":", 1)[0] for k in tally.cases.elements()).items())),
        "cases_by_kind": dict(sorted(tally.cases.items())),
        "http_statuses": dict(sorted(tally.statuses.items())),
        "ws_replies": dict(sorted(tally.replies.items())),
        "socket_rejoins": tally.rejoins,
        "responses_5xx": len(tally.server_errors),
        "samples_5xx": tally.server_errors[:10],
        "accepted_malformed": len(tally.accepted),
        "samples_accepted": tally.accepted[:10],
        "unexpected_replies": tally.unexpected_count,
        "samples_unexpected": tally.unexpected,
        "leaked_broadcasts": len(tally.leaks),
        "samples_leaked": tally.leaks[:10],
        "partial_writes": partial,
        "reported_not_compared": reported,
        "rss_mb": {"before": rss_before, "after": rss_after, "ratio": _ratio(rss_after, rss_before)},
        "health_after": alive,
        "server_alive_at_end": alive_at_end,
        "fresh_member": fresh,
        "socket_quota": quota,
        "warmup": {"5xx": len(warm.server_errors), "unexpected": warm.unexpected_count, "accepted": len(warm.accepted)},
    }
    report["checks"] = checks(report)
    return report


def _ratio(after: float | None, before: float | None) -> float | None:
    return round(after / before, 3) if after and before else None


def checks(report: dict[str, Any]) -> dict[str, bool]:
    fresh, quota, ratio = report["fresh_member"], report["socket_quota"], report["rss_mb"]["ratio"]
    return {
        "no_crash": report["server_alive_at_end"] and report["health_after"].get("process_alive", False),
        "health_ok": report["health_after"].get("auth_me") == 200 and report["health_after"].get("consultation") == 200,
        "no_5xx": report["responses_5xx"] == 0,
        "no_malformed_accepted": report["accepted_malformed"] == 0,
        "every_reply_as_predicted": report["unexpected_replies"] == 0,
        "no_leaked_broadcast": report["leaked_broadcasts"] == 0,
        "no_partial_writes": not report["partial_writes"],
        "rss_within_10_percent": ratio is not None and not math.isnan(ratio) and ratio <= 1.10,
        "no_ghost_peers": not fresh["ghost_peers"] and not fresh["missing_peers"],
        "fresh_member_got_every_broadcast": fresh["broadcasts_received"] == fresh["broadcasts_sent"],
        "socket_quota_holds": quota["held_by_the_expert"] == quota["limit"] and quota["refused_with"] == 429,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=None, help="cases before the measurements (default cases/10)")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_dir = OUT_DIR / f"fuzz-{stamp}-logs"
    report = asyncio.run(run(args.cases, args.seed, log_dir, args.warmup))
    text = json.dumps(report, indent=2, ensure_ascii=False)
    out = args.out or OUT_DIR / f"fuzz-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(text)
    failed = [name for name, ok in report["checks"].items() if not ok]
    print(
        f"fuzz: {report['cases']} cases; " + (f"FAILED {', '.join(failed)}" if failed else "all checks passed"),
        file=sys.stderr,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
