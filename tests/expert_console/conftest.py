"""Fixtures for the console's browser tests: the console folder served statically (as the server does: `/`
is index.html, `/static/` the folder) for the tests of the pure modules, and the Debian Chromium driven by
Playwright. The tests of the whole app (test_app.py) load the console from the real server instead."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from signaling_server.localization.catalogs import CATALOGS, Catalogs
from signaling_server.localization.routes import routes as localization_routes
from tests.e2e.browser import BASE_ARGS, CHROMIUM, HOST_NETWORK

CONSOLE_DIR = Path(__file__).resolve().parents[2] / "expert_console"
BLANK = "<!doctype html><html><head><meta charset='utf-8'><title>blank</title></head><body></body></html>"

# All browser tests share one event loop (each test module marks itself loop_scope="session"), one static
# server and one Chromium (launching it costs ~1 s). Function-scoped async fixtures of those modules (such as
# test_app.py's real server) must say loop_scope="session" too, to live on that loop.


def static_app() -> web.Application:
    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(CONSOLE_DIR / "index.html")

    async def blank(_: web.Request) -> web.Response:
        return web.Response(text=BLANK, content_type="text/html")

    app = web.Application()
    app[CATALOGS] = Catalogs.load()  # the real catalogs, served as the server does (the modules' words)
    app.router.add_get("/", index)
    app.router.add_get("/blank", blank)
    app.router.add_routes(localization_routes)
    app.router.add_static("/static/", CONSOLE_DIR)
    return app


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def console_url() -> AsyncIterator[str]:
    runner = web.AppRunner(static_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:  # a missing /usr/bin/chromium fails here: `make test` installs it
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=[*BASE_ARGS, HOST_NETWORK])
        yield browser
        await browser.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def page(browser: Browser, console_url: str) -> AsyncIterator[Page]:
    """One blank page shared by the tests of the pure modules (they keep no state); a new context costs ~0.5 s."""
    context = await browser.new_context(base_url=console_url)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto("/blank")
    await page.evaluate("import('/static/i18n.js').then((i18n) => i18n.setLanguage('en'))")  # the tests read English
    yield page
    await context.close()
    assert not errors, errors


MODULES = """
    const g = await import('/static/geometry.js');
    const ls = await import('/static/linkstats.js');
    const p = await import('/static/protocol.js');
"""


async def run(page: Page, body: str, arg: Any = None) -> Any:
    """Evaluate `body` (the inside of an async function of `arg`) with the pure modules imported as g, ls, p."""
    return await page.evaluate(f"async (arg) => {{ {MODULES} {body} }}", arg)
