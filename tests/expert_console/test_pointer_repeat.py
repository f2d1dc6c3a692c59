"""session.js in Chromium: the pointer's last word goes out again after the mouse stops (`live` may lose it)."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Page

from tests.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# A LiveSession whose `live` channel is a stand-in that records what is sent (no server, no peer connection).
SESSION = """
    const { LiveSession } = await import('/static/session.js');
    const s = new LiveSession({consultationId: 'c1', api: {}, location: {protocol: 'http:', host: 'x'}});
    s.role = 'expert';
    window.sent = [];
    s.live = /** @type {any} */ ({readyState: 'open', send: (m) => window.sent.push(m)});
    window.session = s;
"""


async def sent(page: Page) -> list[dict]:
    return [json.loads(m) for m in await page.evaluate("() => window.sent")]


async def test_the_last_position_is_sent_again_and_an_earlier_one_is_not(page: Page) -> None:
    await page.evaluate(f"async () => {{ {SESSION} }}")
    assert await page.evaluate("() => window.session.sendPointer(0.1, 0.2)")
    assert await page.evaluate("() => window.session.sendPointer(0.3, 0.4)")  # before the first one's repeat
    await eventually(lambda: _count(page, 4), what="two repeats of the last position")
    last = {"type": "pointer", "x": 0.3, "y": 0.4}
    assert await sent(page) == [{"type": "pointer", "x": 0.1, "y": 0.2}, last, last, last]


async def test_leaving_the_image_is_repeated_and_a_closed_session_sends_nothing_more(page: Page) -> None:
    await page.evaluate(f"async () => {{ {SESSION} }}")
    await page.evaluate("() => window.session.sendPointer(null)")
    await eventually(lambda: _count(page, 3), what="the repeats of 'left the image'")
    assert await sent(page) == [{"type": "pointer", "visible": False}] * 3
    await page.evaluate("() => { window.session.sendPointer(0.5, 0.5); window.session._shutdown(); }")
    await page.wait_for_timeout(1500)  # past both repeat delays: the shut session's timers were cleared
    assert await sent(page) == [{"type": "pointer", "visible": False}] * 3 + [{"type": "pointer", "x": 0.5, "y": 0.5}]


async def _count(page: Page, n: int) -> bool:
    return len(await page.evaluate("() => window.sent")) >= n
