"""Headless Debian Chromium through Playwright, with the flags WebRTC needs on a loopback-only test host."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from playwright.async_api import Browser, async_playwright, expect

CHROMIUM = "/usr/bin/chromium"
# Playwright's `expect` gives up after 5 s, its actions after 30. Under a full parallel suite on a busy 2-core
# machine a page's first paint (three dozen ES modules, then its API calls) has taken longer than 5 s: waiting is
# not what the browser tests assert, so every `expect` in them waits as long as an action does.
expect.set_options(timeout=30_000)
# Without the background-networking flags Chromium keeps dialling Google's hosts, which this network refuses.
BASE_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The console starts in the browser's language (Chinese for a Chinese browser): the tests that read English
    # words get an English browser, the Chinese ones ask for theirs (`new_context(locale="zh-CN")`).
    "--lang=en-US",
]

ARGS = [
    *BASE_ARGS,
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]
# For a Chromium on the host (not in a network lab's namespace): WebRTC gathers only on the default route's interface,
# through sockets bound to any address, instead of on every interface. The suite's netlab tests (bench/netlab.py) add
# and delete veth links on the host while the other tests run beside them: a call whose selected candidate pair used
# such a link would die with it. Pages still reach an edge on 127.0.0.1 (the edge's candidates) through these sockets.
HOST_NETWORK = "--webrtc-ip-handling-policy=default_public_and_private_interfaces"


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, HOST_NETWORK])
        try:
            yield browser
        finally:
            await browser.close()
