"""events.js in Chromium with a stand-in EventSource (the seam its constructor offers): a refetch that fails keeps
the rows its notice named and asks for them again, so a page does not wait for the minute's safety refresh."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from tests.expert_console.conftest import run

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

FEED = """
    const { ChangeFeed } = await import('/static/events.js');
    class FakeSource {
        static CLOSED = 2;
        constructor() { FakeSource.last = this; this.readyState = 1; queueMicrotask(() => this.onopen?.()); }
        close() { this.readyState = 2; }
    }
    const feed = new ChangeFeed({ EventSourceImpl: FakeSource });
    const calls = [];
    let failuresLeft = arg.failures;
    const done = new Promise((resolve) => {
        feed.subscribe(['consultations'], async ({ ids }) => {
            calls.push(ids);
            if (ids && ids.length && failuresLeft-- > 0) throw new Error('the server is away');
            if (ids && ids.length) resolve();
        });
    });
    // the opening refetch (everything) first, then one notice naming two rows
    await new Promise((resolve) => setTimeout(resolve, 50));
    FakeSource.last.onmessage({ data: JSON.stringify({ topic: 'consultations', version: 1, ids: ['a', 'b'] }) });
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 20000))]);  // never hang the suite
    feed.close();
    return calls;
"""


async def test_a_failed_refetch_asks_for_the_named_rows_again(page: Page) -> None:
    calls = await run(page, FEED, {"failures": 1})
    assert calls[0] is None  # the stream opened: everything
    assert calls[1:] == [["a", "b"], ["a", "b"]]  # failed, then the same rows again


async def test_a_refetch_that_succeeds_is_not_repeated(page: Page) -> None:
    calls = await run(page, FEED, {"failures": 0})
    assert calls == [None, ["a", "b"]]
