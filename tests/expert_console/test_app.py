"""The whole console loads in Chromium from the real server: every module parses, the login view shows to a
signed-out visitor, and the login, home and request views speak the real REST API (signaling_server.app on a
fresh SQLite database, seeded with tests.conftest.seed, served on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, Request, expect
from yarl import URL

from signaling_server.app import create_app
from signaling_server.appkeys import DB
from signaling_server.auth.identity import COOKIE
from signaling_server.db.models import Consultation
from signaling_server.settings import Settings
from tests.conftest import PASSWORD, Api, World, seed
from tests.databases import database
from tests.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

MODULES = [
    "api.js",
    "protocol.js",
    "session.js",
    "guidance.js",
    "microphone.js",
    "geometry.js",
    "linkstats.js",
    "views/dom.js",
    "views/login.js",
    "views/home.js",
    "views/live.js",
    "views/guidancetools.js",
    "views/overlay.js",
    "views/chat.js",
    "views/linkpanel.js",
    "views/labels.js",
    "registry.js",
    "grants.js",
    "dicomadmin.js",
    "views/patients.js",
    "views/grants.js",
    "views/dicom.js",
]
SITE_NAME = "North Community Health Centre"  # site `north` of tests.conftest.seed


def request_body(name: str = "Doe^Jane", exam_type: str = "thyroid") -> dict[str, Any]:
    return {
        "exam_type": exam_type,
        "patient": {"id": "P1", "name": name, "sex": "F", "birth_date": "1970-05-01"},
        "accession": "ACC1",
    }


@dataclass
class Server:
    """The real app served on 127.0.0.1 with the seeded people; `api(username)` is a signed-in HTTP client."""

    app: web.Application
    client: TestClient
    world: World
    url: str
    opened: list[Api] = field(default_factory=list)
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)

    async def api(self, username: str | None = None, bearer: str | None = None) -> Api:
        api = Api(self.client, bearer)
        self.opened.append(api)
        if username:
            await api.login(username)
        return api

    async def request(self, sono: Api, name: str = "Doe^Jane") -> dict[str, Any]:
        status, consultation = await sono.post("/api/v1/consultations", request_body(name))
        assert status == 201, consultation
        return consultation

    async def backdate(self, cid: str, seconds: float) -> None:
        """Move a consultation's request time into the past: a wait of minutes without waiting minutes."""
        async with self.app[DB]() as db:
            consultation = await db.get(Consultation, cid)
            assert consultation is not None
            consultation.requested_at -= timedelta(seconds=seconds)
            await db.commit()

    async def join(self, api: Api, cid: str, **extra: Any) -> aiohttp.ClientWebSocketResponse:
        """Enter a consultation's room through the signaling socket, as `api`'s person or device."""
        ws = await api.ws(f"/api/v1/consultations/{cid}/signal")
        self.sockets.append(ws)
        await ws.send_json({"type": "join", **extra})
        await receive(ws, "welcome")
        return ws

    async def sign_in(self, context: BrowserContext, username: str) -> Api:
        """Sign `username` in through the API and hand the session cookie to the browser: the page that opens
        next finds the session through GET /auth/me, as after a reload."""
        api = await self.api(username)
        cookie = api.session.cookie_jar.filter_cookies(URL(self.url))[COOKIE]
        await context.add_cookies(
            [{"name": COOKIE, "value": cookie.value, "url": self.url, "httpOnly": True, "sameSite": "Strict"}]
        )
        return api


async def receive(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 5) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            data = json.loads(msg.data)
            if data["type"] == kind:
                return data


@pytest_asyncio.fixture(loop_scope="session")
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """A fresh server per test, on the session loop the browser fixtures share."""
    async with database("sqlite", tmp_path) as url:
        app = create_app(Settings(data_dir=tmp_path, database_url=url))
        client = TestClient(TestServer(app, host="127.0.0.1", port=0))
        await client.start_server()
        try:
            world = await seed(app)
            running = Server(app, client, world, str(client.make_url("")).rstrip("/"))
            yield running
            for ws in running.sockets:
                await ws.close()
            for api in running.opened:
                await api.close()
        finally:
            await client.close()


@pytest_asyncio.fixture(loop_scope="session")
async def context(browser: Browser, server: Server) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(base_url=server.url)
    yield context
    await context.close()


async def open_console(context: BrowserContext, hash_: str = "") -> tuple[Page, list[str]]:
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))

    # the server's refusals (401 without a session) are logged as "Failed to load resource": expected
    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            problems.append(f"console: {message.text}")

    page.on("console", on_console)
    await page.goto("/" + hash_)
    return page, problems


def api_calls(page: Page) -> list[Request]:
    """Every /api/v1 REST request the page makes from now on (observed on their way to the server, not faked); the
    event stream is not one."""
    calls: list[Request] = []

    def on_request(request: Request) -> None:
        if "/api/v1/" in request.url and not request.url.endswith("/api/v1/events"):
            calls.append(request)

    page.on("request", on_request)
    return calls


async def answer(request: Request) -> tuple[int, str | None]:
    """The server's status for `request` and its JSON's first key (an error's `error` code)."""
    response = await request.response()
    assert response is not None
    data = await response.json()
    return response.status, data.get("error") if response.status >= 400 else next(iter(data), None)


async def sign_in_with_form(page: Page, username: str, password: str = PASSWORD) -> None:
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.press("input[name=password]", "Enter")


async def test_every_module_parses_and_login_shows_when_signed_out(context: BrowserContext) -> None:
    page, problems = await open_console(context)
    await expect(page.locator("#login-form input[name=username]")).to_be_visible()
    await expect(page.locator("#login-form input[name=password]")).to_be_visible()
    await expect(page.locator("#login-form [type=submit]")).to_be_visible()
    assert page.url.endswith("#/login")
    loaded = await page.evaluate(
        "async (mods) => { for (const m of mods) await import('/static/' + m); return window.teleus.live; }", MODULES
    )
    assert loaded is None
    assert problems == []


async def test_login_refusal_shows_message_and_code(context: BrowserContext) -> None:
    page, problems = await open_console(context)
    await sign_in_with_form(page, "expert", "wrong")
    error = page.locator("[data-testid=login-error]")
    await expect(error).to_have_text("Wrong username or password.")  # the catalog's words for the code
    await expect(error).to_have_attribute("data-code", "bad_credentials")
    assert page.url.endswith("#/login")
    await expect(page.locator("#login-form input[name=password]")).to_have_value("")
    assert problems == []


async def test_expert_home_lists_consultations_with_join_and_observe(server: Server, context: BrowserContext) -> None:
    sono = await server.api("sono_a")
    waiting = await server.request(sono, "Doe^Jane")
    live = await server.request(sono, "Roe^Rick")
    await server.backdate(waiting["id"], 65)
    await server.backdate(live["id"], 30)
    edge = await server.join(await server.api(bearer=server.world.device_a_credential), waiting["id"])
    expert2 = await server.api("expert2")
    await server.join(expert2, live["id"])  # the first expert in makes it live: about 30 s waited
    # The wait freezes at the expert's arrival, which on a busy machine can come a second or two after the backdating.
    status, started = await expert2.get(f"/api/v1/consultations/{live['id']}")
    assert status == 200 and started["state"] == "live" and started["waiting_seconds"] >= 30, started
    frozen = "{:02d}:{:02d}".format(*divmod(started["waiting_seconds"], 60))

    page, problems = await open_console(context)
    calls = api_calls(page)
    await sign_in_with_form(page, "expert")
    rows = page.locator("[data-testid=consultation-list] [data-consultation-id]")
    await expect(rows).to_have_count(2)
    first = page.locator(f'[data-consultation-id="{waiting["id"]}"]')
    await expect(first).to_contain_text(SITE_NAME)
    await expect(first).to_contain_text("Doe Jane")  # family name first, no caret (personName)
    await expect(first).to_contain_text("requested")
    await expect(first).to_contain_text("north-us-1 (edge)")
    waiting_cell = first.locator("[data-field=waiting]")
    await expect(waiting_cell).to_have_text(re.compile(r"^(01:(0[5-9]|[1-5][0-9])|0[2-9]:[0-5][0-9])$"))  # 65 s or more
    shown = await waiting_cell.text_content()
    await expect(waiting_cell).not_to_have_text(shown or "", timeout=2500)  # it ticks
    second = page.locator(f'[data-consultation-id="{live["id"]}"]')
    await expect(second).to_contain_text("live")
    await expect(second).to_contain_text("Expert2 (expert)")
    await expect(second.locator("[data-field=waiting]")).to_have_text(frozen)  # frozen once live
    await expect(first.locator("[data-action=join]")).to_be_visible()
    await expect(first.locator("[data-action=observe]")).to_be_visible()
    lists = [r for r in calls if r.method == "GET" and r.url.endswith("/api/v1/consultations?state=requested,live")]
    assert lists and await answer(lists[0]) == (200, "consultations")
    # A new request shows at once: the server's change notice makes the page ask again (events.js). The page no
    # longer polls; its safety refresh is 60 s away, far beyond this wait.
    third = await server.request(sono, "Poe^Ann")
    await expect(page.locator(f'[data-consultation-id="{third["id"]}"]')).to_contain_text("Poe Ann", timeout=20_000)
    assert await page.evaluate("window.teleus.events.received") >= 1

    await first.locator("[data-action=observe]").click()
    assert page.url.endswith(f"#/c/{waiting['id']}?observe=1")
    joined = await receive(edge, "peer-joined", timeout=10)  # the page entered the room, view-only
    assert joined["peer"]["role"] == "observer" and joined["peer"]["name"] == "Expert"
    assert problems == [] or all("WebSocket" in p for p in problems)


async def test_a_change_notice_updates_the_one_row_it_names_without_a_full_refetch(
    server: Server, context: BrowserContext
) -> None:
    """The server's notice names the changed consultation (PROTOCOL.md §6): the home asks for that row alone
    (`?ids=`) and patches its list: a new request appears, a cancelled one goes, the other rows stay."""
    sono = await server.api("sono_a")
    kept = await server.request(sono, "Doe^Jane")
    page, problems = await open_console(context)
    calls = api_calls(page)
    await sign_in_with_form(page, "expert")
    rows = page.locator("[data-testid=consultation-list] [data-consultation-id]")
    await expect(rows).to_have_count(1)
    await page.wait_for_function("window.teleus.events.opened >= 1")  # and the refetch its opening asks for

    def full_lists() -> list[int]:
        return [k for k, r in enumerate(calls) if r.url.endswith("/api/v1/consultations?state=requested,live")]

    def named(cid: str) -> list[int]:
        return [k for k, r in enumerate(calls) if "/api/v1/consultations?" in r.url and f"ids={cid}" in r.url]

    # the home's first load and the one the stream's opening asks for (events.js), both answered
    await eventually(lambda: len(full_lists()) >= 2, what="the home's two whole lists")
    assert (await answer(calls[full_lists()[1]]))[0] == 200
    added = await server.request(sono, "Poe^Ann")
    row = page.locator(f'[data-consultation-id="{added["id"]}"]')
    await expect(row).to_contain_text("Poe Ann", timeout=20_000)
    await expect(rows).to_have_count(2)
    asked = named(added["id"])
    assert asked and await answer(calls[asked[0]]) == (200, "consultations")
    status, _ = await sono.post(f"/api/v1/consultations/{added['id']}/cancel")
    assert status == 200
    await expect(row).to_have_count(0, timeout=20_000)  # gone: its row is no longer among the open ones
    await expect(rows).to_have_count(1)
    await expect(page.locator(f'[data-consultation-id="{kept["id"]}"]')).to_contain_text("Doe Jane")
    assert len(named(added["id"])) >= 2  # asked again for the cancelled row, and for it alone
    assert all(k < asked[0] for k in full_lists())  # never the whole list once the notices named rows
    assert problems == []


async def test_trainer_may_only_observe(server: Server, context: BrowserContext) -> None:
    sono = await server.api("sono_a")
    consultation = await server.request(sono)
    status, _ = await sono.post(  # invited to observe (a trainer sees no live consultation otherwise)
        f"/api/v1/consultations/{consultation['id']}/observers", {"user_id": server.world.users["trainer"]}
    )
    assert status == 201
    await server.sign_in(context, "trainer")
    page, problems = await open_console(context)
    row = page.locator(f'[data-consultation-id="{consultation["id"]}"]')
    await expect(row.locator("[data-action=observe]")).to_be_visible()
    await expect(row.locator("[data-action=join]")).to_have_count(0)
    await expect(page.locator("[data-testid=current-user]")).to_contain_text("trainer")
    assert problems == []


async def test_sonographer_requests_with_csrf_and_goes_live(server: Server, context: BrowserContext) -> None:
    sono = await server.sign_in(context, "sono_a")
    page, _ = await open_console(context)
    calls = api_calls(page)
    form = page.locator("[data-testid=request-form]")
    await form.locator("select[name=exam_type]").select_option("carotid")
    await form.locator("input[name=patient_id]").fill("P-77")
    await form.locator("input[name=patient_name]").fill("Doe^John")
    await form.locator("select[name=sex]").select_option("M")
    await form.locator("input[name=birth_date]").fill("1960-02-29")
    await form.locator("input[name=accession]").fill("ACC9")
    await form.locator("[type=submit]").click()
    await page.wait_for_url(re.compile(r"#/c/[^/?]+$"))
    cid = page.url.rsplit("#/c/", 1)[1]

    posts = [r for r in calls if r.method == "POST"]
    assert [r.url.split("/api/v1", 1)[1] for r in posts] == ["/consultations"]
    assert await posts[0].header_value("x-csrf-token") == sono.csrf  # the session's token, from GET /auth/me
    assert posts[0].post_data_json == {
        "exam_type": "carotid",
        "patient": {"id": "P-77", "name": "Doe^John", "sex": "M", "birth_date": "1960-02-29"},
        "accession": "ACC9",
    }
    # The server took it: the consultation exists, as the form said, requested by this sonographer.
    status, stored = await sono.get(f"/api/v1/consultations/{cid}")
    assert status == 200, stored
    assert stored["state"] in ("requested", "live") and stored["exam_type"] == "carotid"
    assert stored["patient"] == {"id": "P-77", "name": "Doe^John", "sex": "M", "birth_date": "1960-02-29"}
    assert stored["accession"] == "ACC9" and stored["site"]["code"] == "north"
    assert stored["requested_by"]["id"] == server.world.users["sono_a"]
    # ... and the same call without the header would have been refused, creating nothing.
    status, refused = await sono.post("/api/v1/consultations", posts[0].post_data_json, csrf=False)
    assert (status, refused["error"]) == (403, "csrf_failed")
    status, listed = await sono.get("/api/v1/consultations?state=requested,live,ended,cancelled")
    assert status == 200 and [c["id"] for c in listed["consultations"]] == [cid]

    await expect(page.locator("video[data-testid=live-video]")).to_be_attached()
    await expect(page.locator("canvas[data-testid=overlay]")).to_be_attached()
    assert await page.evaluate("window.teleus.live !== null && typeof window.teleus.live.snapshot === 'function'")


@pytest.mark.parametrize("how", ["logged_out_elsewhere", "cookie_deleted"])
async def test_401_sends_back_to_login(server: Server, context: BrowserContext, how: str) -> None:
    elsewhere = await server.sign_in(context, "expert")  # the same session, held by another client too
    page, problems = await open_console(context)
    calls = api_calls(page)
    await expect(page.locator("[data-testid=consultation-list]")).to_be_visible()
    await expect(page.locator("[data-testid=current-user]")).to_contain_text("expert")
    if how == "logged_out_elsewhere":
        status, _ = await elsewhere.post("/api/v1/auth/logout")
        assert status == 204  # the server revoked the session the page still holds the cookie of
    else:  # the open event stream does not notice; the page's next call (here: a change notice's refetch) does
        await context.clear_cookies()
        await server.request(await server.api("sono_a"))
    await page.wait_for_url("**/#/login", timeout=10_000)
    await expect(page.locator("#login-form")).to_be_visible()
    await expect(page.locator("#login-form")).to_contain_text("Your session has ended")
    answers = [await answer(r) for r in calls]
    assert (401, "unauthenticated") in answers, answers
    assert problems == []


async def test_the_live_chat_shows_the_newest_page_and_pages_back_on_demand(
    server: Server, context: BrowserContext
) -> None:
    """The chat history is paged (100 lines a page): the console shows the newest page and fetches older pages when
    asked, each once, until there are none."""
    from signaling_server.consultations import service

    sono = await server.api("sono_a")
    cid = (await server.request(sono))["id"]
    async with server.app[DB]() as db:
        for n in range(230):
            await service.add_chat(db, cid, "sonographer", server.world.users["sono_a"], "Sono A", f"line {n}")
    await server.sign_in(context, "sono_a")
    page, problems = await open_console(context, f"#/c/{cid}")
    calls = api_calls(page)
    lines = page.locator("[data-testid=chat-line] .chat-text")
    earlier = page.locator("[data-testid=chat-earlier]")
    await expect(lines).to_have_count(100)
    await expect(lines.first).to_have_text("line 130")
    await expect(lines.last).to_have_text("line 229")
    await earlier.click()
    await expect(lines).to_have_count(200)
    await expect(lines.first).to_have_text("line 30")
    await earlier.click()
    await expect(lines).to_have_count(230)
    await expect(lines.first).to_have_text("line 0")
    await expect(lines.last).to_have_text("line 229")
    await expect(earlier).to_be_hidden()
    chats = [r.url.split("/api/v1", 1)[1] for r in calls if "/chat" in r.url]
    assert len(chats) <= 3 and ["before=" in url for url in chats][-2:] == [True, True], chats
    assert problems == []
