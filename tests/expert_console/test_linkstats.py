"""linkstats.js in Chromium: per-second deltas, loss, bitrate, freezes, percentiles, clock offset, latency."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from tests.expert_console.conftest import run

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

FRAME_30FPS = 1000 / 30


async def freezes(page: Page, intervals: list[float]) -> dict:
    return await run(
        page,
        """
        const d = new ls.FreezeDetector();
        let t = 1000;
        const kinds = [d.frame(t)];
        for (const dt of arg) { t += dt; kinds.push(d.frame(t)); }
        return {count: d.freezeCount, ms: d.freezeMs, pauses: d.pauseCount, kinds};
        """,
        intervals,
    )


async def test_a_400ms_gap_at_30fps_is_a_freeze(page: Page) -> None:
    result = await freezes(page, [FRAME_30FPS] * 60 + [400] + [FRAME_30FPS] * 30)
    assert result["count"] == 1
    assert result["ms"] == pytest.approx(400)
    assert result["kinds"][61] == "freeze"


async def test_single_jitter_is_not_a_freeze(page: Page) -> None:
    result = await freezes(page, [FRAME_30FPS] * 60 + [FRAME_30FPS + 50] + [FRAME_30FPS - 10] * 5 + [FRAME_30FPS] * 30)
    assert result["count"] == 0
    assert result["ms"] == 0


async def test_freeze_threshold_is_max_of_three_times_and_plus_150ms(page: Page) -> None:
    # at 30 fps the average + 150 ms rule governs (183 ms); at 5 fps three times the average does (600 ms)
    result = await run(
        page,
        "return [ls.isFreeze(183.4, 1000 / 30), ls.isFreeze(180, 1000 / 30),"
        " ls.isFreeze(600, 200), ls.isFreeze(590, 200)];",
    )
    assert result == [True, False, True, False]
    slow = await freezes(page, [200] * 30 + [500, 200, 650])
    assert slow["count"] == 1
    assert slow["ms"] == pytest.approx(650)


async def test_long_gap_is_a_pause_and_a_new_stream_starts_clean(page: Page) -> None:
    result = await freezes(page, [FRAME_30FPS] * 40 + [6000] + [FRAME_30FPS] * 10)
    assert (result["count"], result["pauses"]) == (0, 1)
    restarted = await run(
        page,
        """
        const d = new ls.FreezeDetector();
        let t = 0;
        for (let i = 0; i < 40; i++) d.frame(t += 1000 / 30);
        d.restart();
        d.frame(t += 2500);  // the first frame of a new connection, long after the last
        for (let i = 0; i < 10; i++) d.frame(t += 1000 / 30);
        return [d.freezeCount, d.pauseCount];
        """,
    )
    assert restarted == [0, 0]


async def test_no_freeze_before_enough_frames(page: Page) -> None:
    result = await freezes(page, [FRAME_30FPS, FRAME_30FPS, 400])
    assert result["count"] == 0


async def test_loss_and_bitrate(page: Page) -> None:
    result = await run(
        page,
        """
        return [ls.lossPercent(5, 95), ls.lossPercent(0, 300), ls.lossPercent(0, 0), ls.lossPercent(-2, 100),
                ls.bitrateMbps(1_000_000, 1000), ls.bitrateMbps(500_000, 2000), ls.bitrateMbps(10, 0),
                ls.ratePerSecond(45, 1500)];
        """,
    )
    assert result == pytest.approx([5.0, 0.0, None, 0.0, 8.0, 2.0, None, 30.0])


def inbound_video(ts: float, frames: int, bytes_: int, lost: int, received: int, **extra: object) -> dict:
    return {
        "type": "inbound-rtp",
        "kind": "video",
        "id": "IT01V",
        "timestamp": ts,
        "framesDecoded": frames,
        "bytesReceived": bytes_,
        "packetsLost": lost,
        "packetsReceived": received,
        "frameWidth": 1280,
        "frameHeight": 720,
        **extra,
    }


PAIR = [
    {"type": "transport", "id": "T01", "timestamp": 0, "selectedCandidatePairId": "CP1"},
    {"type": "candidate-pair", "id": "CP0", "timestamp": 0, "currentRoundTripTime": 0.5},
    {"type": "candidate-pair", "id": "CP1", "timestamp": 0, "currentRoundTripTime": 0.012},
]


async def test_summarise_takes_deltas_per_second(page: Page) -> None:
    before = [inbound_video(10_000, 300, 5_000_000, 10, 4_000), *PAIR]
    after = [
        inbound_video(11_000, 330, 5_600_000, 13, 4_297, freezeCount=2, totalFreezesDuration=0.75),
        {
            "type": "inbound-rtp",
            "kind": "audio",
            "id": "IT01A",
            "timestamp": 11_000,
            "totalAudioEnergy": 0.25,
            "bytesReceived": 9000,
        },
        *PAIR,
    ]
    s = await run(page, "return ls.summarise(arg[0], arg[1]);", [before, after])
    assert s["fps"] == pytest.approx(30)
    assert s["bitrateMbps"] == pytest.approx(4.8)
    assert s["lossPct"] == pytest.approx(1.0)
    assert (s["width"], s["height"], s["framesDecoded"]) == (1280, 720, 330)
    assert s["rttMs"] == pytest.approx(12)
    assert (s["browserFreezeCount"], s["browserFreezeMs"]) == (2, pytest.approx(750))
    assert s["inboundAudioEnergy"] == pytest.approx(0.25)


async def test_summarise_prefers_remote_inbound_rtt_and_skips_unrelated_reports(page: Page) -> None:
    remote = {"type": "remote-inbound-rtp", "id": "RIA", "timestamp": 0, "kind": "audio", "roundTripTime": 0.031}
    first = await run(page, "return ls.summarise(null, arg);", [inbound_video(1000, 10, 1000, 0, 10), remote, *PAIR])
    assert first["rttMs"] == pytest.approx(31)
    assert (first["fps"], first["bitrateMbps"], first["lossPct"]) == (None, None, None)
    # a new connection: counters restart under a new id, no negative rates
    other = dict(inbound_video(2000, 5, 100, 0, 5), id="IT99V")
    renewed = await run(
        page, "return ls.summarise(arg[0], arg[1]);", [[inbound_video(1000, 900, 9e6, 0, 9000)], [other]]
    )
    assert (renewed["fps"], renewed["bitrateMbps"]) == (None, None)
    assert renewed["rttMs"] is None


async def test_percentile(page: Page) -> None:
    result = await run(
        page,
        """
        const v = Array.from({length: 100}, (_, i) => 100 - i);  // 100 … 1, unsorted on purpose
        return [ls.percentile(v, 50), ls.percentile(v, 95), ls.percentile(v, 0), ls.percentile(v, 100),
                ls.percentile([42], 95), ls.percentile([], 50), v[0]];
        """,
    )
    assert result == pytest.approx([50.5, 95.05, 1, 100, 42, None, 100])


async def test_clock_offset_uses_the_smallest_round_trip_of_the_last_10s(page: Page) -> None:
    # the edge clock runs 5000 ms ahead; the one-way delays are asymmetric except in the 4 ms ping
    result = await run(
        page,
        """
        const samples = [
          {t: 100_000, received: 100_080, edgeMs: 105_070},  // rtt 80, skewed
          {t: 101_000, received: 101_004, edgeMs: 106_002},  // rtt 4: the one to trust
          {t: 102_000, received: 102_030, edgeMs: 107_025},  // rtt 30
          {t: 90_000, received: 90_001, edgeMs: 95_300},     // rtt 1, but older than 10 s
        ];
        return [ls.clockOffset(samples, 103_000), ls.clockOffset(samples, 115_000), ls.clockOffset([], 0),
                ls.glassToGlassMs(200_000, 204_950, 5000)];
        """,
    )
    best, later, none, latency = result
    assert best == {"offsetMs": pytest.approx(5000), "rttMs": pytest.approx(4)}
    assert later is None
    assert none is None
    assert latency == pytest.approx(50)


async def test_latency_tracker_matches_frames_either_way_round(page: Page) -> None:
    result = await run(
        page,
        """
        const lt = new ls.LatencyTracker();
        const edgeAhead = 5000;
        lt.addPing(10_000, 10_002, 10_001 + edgeAhead);  // offset 5000, rtt 2
        // frame message first, display later: latency 60 ms
        lt.addCapture(3000, 10_100 + edgeAhead, 10_105);
        lt.addDisplay(3000, 10_160, 10_150);
        // display first (the message was late), then the message: latency 80 ms
        lt.addDisplay(6000, 10_213, 10_200);
        lt.addCapture(6000, 10_133 + edgeAhead, 10_220);
        // RTP timestamps compare as unsigned 32-bit values
        lt.addCapture(2 ** 32 - 3000, 10_150 + edgeAhead, 10_230);
        lt.addDisplay(-3000, 10_220, 10_240);
        // no match: no sample
        lt.addDisplay(9000, 10_300, 10_300);
        const s = lt.summary(10_300);
        const later = lt.summary(25_000);
        return {s, later, pending: lt.displays.size};
        """,
    )
    assert result["s"]["count"] == 3
    assert result["s"]["p50"] == pytest.approx(70)
    assert result["s"]["p95"] == pytest.approx(79)
    assert result["later"] == {"p50": None, "p95": None, "count": 0}
    assert result["pending"] == 1


async def test_latency_needs_a_clock_offset(page: Page) -> None:
    result = await run(
        page,
        """
        const lt = new ls.LatencyTracker();
        lt.addCapture(1, 1000, 1000);
        lt.addDisplay(1, 1050, 1050);
        return lt.summary(1100).count;
        """,
    )
    assert result == 0


async def test_frames_the_callback_skipped_are_not_a_freeze(page: Page) -> None:
    # requestVideoFrameCallback may miss frames that were shown; presentedFrames counts them
    result = await run(
        page,
        """
        const d = new ls.FreezeDetector();
        let t = 0;
        d.frame(t);
        for (let i = 0; i < 40; i++) d.frame(t += 1000 / 30);
        const skipped = d.frame(t += 8 * 1000 / 30, 8);  // eight frames shown, one callback
        const frozen = d.frame(t += 500, 1);
        return [skipped, frozen, d.freezeCount];
        """,
    )
    assert result == ["frame", "freeze", 1]
