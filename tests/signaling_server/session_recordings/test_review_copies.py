"""A trainer's recording media is the review copy with the burned-in banner masked (review_copies.py): made once in
the background, 409 review_copy_pending until then, a failure answered with its own code and retried after its
backoff, never the original; an identified reader gets the original. The real app on SQLite and PostgreSQL, a
recording written by the edge's own MP4 writer from a synthetic scanner screen with a patient banner, real PyAV."""

from __future__ import annotations

import io
import json
import stat
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from sqlalchemy import select

from edge_capture.sources.synthetic import SyntheticSource
from recordings.store import RecordingStore
from signaling_server import errors
from signaling_server.appkeys import DB, SETTINGS
from signaling_server.db.models import AuditEvent
from signaling_server.session_recordings import review_copies
from signaling_server.session_recordings.files import store_of
from signaling_server.session_recordings.review_copies import (
    FIRST_BACKOFF,
    REVIEW_COPIES,
    CopyState,
    Failure,
    ReviewCopies,
    backoff_seconds,
    copy_state,
)
from tests.conftest import Api
from tests.recordings.sessions import live_consultation, record_session
from tests.recordings.test_deidentify import best_match, rendered
from tests.recordings.test_teaching import FPS, NAME, SECONDS, scanner, write_recording  # noqa: F401  (fixture)
from tests.signaling_server.session_recordings.test_routes import put
from tests.waiting import eventually

MEDIA_ROUTE = "/api/v1/recordings/{id}/media"


@pytest.fixture(scope="module")
def banner_mp4(scanner: SyntheticSource, tmp_path_factory: pytest.TempPathFactory) -> bytes:  # noqa: F811
    path = tmp_path_factory.mktemp("edge") / "media.mp4"
    write_recording(path, scanner, SECONDS)
    return path.read_bytes()


async def fetch(api: Api, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    async with api.session.get(api.base + path, headers=headers or {}) as response:
        return response.status, await response.read(), dict(response.headers)


async def when_made(api: Api, path: str, timeout: float = 300.0) -> bytes:
    """Poll as the console does (every Retry-After) until the copy is served; every answer before is pending."""

    async def served() -> bytes | None:
        status, body, headers = await fetch(api, path)
        if status == 409:
            assert json.loads(body)["error"] == "review_copy_pending" and int(headers["Retry-After"]) >= 1
            return None
        assert status == 200, body[:300]
        return body

    return await eventually(served, timeout, interval=0.2, what="the review copy")


def decoded(data: bytes) -> tuple[list[tuple[float, np.ndarray]], int]:
    with av.open(io.BytesIO(data), "r") as container:
        frames = [(float(f.time), f.to_ndarray(format="bgr24")) for f in container.decode(container.streams.video[0])]
        return frames, len(container.streams.audio)


async def audit_rows(app: Any, route: str) -> list[AuditEvent]:
    async with app[DB]() as db:
        query = select(AuditEvent).where(AuditEvent.route == route).order_by(AuditEvent.seq)
        return list(await db.scalars(query))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_copys_state_comes_from_the_disk_the_queue_and_the_failures_backoff() -> None:
    failed = Failure("not a video", at=1000.0, attempts=1)
    assert copy_state(False, False, None, 0) is CopyState.ABSENT
    assert copy_state(False, True, None, 0) is CopyState.PENDING
    assert copy_state(True, True, failed, 0) is CopyState.READY  # a made copy wins
    assert copy_state(False, False, failed, 1000.0 + FIRST_BACKOFF - 1) is CopyState.FAILED
    assert copy_state(False, False, failed, 1000.0 + FIRST_BACKOFF) is CopyState.ABSENT  # the next request retries
    assert copy_state(False, True, failed, 1001.0) is CopyState.PENDING  # being retried
    assert [backoff_seconds(n) for n in (1, 2, 3)] == [FIRST_BACKOFF, 2 * FIRST_BACKOFF, 4 * FIRST_BACKOFF]
    assert backoff_seconds(30) == review_copies.MAX_BACKOFF


async def test_a_trainer_gets_the_masked_copy_once_it_is_made_and_an_expert_the_original(
    people: Any, scanner: SyntheticSource, banner_mp4: bytes  # noqa: F811
) -> None:
    client, world, open_api = people
    sono, expert, trainer = await open_api("sono_a"), await open_api("expert"), await open_api("trainer")
    edge = await open_api(bearer=world.device_a_credential)
    recording = await record_session(sono, expert, edge, media=banner_mp4, seconds=SECONDS)
    path = f"/api/v1/recordings/{recording['id']}/media"

    status, body, headers = await fetch(trainer, path)
    error = json.loads(body)
    assert (status, error["error"]) == (409, "review_copy_pending") and error["retry_after"] >= 1
    assert headers["Retry-After"] == str(error["retry_after"]) and "no-store" in headers["Cache-Control"]
    masked = await when_made(trainer, path)
    status, original, _ = await fetch(expert, path)
    assert status == 200 and original == banner_mp4  # an identified reader: the original, byte for byte

    before, before_audio = decoded(original)
    after, after_audio = decoded(masked)
    assert (before_audio, after_audio) == (1, 1)  # the voice is kept for the review
    assert len(after) == len(before) == round(SECONDS * FPS)
    assert [round(t, 3) for t, _ in after] == [round(t, 3) for t, _ in before]  # the timeline still lines up
    template = rendered(NAME, scanner.layout.font_scale, scanner.layout.thickness)
    assert min(best_match(frame, template)[0] for _, frame in before[::10]) > 0.9  # the name is in the original
    assert max(best_match(frame, template)[0] for _, frame in after) < 0.5
    banner, fov = scanner.layout.banner, scanner.fov
    banner_rows = np.stack([frame[: banner.y + banner.h] for _, frame in after])
    assert banner_rows.max() <= 4 and np.ptp(banner_rows) <= 4  # black and constant in every frame
    images = np.stack([frame[fov.slices].astype(np.int16) for _, frame in after])
    assert np.abs(np.diff(images, axis=0)).mean() > 2  # while the image still moves

    copy = store_of(client.app).root / recording["id"] / review_copies.FOLDER / "media.mp4"
    assert copy.read_bytes() == masked and mode(copy) == 0o600 and mode(copy.parent) == 0o700
    made_at = copy.stat().st_mtime_ns
    status, part, _ = await fetch(trainer, path, {"Range": "bytes=0-99"})  # seeking works on the copy
    assert status == 206 and part == masked[:100]
    assert copy.stat().st_mtime_ns == made_at  # made once

    rows = await audit_rows(client.app, MEDIA_ROUTE)
    seen = [(row.actor_name, row.status, row.outcome, row.detail.get("copy")) for row in rows]
    assert seen[0] == ("trainer", 409, "review_copy_pending", "deidentified")
    assert ("trainer", 200, "ok", "deidentified") in seen and ("expert", 200, "ok", "original") in seen
    assert not [row for row in seen if row[0] == "trainer" and row[3] != "deidentified"]


async def test_a_copy_that_fails_is_reported_and_retried_never_the_original(people: Any) -> None:
    client, world, open_api = people
    sono, expert, trainer = await open_api("sono_a"), await open_api("expert"), await open_api("trainer")
    edge = await open_api(bearer=world.device_a_credential)
    garbage = bytes(range(256)) * 40  # not a video
    recording = await record_session(sono, expert, edge, media=garbage)
    path = f"/api/v1/recordings/{recording['id']}/media"

    async def refused() -> dict[str, Any] | None:
        status, body, headers = await fetch(trainer, path)
        assert status in (409, 503), status  # never 200: the original is not served instead
        answer = json.loads(body)
        return {**answer, "header": headers["Retry-After"]} if status == 503 else None

    failed = await eventually(refused, 300.0, interval=0.2, what="the copy to fail")
    assert failed["error"] == "review_copy_failed" and "could not be made" in failed["message"]
    assert str(client.app[SETTINGS].data_dir) not in failed["message"]  # no server path in what a trainer reads
    assert 0 < failed["retry_after"] <= FIRST_BACKOFF and failed["header"] == str(failed["retry_after"])
    record = store_of(client.app).root / recording["id"] / review_copies.FOLDER / "media.mp4.failed"
    kept = json.loads(record.read_text())
    assert kept["attempts"] == 1 and mode(record) == 0o600
    assert not (record.parent / "media.mp4").exists() and not list(record.parent.glob(".*part"))

    record.write_text(json.dumps({**kept, "at": time.time() - FIRST_BACKOFF - 1}))  # its backoff is over
    status, body, _ = await fetch(trainer, path)
    assert (status, json.loads(body)["error"]) == (409, "review_copy_pending")  # tried again
    again = await eventually(refused, 300.0, interval=0.2, what="the second attempt to fail")
    assert json.loads(record.read_text())["attempts"] == 2 and again["retry_after"] > FIRST_BACKOFF
    status, body, _ = await fetch(expert, path)
    assert status == 200 and body == garbage  # identified readers get what was recorded


async def test_a_file_still_arriving_is_not_copied_for_a_trainer_but_streams_to_an_expert(people: Any) -> None:
    client, world, open_api = people
    sono, expert, trainer = await open_api("sono_a"), await open_api("expert"), await open_api("trainer")
    edge = await open_api(bearer=world.device_a_credential)
    cid = await live_consultation(sono, expert)
    _, recording = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    status, _ = await put(edge, recording["id"], "media.mp4", 0, b"\x00" * 4000)  # arriving: not complete yet
    assert status == 200
    path = f"/api/v1/recordings/{recording['id']}/media"
    status, body, _ = await fetch(trainer, path)
    assert (status, json.loads(body)["error"]) == (409, "recording_not_complete")
    assert (await fetch(expert, path))[0] == 200
    assert client.app[REVIEW_COPIES].queued == set()  # nothing queued for a file that is not whole


async def test_a_server_that_stops_mid_copy_leaves_nothing_behind(
    scanner: SyntheticSource, tmp_path: Path  # noqa: F811
) -> None:
    store = RecordingStore(tmp_path / "recordings")
    source = store.path("ab12", "media.mp4")
    source.parent.mkdir(parents=True)
    write_recording(source, scanner, 10.0)  # long enough to be stopped in the middle
    copies = ReviewCopies(store)
    copies.start()
    with pytest.raises(errors.ReviewCopyPending):
        await copies.ready_copy("ab12", "media.mp4")
    folder = copies.path("ab12", "media.mp4").parent
    await eventually(lambda: folder.is_dir() and any(folder.iterdir()), 120.0, what="the copy to start writing")
    await copies.close()  # as the app's cleanup does: the thread stops at its next progress report
    assert list(folder.iterdir()) == []  # no copy, no partial file, no failure recorded
    assert (await copies.state("ab12", "media.mp4"))[0] is CopyState.ABSENT  # made on the next request after a restart
