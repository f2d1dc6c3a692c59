"""Two real `teleus server` processes behind the real HAProxy (docs/proxy/haproxy.cfg, as shipped), one PostgreSQL,
one Redis: the edge agent on server A, the expert's Chromium page on server B; video, chat and a capture flow across
them. Server A is then killed (SIGKILL): the edge comes back through the proxy on B, and video and chat flow again.

Which server a client lands on is chosen with the proxy's own runtime API (a server in `drain` takes no new
client and keeps its open ones), the way an operator drains a server before an upgrade."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.procs import Child, free_port, spawn
from signaling_server.appkeys import DB
from signaling_server.db.engine import make_engine, make_sessionmaker
from signaling_server.db.migrate import upgrade
from tests.conftest import PASSWORD, THYROID_REQUEST, seed
from tests.databases import postgres_database
from tests.e2e.browser import chromium
from tests.e2e.test_live_consultation import login, start_edge, stop_edge, wait_for
from tests.servers import REDIS_URL, redis_prefix
from tests.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
PROXY_CONFIG = ROOT / "docs" / "proxy" / "haproxy.cfg"
TELEUS = ROOT / ".venv" / "bin" / "teleus"


async def _answers(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as s, s.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
            return r.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def _server(name: str, port: int, data: Path, url: str, prefix: str, logs: Path) -> Child:
    env = {
        "TELEUS_REDIS_URL": REDIS_URL,
        "TELEUS_REDIS_PREFIX": prefix,
        "TELEUS_DICOM_PORT": "off",  # two servers on one host: one DICOM listener port each, or none
        "TELEUS_QC_SCORING": "0",
        "TELEUS_TRUSTED_PROXIES": "127.0.0.1",
    }
    argv = [str(TELEUS), "server", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data)]
    child = await spawn(name, [*argv, "--database-url", url], logs, ROOT, env)
    await eventually(lambda: _answers(f"http://127.0.0.1:{port}/"), timeout=60, interval=0.2, what=f"{name} up")
    return child


async def _proxy_command(socket_path: Path, command: str) -> str:
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    writer.write(command.encode() + b"\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer.decode()


async def _route_to(admin: Path, server: str) -> None:
    """New clients go to `server` only; the other keeps its open connections."""
    other = "b" if server == "a" else "a"
    await _proxy_command(admin, f"set server teleus/{server} state ready")
    await _proxy_command(admin, f"set server teleus/{other} state drain")


class SignalSocket:
    """The sonographer's signaling socket through the proxy (aiohttp), with every chat line it has received."""

    def __init__(self, base: str) -> None:
        self.base, self.chat, self.ws = base, [], None
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def login(self) -> None:
        async with self.session.post(
            self.base + "api/v1/auth/login", json={"username": "sono_a", "password": PASSWORD}
        ) as r:
            assert r.status == 200
            self.csrf = (await r.json())["csrf_token"]

    async def join(self, cid: str) -> None:
        self.ws = await self.session.ws_connect(
            self.base + f"api/v1/consultations/{cid}/signal", headers={"Origin": self.base.rstrip("/")}
        )
        await self.ws.send_json({"type": "join"})
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "chat":
                self.chat.append(json.loads(msg.data)["text"])

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.session.close()


async def test_two_servers_behind_the_proxy_and_one_killed(tmp_path: Path) -> None:
    async with postgres_database() as url, redis_prefix() as prefix:
        await upgrade(url)
        engine = make_engine(url)
        world = await seed({DB: make_sessionmaker(engine)})  # type: ignore[arg-type]
        await engine.dispose()
        logs = tmp_path / "logs"
        port_a, port_b, port_proxy = free_port(), free_port(), free_port()
        children: list[Child] = []
        try:
            children.append(await _server("server-a", port_a, tmp_path / "data", url, prefix, logs))
            children.append(await _server("server-b", port_b, tmp_path / "data", url, prefix, logs))
            admin = tmp_path / "haproxy-admin.sock"
            env = {
                "TELEUS_PROXY_BIND": f"127.0.0.1:{port_proxy}",
                "TELEUS_SERVER_A": f"127.0.0.1:{port_a}",
                "TELEUS_SERVER_B": f"127.0.0.1:{port_b}",
                "TELEUS_PROXY_ADMIN": str(admin),
            }
            children.append(await spawn("haproxy", ["haproxy", "-db", "-f", str(PROXY_CONFIG)], logs, tmp_path, env))
            base = f"http://127.0.0.1:{port_proxy}/"
            await eventually(lambda: _answers(base), timeout=30, interval=0.2, what="the proxy up")
            await _scenario(base, world, admin, children[0], tmp_path)
        finally:
            for child in reversed(children):
                await child.stop()


async def _scenario(base: str, world: Any, admin: Path, server_a: Child, tmp_path: Path) -> None:
    await _route_to(admin, "a")  # the sonographer and the edge on A
    sono = SignalSocket(base)
    await sono.login()
    async with sono.session.post(
        base + "api/v1/consultations", json=THYROID_REQUEST, headers={"X-CSRF-Token": sono.csrf}
    ) as r:
        assert r.status == 201
        cid = (await r.json())["id"]
    await sono.join(cid)
    agent, edge_task = start_edge(base, world.device_a_credential, tmp_path / "outbox")

    async def edge_joined() -> bool:
        async with sono.session.get(base + f"api/v1/consultations/{cid}") as r:
            return any(p["role"] == "edge" for p in (await r.json())["participants"])

    try:
        await eventually(edge_joined, timeout=60, interval=0.1, what="the edge in the room, on A")
        async with chromium() as browser:
            expert = await (await browser.new_context()).new_page()
            await _route_to(admin, "b")  # the expert's page on B
            await login(expert, base, "expert")
            await expert.goto(base + f"#/c/{cid}")
            e = await wait_for(expert, "s => s.edgeConnected && s.framesDecoded > 30", within=90)
            edge_before = next(p["id"] for p in e["participants"] if p["role"] == "edge")

            # Chat across the servers, both ways.
            await expert.fill("[data-testid=chat-input]", "Tilt the probe caudally, please")
            await expert.click("[data-testid=chat-send]")
            await eventually(lambda: "Tilt the probe caudally, please" in sono.chat, what="the expert's line on A")
            await sono.ws.send_json({"type": "chat", "text": "Done, nodule in view"})
            await wait_for(expert, "s => s.chat.some(c => c.text === 'Done, nodule in view')")
            # A capture asked on B is taken by the edge on A and announced back on B.
            await expert.click("[data-action=capture-still]")
            await expert.locator("[data-testid=capture-strip] .capture-tile[data-state=stored]").wait_for(
                timeout=90_000
            )

            # Server A dies. Its clients (the edge, the sonographer) come back through the proxy, on B.
            await _proxy_command(admin, "set server teleus/a state ready")  # the proxy must notice by itself
            killed = time.monotonic()
            server_a.proc.send_signal(signal.SIGKILL)
            gone = f"!s.participants.some(p => p.id === '{edge_before}')"
            back = "s.participants.some(p => p.role === 'edge')"
            await wait_for(expert, f"s => {gone} && {back}", within=60)
            rejoined = time.monotonic() - killed
            await wait_for(expert, "s => s.edgeConnected && s.framesDecoded > 30", within=60)
            video = time.monotonic() - killed
            await sono.ws.close()
            await sono.join(cid)
            await sono.ws.send_json({"type": "chat", "text": "Back after the server went away"})
            await wait_for(expert, "s => s.chat.some(c => c.text === 'Back after the server went away')")
            await expert.fill("[data-testid=chat-input]", "Video is back")
            await expert.click("[data-testid=chat-send]")
            await eventually(lambda: "Video is back" in sono.chat, what="the expert's line after the failover")
            print(f"FAILOVER edge rejoined on B {rejoined:.2f} s after SIGKILL; video again {video:.2f} s")
    finally:
        await stop_edge(agent, edge_task)
        await sono.close()
