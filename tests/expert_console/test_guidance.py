"""guidance.js and microphone.js in Chromium: the relayed guidance state, and the microphone that may come late."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from tests.expert_console.conftest import run

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_board_follows_relayed_marks_snapshot_and_clear(page: Page) -> None:
    result = await run(
        page,
        """
        const {GuidanceBoard} = await import('/static/guidance.js');
        const b = new GuidanceBoard();
        const mark = (id, from) => ({type: "mark", id, kind: "arrow", points: [[0, 0], [1, 1]], from, at: 1});
        const steps = [];
        b.apply(mark("m1", "p1"));
        b.apply(mark("m1", "p2"));  // the same id from another page is another mark
        b.apply(mark("m1", "p1"));  // the same mark again replaces it
        steps.push(b.markList.map((m) => `${m.from}/${m.id}`));
        b.apply({type: "marks", marks: [mark("m9", "p3")]});  // the snapshot replaces the local set
        steps.push(b.markList.map((m) => `${m.from}/${m.id}`));
        steps.push(b.apply({type: "error", code: "not_allowed", message: "no"}));
        b.apply({type: "clear", from: "p1", at: 2});
        steps.push(b.markList.length);
        return steps;
        """,
    )
    assert result == [["p1/m1", "p2/m1"], ["p3/m9"], False, 0]


async def test_board_tracks_pointers_per_sender(page: Page) -> None:
    result = await run(
        page,
        """
        const {GuidanceBoard} = await import('/static/guidance.js');
        const b = new GuidanceBoard();
        b.pointer({type: "pointer", x: 0.2, y: 0.3, visible: true, from: "p1", at: 5}, "expert");
        b.pointer({type: "pointer", x: 0.6, y: 0.7, visible: true, from: "p2", at: 6}, "sonographer");
        const both = b.pointerList.length;
        const last = b.lastPointer;
        b.pointer({type: "pointer", visible: false, from: "p2", at: 7}, "sonographer");
        const hidden = b.lastPointer;
        const forgot = [b.forget("p1"), b.forget("nobody")];
        return {both, last, hidden, forgot, left: b.pointerList.map((p) => p.from)};
        """,
    )
    assert result["both"] == 2
    assert result["last"] == {"x": 0.6, "y": 0.7, "visible": True, "from": "p2", "at": 6, "role": "sonographer"}
    assert result["hidden"] == {"x": None, "y": None, "visible": False, "from": "p2", "at": 7, "role": "sonographer"}
    assert result["forgot"] == [True, False]
    assert result["left"] == ["p2"]


async def test_microphone_joins_the_sender_when_the_prompt_is_answered(page: Page) -> None:
    result = await run(
        page,
        """
        const {Microphone} = await import('/static/microphone.js');
        const track = {enabled: true, stopped: false, stop() { this.stopped = true; }};
        const stream = {getAudioTracks: () => [track], getTracks: () => [track]};
        let answer;
        const mic = new Microphone(() => new Promise((resolve) => (answer = resolve)));
        const never = await mic.within(10);  // never asked
        mic.open();
        const pending = await mic.within(20);  // the prompt is still open
        const sender = {track: null, async replaceTrack(t) { this.track = t; }};
        await mic.sendOn(sender);
        const before = sender.track;
        mic.setMuted(true);
        answer(stream);
        const got = await mic.within(20);
        await new Promise((r) => setTimeout(r, 0));
        const after = sender.track === track;
        mic.stop();
        return {never, pending: pending === undefined, before, got: got === stream, after,
                enabled: track.enabled, stopped: track.stopped};
        """,
    )
    assert result == {
        "never": None,
        "pending": True,
        "before": None,
        "got": True,
        "after": True,
        "enabled": False,
        "stopped": True,
    }


async def test_microphone_refused_says_why(page: Page) -> None:
    result = await run(
        page,
        """
        const {Microphone} = await import('/static/microphone.js');
        const mic = new Microphone(() => Promise.reject(new DOMException("denied", "NotAllowedError")));
        return [await mic.open(), mic.error];
        """,
    )
    assert result == [None, "NotAllowedError: denied"]
