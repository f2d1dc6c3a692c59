"""signaling_server.quality.scorer: the server scores every complete recording offline, in a child process, into
qc_results; with the real app on SQLite and PostgreSQL, recordings uploaded through the edge's API, and the real qc
package."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import QcResult, Recording
from signaling_server.quality.scorer import CLAIM, QC_SCORER, Scorer
from signaling_server.session_recordings.files import store_of
from tests.clocks import FakeWallClock
from tests.conftest import make_app
from tests.recordings.sessions import people_of, record_session

pytestmark = pytest.mark.timeout(180)


async def rows_of(app: Any, consultation_id: str, wait: float = 90.0) -> list[QcResult]:
    """The consultation's offline rows, once there is one (or [] after `wait` seconds)."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        async with app[DB]() as db:
            found = list((await db.scalars(select(QcResult).where(QcResult.consultation_id == consultation_id))).all())
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def test_a_complete_recording_is_scored_and_the_review_reads_the_score(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with people_of(aiohttp_client, db_url, tmp_path, qc_scoring=True) as (app, sono, expert, trainer, edge):
        recording = await record_session(sono, expert, edge)
        (row,) = await rows_of(app, recording["consultation_id"])
        assert row.kind == "offline", row.metrics
        metrics = row.metrics
        assert set(metrics["image"]) == {"gain", "tgc", "depth", "focus", "visibility"}
        assert metrics["image"]["gain"]["score"] in (1, 2, 3, 4, 5)
        assert metrics["completeness"]["protocol"] == "thyroid" and len(metrics["completeness"]["items"]) == 6
        assert metrics["link"]["seconds"] == 3 and 0 <= metrics["score"] <= 1
        # the session's QC record, stored once: the moments too, on the session clock
        assert metrics["version"] == 2 and metrics["segments"] == [0.0]
        assert metrics["alerts"] == [{"code": "gain_saturation", "text": "too much gain", "raised_at": 1.8,
                                      "cleared_at": 2.2}]  # fmt: skip
        assert len(metrics["freezes"]) == 1 and metrics["freezes"][0]["start"] == 1.0

        status, qc = await trainer.get(f"/api/v1/recordings/{recording['id']}/qc")
        assert status == 200 and qc["source"] == "qc_results"
        assert qc["image"]["gain"]["score"] == metrics["image"]["gain"]["score"]
        assert qc["completeness"]["value"] == pytest.approx(2 / 6, abs=1e-4)
        assert len(qc["alerts"]) == 1  # the moments still come from the timeline
        _, board = await trainer.get("/api/v1/qc/dashboard")
        assert board["sessions"][0]["image_source"] == "qc"

        # a second "complete" from the edge (it did not hear the answer) scores nothing twice
        await edge.post(f"/api/v1/recordings/{recording['id']}/end",
                        {"files": ["media.mp4", "timeline.jsonl"], "duration_seconds": 3.0})  # fmt: skip
        await asyncio.sleep(1.0)
        assert len(await rows_of(app, recording["consultation_id"], wait=0)) == 1


async def test_a_file_that_is_no_video_gets_a_failed_row_and_the_timeline_still_serves(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with people_of(aiohttp_client, db_url, tmp_path, qc_scoring=True) as (app, sono, expert, trainer, edge):
        recording = await record_session(sono, expert, edge, media=b"\x00\x00\x00\x18ftypisom" + b"junk" * 4000)
        (row,) = await rows_of(app, recording["consultation_id"])
        assert row.kind == "offline_failed" and row.metrics["error"] and row.metrics["message"]
        status, qc = await trainer.get(f"/api/v1/recordings/{recording['id']}/qc")
        assert status == 200 and qc["source"] == "timeline" and qc["image"] is None


async def test_a_server_started_later_catches_up(aiohttp_client: Any, db_url: str, tmp_path: Path) -> None:
    # scoring off, as the tests' bare settings have it
    async with people_of(aiohttp_client, db_url, tmp_path) as (quiet, sono, expert, _, edge):
        recording = await record_session(sono, expert, edge)
        assert QC_SCORER not in quiet
        await asyncio.sleep(0.5)
        assert await rows_of(quiet, recording["consultation_id"], wait=0) == []
    scoring = await make_app(db_url, tmp_path, qc_scoring=True)
    await aiohttp_client(scoring)  # the same database and data folder: it finds the unscored recording
    (row,) = await rows_of(scoring, recording["consultation_id"])
    assert row.kind == "offline" and row.metrics["image"]


async def test_two_scorers_score_a_recording_once_and_a_dead_ones_claim_runs_out(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    """Every server may run a scorer on the one database: a recording is claimed before it is scored, so two
    scorers looking at once score it once; one whose server died while scoring holds it until its claim runs out."""
    async with people_of(aiohttp_client, db_url, tmp_path) as (app, sono, expert, _, edge):  # no scorer of its own
        recording = await record_session(sono, expert, edge)
        clock = FakeWallClock()
        dead, first, second = (Scorer(app, store_of(app), clock=clock) for _ in range(3))
        assert await dead._claim() == recording["id"]  # then its server is killed before it writes the row
        assert await asyncio.gather(first.work_due(), second.work_due()) == [0, 0]
        assert await first.soonest_due() == clock() + CLAIM
        clock.advance(CLAIM.total_seconds())
        assert sorted(await asyncio.gather(first.work_due(), second.work_due())) == [0, 1]
        assert first.scored + second.scored == 1
        (row,) = await rows_of(app, recording["consultation_id"], wait=0)
        assert row.kind == "offline"
        await first.score(recording["id"])  # asked again (a second "complete"): nothing more
        assert len(await rows_of(app, recording["consultation_id"], wait=0)) == 1
        assert await first.soonest_due() is None
        async with app[DB]() as db:
            done = await db.get(Recording, recording["id"])
        assert done is not None and done.qc_claimed_until is None
