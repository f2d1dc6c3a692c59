"""`bench/load.py`: many live consultations held against one teleus server, beside a bare floor (issue 11 §6).

Each consultation is what the server sees of a real one, over the real protocol, without the media (which flows
peer to peer and never touches the server):

- its **edge device** asks for its work list as the agent does, a long poll (`GET /api/v1/devices/me/consultations
  ?since=V&wait=25`, held by the server while nothing changes; at most one question a second) and holds the
  consultation's signaling socket; when a page joins, the edge offers to it and the page answers (a minimal SDP;
  the server relays it and tracks the negotiation, as for a real call);
- its **sonographer's page** and an **expert's page** (an expert holds up to 8 consultations, the shipped socket
  limit per user) hold their sockets; every `--chat` seconds one of the pages says a chat line, which the
  server stores and broadcasts: the moment the edge reads it, against the moment it was sent, is the relay time;
- every socket answers the server's heartbeat pings (every 20 s), as aiohttp and browsers do;
- every expert's console home behaves as home.js does (`--homes push`, the default): it holds the event stream
  (`GET /api/v1/events`, PROTOCOL.md §6) and asks for the open consultations of the sites it serves when the stream
  opens, when a `consultations` notice arrives (at most every 0.5 s, events.js `COALESCE_MS`) and every 60 s
  (`SAFETY_REFRESH_MS`); with `--homes poll`, as the console did before, every 2 s. These home requests are the REST
  requests whose latency is measured;
- so that the pushed homes have something to hear, `--churn` times a second (default 0.5) a sonographer requests a
  consultation, and cancels it a few seconds later: each is a change every expert serving the site is told of.

The **floor** is a bare aiohttp server in the same run, driven by the same clients: the same poll (a JSON list from
a dict, held for the wait when the version is current), the same rooms (a broadcast to the room's sockets) and the
same event stream (a notice to every stream for each churned change), with no database, authentication, access
checks or audit. What teleus adds is what lies between the two.

For each count in `--counts` (default 100, 250, 500, 1000) the world is seeded (sites, devices, people and
consultations over the REST API; not measured), every client connects, then `--hold` seconds are measured: REST
latency of every home request (p50, p95, p99), the edges' questions per second, relay latency of every chat, errors
and refusals, the server process's CPU (one core = 100 %) and RSS. The server runs on PostgreSQL (a fresh database
on 127.0.0.1:5432, dropped afterwards) unless `--sqlite`. Targets (issue 11): at 1 000 consultations, REST p99 ≤ 100
ms and relay p99 ≤ 50 ms on the 2-core machine; the report says where it bends. JSON on stdout and in
bench/out/load-<time>.json.

The load generator shares the machine with the server: its own CPU is reported too, so a bend it causes can be
told from one the server causes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from bench import procs
from bench.stats import dist, rnd

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
TELEUS = str(Path(sys.executable).parent / "teleus")
PASSWORD = "load-Pa55word-long-enough"
PG_ADMIN_DSN = os.environ.get("TELEUS_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
SITES = 12  # a district's community centres
PER_EXPERT = 8  # the shipped TELEUS_MAX_SOCKETS_PER_USER
HOME_SECONDS = 2.0  # what expert_console/views/home.js polled at before the event stream (`--homes poll`)
COALESCE_SECONDS = 0.5  # expert_console/events.js COALESCE_MS
SAFETY_SECONDS = 60.0  # expert_console/events.js SAFETY_REFRESH_MS
CHURN_LIFE = 5.0  # seconds a churned consultation stays requested before its sonographer cancels it
SDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
SERVER_ENV = {"TELEUS_DICOM_PORT": "off", "TELEUS_QC_SCORING": "0"}


@dataclass
class Tally:
    """What the clients saw during the measured hold."""

    rest_ms: list[float] = field(default_factory=list)
    rest_full_ms: list[float] = field(default_factory=list)  # the homes' whole lists
    rest_rows_ms: list[float] = field(default_factory=list)  # the rows a notice named (`?ids=`)
    relay_ms: list[float] = field(default_factory=list)
    errors: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    measuring: bool = False
    edge_requests: int = 0  # the edges' work-list questions answered during the hold
    notices: int = 0  # change notices the homes received during the hold
    changes: int = 0  # churned changes (a request or a cancel) during the hold
    sent: dict[str, float] = field(default_factory=dict)  # chat text -> when it was sent (during the hold)

    def error(self, what: str) -> None:
        if self.measuring:
            self.errors[what] += 1


@dataclass(frozen=True)
class Target:
    """How the clients reach one server: teleus or the floor speak the same few calls."""

    base: str
    poll_path: str  # the edge's work list (a long poll)
    home_path: str  # what an expert's home page asks
    events_path: str  # the change notices' stream
    churn: Churn | None = None  # how a change is made (None: the floor's own poke)

    def signal_url(self, cid: str) -> str:
        return self.base.replace("http://", "ws://") + f"api/v1/consultations/{cid}/signal"


@dataclass
class Consult:
    cid: str
    device: str  # bearer credential
    sonographer: aiohttp.ClientSession
    expert: aiohttp.ClientSession


# ---- the clients ---------------------------------------------------------------------------------------------


async def edge(target: Target, c: Consult, tally: Tally, args: argparse.Namespace, stop: asyncio.Event) -> None:
    """The agent's behaviour: its room's socket, and its work list asked as a long poll (held by the server while
    nothing changes, `--wait` seconds) at most once every `--poll` seconds."""
    headers = {"Authorization": f"Bearer {c.device}"}
    timeout = aiohttp.ClientTimeout(total=args.wait + 60)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        ws = await session.ws_connect(target.signal_url(c.cid), heartbeat=20)
        await ws.send_json({"type": "join"})
        reader = asyncio.create_task(_edge_reader(ws, tally))
        version: str | None = None
        try:
            while not stop.is_set():
                asked = time.perf_counter()
                params = {"since": version, "wait": f"{args.wait:g}"} if version else {}
                try:
                    async with session.get(target.base + target.poll_path, params=params) as r:
                        data = await r.json()
                        version = data.get("version") if r.status == 200 else None
                        if r.status != 200:
                            tally.error(f"edge poll {r.status}")
                except (aiohttp.ClientError, TimeoutError) as exc:
                    tally.error(f"edge poll {type(exc).__name__}")
                    version = None
                if tally.measuring:
                    tally.edge_requests += 1
                pause = args.poll - (time.perf_counter() - asked)
                if pause > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), pause)
        finally:
            reader.cancel()
            await ws.close()


async def _list_once(
    target: Target, session: aiohttp.ClientSession, tally: Tally, ids: list[str] | None = None
) -> None:
    """The home's question: its whole list, or (`ids`) the rows a change notice named, as home.js asks."""
    start, counted = time.perf_counter(), tally.measuring  # requests started in the hold count
    url = target.base + target.home_path
    if ids is not None:
        url += ("&" if "?" in url else "?") + "ids=" + ",".join(ids)
    try:
        async with session.get(url) as r:
            await r.read()
            if r.status != 200:
                tally.error(f"home {r.status}")
    except aiohttp.ClientError as exc:
        tally.error(f"home {type(exc).__name__}")
    if counted:
        took = (time.perf_counter() - start) * 1000
        tally.rest_ms.append(took)
        (tally.rest_full_ms if ids is None else tally.rest_rows_ms).append(took)


async def home(target: Target, session: aiohttp.ClientSession, tally: Tally, stop: asyncio.Event) -> None:
    """An expert's console home as it was: the open consultations of the sites they serve, every `HOME_SECONDS`."""
    with contextlib.suppress(TimeoutError):  # the experts' refreshes spread over the interval
        await asyncio.wait_for(stop.wait(), random.uniform(0, HOME_SECONDS))
    while not stop.is_set():
        await _list_once(target, session, tally)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HOME_SECONDS)


async def pushed_home(target: Target, session: aiohttp.ClientSession, tally: Tally, stop: asyncio.Event) -> None:
    """An expert's console home as it is (events.js, home.js): the whole list when the stream opens and every
    `SAFETY_SECONDS`; on `consultations` notices that name ids, those rows alone (`?ids=`, the ids gathered while
    it waited), on one that names none the whole list; one request at a time, the next no sooner than
    `COALESCE_SECONDS` or the last one's duration after it ended."""
    wanted = asyncio.Event()
    named: set[str] | None = None  # ids named since the last request; None: the whole list is wanted

    def want(ids: Any) -> None:
        nonlocal named
        if isinstance(ids, list) and named is not None:
            named.update(str(i) for i in ids)
        else:
            named = None
        wanted.set()

    async def listen() -> None:
        while not stop.is_set():
            try:
                timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
                async with session.get(target.base + target.events_path, timeout=timeout) as r:
                    if r.status != 200:
                        tally.error(f"events {r.status}")
                        await asyncio.sleep(2)
                        continue
                    async for raw in r.content:
                        line = raw.decode().rstrip("\n")
                        if line == ": ready":
                            want(None)
                        elif line.startswith("data: "):
                            notice = json.loads(line[6:])
                            if notice.get("topic") != "consultations":
                                continue
                            if tally.measuring:
                                tally.notices += 1
                            want(notice.get("ids"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                tally.error(f"events {type(exc).__name__}")
                await asyncio.sleep(2)

    listener = asyncio.create_task(listen())
    try:
        safety = time.monotonic() + SAFETY_SECONDS * random.random()  # the safety refreshes spread over time
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wanted.wait(), max(0.0, safety - time.monotonic()))
            if stop.is_set():
                break
            if time.monotonic() >= safety:  # events.js: setInterval(SAFETY_REFRESH_MS), the whole list
                named, safety = None, safety + SAFETY_SECONDS
            ids, named = (None if named is None else sorted(named)), set()
            wanted.clear()
            last = time.monotonic()
            if ids is None or ids:
                await _list_once(target, session, tally, ids)
            await asyncio.sleep(max(COALESCE_SECONDS, time.monotonic() - last))
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


@dataclass
class Churn:
    """Teleus's changes: a sonographer (session, CSRF token) requests a consultation and cancels it later."""

    sonographers: list[tuple[aiohttp.ClientSession, str]]


async def churn(target: Target, rate: float, tally: Tally, stop: asyncio.Event) -> None:
    """`rate` changes a second: on teleus a request, then its cancel `CHURN_LIFE` seconds later; on the floor a
    poke that sends every stream a notice."""
    if rate <= 0:
        return
    pending: set[asyncio.Task[None]] = set()

    async def one(k: int) -> None:
        if target.churn is None:
            async with aiohttp.ClientSession() as s, s.post(target.base + "api/v1/poke") as r:
                await r.read()
            if tally.measuring:
                tally.changes += 1
            return
        session, csrf = target.churn.sonographers[k % len(target.churn.sonographers)]
        body = {"exam_type": "thyroid", "patient": {"id": f"C{k:06d}", "name": "Churn^Patient", "sex": "F"}}
        headers = {"X-CSRF-Token": csrf}
        async with session.post(target.base + "api/v1/consultations", json=body, headers=headers) as r:
            if r.status != 201:
                tally.error(f"churn request {r.status}")
                return
            cid = (await r.json())["id"]
        if tally.measuring:
            tally.changes += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), CHURN_LIFE)
        async with session.post(target.base + f"api/v1/consultations/{cid}/cancel", headers=headers) as r:
            if r.status != 200:
                tally.error(f"churn cancel {r.status}")
            elif tally.measuring:
                tally.changes += 1

    k = 0
    while not stop.is_set():
        task = asyncio.create_task(one(k))
        pending.add(task)
        task.add_done_callback(pending.discard)
        k += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0 / rate * (2 if target.churn is not None else 1))
    await asyncio.gather(*pending, return_exceptions=True)


async def _edge_reader(ws: aiohttp.ClientWebSocketResponse, tally: Tally) -> None:
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            continue
        data = json.loads(msg.data)
        kind = data.get("type")
        if kind == "welcome":
            for peer in data.get("peers", []):
                if peer.get("role") != "edge":
                    await ws.send_json({"type": "offer", "to": peer["id"], "sdp": SDP})
        elif kind == "peer-joined":
            await ws.send_json({"type": "offer", "to": data["peer"]["id"], "sdp": SDP})
        elif kind == "chat":  # only lines sent during the hold are in `sent`
            sent = tally.sent.pop(data.get("text", ""), None)
            if sent is not None:
                tally.relay_ms.append((time.perf_counter() - sent) * 1000)
        elif kind == "error":
            tally.error(f"edge signal {data.get('code')}")


async def page(
    target: Target, session: aiohttp.ClientSession, cid: str, tally: Tally, chat: float | None, stop: asyncio.Event
) -> None:
    ws = await session.ws_connect(target.signal_url(cid), heartbeat=20, origin=target.base.rstrip("/"))
    await ws.send_json({"type": "join"})
    reader = asyncio.create_task(_page_reader(ws, tally))
    try:
        if chat is not None:  # the pages' lines spread over the interval, not all at the same moment
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), random.uniform(0, chat))
        while not stop.is_set():
            if chat is not None:
                text = f"load {uuid.uuid4().hex[:12]}"
                if tally.measuring:
                    tally.sent[text] = time.perf_counter()
                await ws.send_json({"type": "chat", "text": text})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), chat or 3600)
    finally:
        reader.cancel()
        await ws.close()


async def _page_reader(ws: aiohttp.ClientWebSocketResponse, tally: Tally) -> None:
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            continue
        data = json.loads(msg.data)
        if data.get("type") == "offer":
            await ws.send_json({"type": "answer", "to": data["from"], "sdp": SDP})
        elif data.get("type") == "error":
            tally.error(f"page signal {data.get('code')}")


# ---- teleus: the server and its world --------------------------------------------------------------------------


async def _post(session: aiohttp.ClientSession, url: str, body: Any, csrf: str | None) -> Any:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    async with session.post(url, json=body, headers=headers) as r:
        if r.status not in (200, 201):
            raise RuntimeError(f"seeding: POST {url}: {r.status} {await r.text()}")
        return await r.json()


async def _login(base: str, username: str, stack: AsyncExitStack) -> tuple[aiohttp.ClientSession, str]:
    connector = aiohttp.TCPConnector(limit=0)
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), connector=connector)
    stack.push_async_callback(session.close)
    body = {"username": username, "password": PASSWORD}
    async with session.post(base + "api/v1/auth/login", json=body) as r:
        if r.status != 200:
            raise RuntimeError(f"login {username}: {r.status} {await r.text()}")
        return session, (await r.json())["csrf_token"]


async def _bounded(jobs: list[Any], width: int = 4) -> list[Any]:
    gate = asyncio.Semaphore(width)

    async def one(job: Any) -> Any:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(j) for j in jobs)))


async def seed(base: str, count: int, stack: AsyncExitStack) -> tuple[list[Consult], Churn]:
    """Sites, a device and a sonographer per consultation, an expert per 8 (serving every site); the
    consultations requested by their sonographers; the churn's sonographers (one per site)."""
    admin, csrf = await _login(base, "admin", stack)
    url = base + "api/v1/"
    sites = [
        (await _post(admin, url + "sites", {"code": f"c{k:02d}", "name": f"Centre {k}"}, csrf))["id"]
        for k in range(SITES)
    ]

    async def person(username: str, role: str, site: str | None) -> str:
        body = {"username": username, "name": username, "role": role, "password": PASSWORD}
        body["must_change_password"] = False
        made = await _post(admin, url + "users", {**body, **({"site_id": site} if site else {})}, csrf)
        if role == "expert":
            for s in sites:
                await _post(admin, url + f"users/{made['id']}/sites", {"site_id": s}, csrf)
        return str(made["id"])

    experts = -(-count // PER_EXPERT)
    await _bounded([person(f"sono{i}", "sonographer", sites[i % SITES]) for i in range(count)])
    await _bounded([person(f"expert{j}", "expert", None) for j in range(experts)])
    devices = await _bounded(
        [_post(admin, url + "devices", {"site_id": sites[i % SITES], "name": f"us-{i}"}, csrf) for i in range(count)]
    )
    sono = await _bounded([_login(base, f"sono{i}", stack) for i in range(count)])
    expert_sessions = await _bounded([_login(base, f"expert{j}", stack) for j in range(experts)])

    async def consult(i: int) -> Consult:
        session, token = sono[i]
        body = {
            "exam_type": "thyroid",
            "device_id": devices[i]["device"]["id"],
            "patient": {"id": f"P{i:05d}", "name": f"Load^Patient{i}", "sex": "F", "birth_date": "1970-01-01"},
        }
        made = await _post(session, url + "consultations", body, token)
        return Consult(made["id"], devices[i]["credential"], session, expert_sessions[i // PER_EXPERT][0])

    return await _bounded([consult(i) for i in range(count)]), Churn(sono[:SITES])


@contextlib.asynccontextmanager
async def postgres() -> Any:
    name = "teleus_load_" + uuid.uuid4().hex[:10]
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + name
    finally:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def start_teleus(stack: AsyncExitStack, log_dir: Path, sqlite: bool) -> tuple[Target, int]:
    data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="teleus-load-")))
    env = dict(SERVER_ENV)
    if not sqlite:
        env["TELEUS_DATABASE_URL"] = await stack.enter_async_context(postgres())
    add = [TELEUS, "user", "add", "admin", "--role", "admin", "--data-dir", str(data_dir)]
    await procs.run_command(add, ROOT, stdin=PASSWORD + "\n", env=env)
    port = procs.free_port()
    argv = [TELEUS, "server", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
    server = await procs.spawn("load-server", argv, log_dir, ROOT, env=env)
    stack.push_async_callback(server.stop)
    base = f"http://127.0.0.1:{port}/"
    await procs.wait_up(base, server)
    home = "api/v1/consultations?state=requested,live"
    return Target(base, "api/v1/devices/me/consultations", home, "api/v1/events"), server.pid


# ---- the floor: the same calls, nothing behind them --------------------------------------------------------------


def floor_app() -> web.Application:
    """A bare aiohttp server: the poll answers a JSON list from a dict, a room broadcasts to its sockets, a poke
    sends every event stream a notice."""
    rooms: defaultdict[str, set[web.WebSocketResponse]] = defaultdict(set)
    streams: set[asyncio.Queue[bytes]] = set()
    version = [0]

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"retry: 3000\n: ready\n\n")
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        streams.add(queue)
        try:
            while True:
                try:
                    await response.write(await asyncio.wait_for(queue.get(), 15))
                except TimeoutError:
                    await response.write(b": heartbeat\n\n")
        except ConnectionError:
            pass
        finally:
            streams.discard(queue)
        return response

    async def poke(request: web.Request) -> web.Response:
        version[0] += 1
        notice = f'data: {{"topic":"consultations","version":{version[0]},"ids":["x"]}}\n\n'.encode()
        for queue in streams:
            queue.put_nowait(notice)
        return web.Response(status=204)

    open_ids = {"consultations": [{"id": "x", "state": "live"}], "version": "v1"}

    async def poll(request: web.Request) -> web.Response:
        if request.query.get("since") == "v1":  # nothing ever changes here: held for the whole wait
            await asyncio.sleep(float(request.query.get("wait", "0")))
        return web.json_response(open_ids)

    async def signal(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        room = rooms[request.match_info["cid"]]
        room.add(ws)
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                kind = data.get("type")
                if kind == "chat":
                    out = json.dumps({"type": "chat", "text": data["text"]})
                    for other in list(room):
                        with contextlib.suppress(ConnectionError, RuntimeError):
                            await other.send_str(out)
                elif kind in ("offer", "answer"):
                    relayed = json.dumps({"type": kind, "from": "p", "sdp": data["sdp"]})
                    for other in list(room):
                        if other is not ws:
                            with contextlib.suppress(ConnectionError, RuntimeError):
                                await other.send_str(relayed)
        finally:
            room.discard(ws)
        return ws

    app = web.Application()
    app.router.add_get("/api/v1/poll", poll)
    app.router.add_get("/api/v1/events", events)
    app.router.add_post("/api/v1/poke", poke)
    app.router.add_get("/api/v1/consultations/{cid}/signal", signal)
    return app


FLOOR_CHILD = """
import sys
from aiohttp import web
from bench.load import floor_app
web.run_app(floor_app(), host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


async def start_floor(stack: AsyncExitStack, log_dir: Path) -> tuple[Target, int]:
    port = procs.free_port()
    child = await procs.spawn("load-floor", [sys.executable, "-c", FLOOR_CHILD, str(port)], log_dir, ROOT)
    stack.push_async_callback(child.stop)
    base = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as probe:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with probe.get(base + "api/v1/poll") as r:
                    if r.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError(f"floor did not come up:\n{child.tail()}")
            await asyncio.sleep(0.1)
    return Target(base, "api/v1/poll", "api/v1/poll", "api/v1/events"), child.pid


def floor_world(count: int) -> list[Consult]:
    """The floor needs no credentials: one cookie-less session per expert and per sonographer, as for teleus."""
    experts = [aiohttp.ClientSession() for _ in range(-(-count // PER_EXPERT))]
    return [Consult(f"c{i}", "none", aiohttp.ClientSession(), experts[i // PER_EXPERT]) for i in range(count)]


# ---- one measured hold --------------------------------------------------------------------------------------------


async def hold(target: Target, pid: int, consults: list[Consult], args: argparse.Namespace) -> dict[str, Any]:
    tally, stop = Tally(), asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    ramp = 1.0 / max(1.0, args.ramp)
    homes = pushed_home if args.homes == "push" else home
    for session in {id(c.expert): c.expert for c in consults}.values():
        tasks.append(asyncio.create_task(homes(target, session, tally, stop)))
    tasks.append(asyncio.create_task(churn(target, args.churn, tally, stop)))
    for k, c in enumerate(consults):  # connect at --ramp consultations a second, as clinics open
        tasks.append(asyncio.create_task(edge(target, c, tally, args, stop)))
        tasks.append(asyncio.create_task(page(target, c.sonographer, c.cid, tally, args.chat if k % 2 else None, stop)))
        tasks.append(asyncio.create_task(page(target, c.expert, c.cid, tally, None if k % 2 else args.chat, stop)))
        await asyncio.sleep(ramp)
    await asyncio.sleep(args.settle)
    cpu0, me0, t0 = procs.cpu_seconds(pid), time.process_time(), time.monotonic()
    tally.measuring = True
    print(f"measuring {len(consults)} consultations, server pid {pid}", file=sys.stderr, flush=True)
    await asyncio.sleep(args.hold)
    tally.measuring = False
    cpu1, me1, t1 = procs.cpu_seconds(pid), time.process_time(), time.monotonic()
    rss = procs.rss_mb(pid)
    await asyncio.sleep(min(5.0, args.settle))  # lines still in flight arrive
    unanswered = len(tally.sent)
    stop.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    wall = t1 - t0
    return {
        "consultations": len(consults),
        "sockets": 3 * len(consults),
        "rest_ms": dist(tally.rest_ms),
        "rest_per_second": rnd(len(tally.rest_ms) / wall),
        "rest_full_list_ms": dist(tally.rest_full_ms),
        "rest_named_rows_ms": dist(tally.rest_rows_ms),
        "edge_requests_per_second": rnd(tally.edge_requests / wall),
        "changes_per_second": rnd(tally.changes / wall),
        "notices_per_second": rnd(tally.notices / wall),
        "relay_ms": dist(tally.relay_ms),
        "chats_per_second": rnd(len(tally.relay_ms) / wall),
        "chats_not_relayed": unanswered,
        "errors": dict(tally.errors),
        "client_tasks_failed": len(failed),
        "client_failures": sorted({f"{type(f).__name__}: {f}"[:160] for f in failed})[:5],
        "server_cpu_percent": rnd(100 * (cpu1 - cpu0) / wall) if cpu0 is not None and cpu1 is not None else None,
        "server_rss_mb": rss,
        "load_generator_cpu_percent": rnd(100 * (me1 - me0) / wall),
        "loadavg": procs.loadavg(),
    }


async def one_count(count: int, args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"consultations": count}
    async with AsyncExitStack() as stack:
        target, pid = await start_floor(stack, log_dir)
        world = floor_world(count)
        for session in {id(s): s for c in world for s in (c.sonographer, c.expert)}.values():
            stack.push_async_callback(session.close)
        row["floor"] = await hold(target, pid, world, args)
    async with AsyncExitStack() as stack:
        target, pid = await start_teleus(stack, log_dir, args.sqlite)
        started = time.monotonic()
        world, churners = await seed(target.base, count, stack)
        target = replace(target, churn=churners)
        row["seed_seconds"] = rnd(time.monotonic() - started)
        row["teleus"] = await hold(target, pid, world, args)
    t, f = row["teleus"], row["floor"]
    row["meets_targets"] = bool(
        t["rest_ms"].get("p99") is not None
        and t["rest_ms"]["p99"] <= 100
        and t["relay_ms"].get("p99") is not None
        and t["relay_ms"]["p99"] <= 50
        and not t["client_tasks_failed"]
        and not t["chats_not_relayed"]
    )
    row["versus_floor"] = {
        "rest_p99_ms": [t["rest_ms"].get("p99"), f["rest_ms"].get("p99")],
        "relay_p99_ms": [t["relay_ms"].get("p99"), f["relay_ms"].get("p99")],
        "server_cpu_percent": [t["server_cpu_percent"], f["server_cpu_percent"]],
    }
    return row


async def run(args: argparse.Namespace) -> dict[str, Any]:
    log_dir = Path(tempfile.mkdtemp(prefix="teleus-load-logs-"))
    rows = []
    for count in args.counts:
        rows.append(await one_count(count, args, log_dir))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    bends = next((r["consultations"] for r in rows if not r["meets_targets"]), None)
    return {
        "bench": "load",
        "database": "sqlite" if args.sqlite else "postgresql",
        "homes": args.homes,
        "churn_per_second": args.churn,
        "poll_seconds": args.poll,
        "chat_seconds": args.chat,
        "hold_seconds": args.hold,
        "cores": os.cpu_count(),
        "rows": rows,
        "first_count_missing_targets": bends,
        "logs": str(log_dir),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=lambda s: [int(x) for x in s.split(",")], default=[100, 250, 500, 1000])
    parser.add_argument("--hold", type=float, default=30.0, help="seconds measured per count")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds after connecting before measuring")
    parser.add_argument("--ramp", type=float, default=100.0, help="consultations connected per second")
    parser.add_argument("--poll", type=float, default=1.0, help="at most one work-list question a second per edge")
    parser.add_argument("--wait", type=float, default=25.0, help="seconds the server may hold an edge's question")
    parser.add_argument("--chat", type=float, default=10.0, help="seconds between chat lines per consultation")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument(
        "--homes", choices=["push", "poll"], default="push",
        help="experts' homes refetch on change notices (push, as the console does) or every 2 s (poll, as it did)",
    )
    parser.add_argument("--churn", type=float, default=0.5, help="consultation changes (requests, cancels) a second")
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2)
    (OUT_DIR / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
