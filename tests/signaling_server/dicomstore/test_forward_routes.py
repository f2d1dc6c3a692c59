"""Failed forward jobs, for admins: listed with what they carry, re-queued one by one or all at once (REST and
`teleus forward`), refused to everyone else. (A re-queued job reaching a PACS that came back: test_tls.py.)"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import ForwardJob
from signaling_server.dicomstore.forward import FORWARDER
from tests.waiting import eventually

from .conftest import Running, Start
from .objects import image, read
from .orthanc import free_port

TELEUS = str(Path(sys.executable).parent / "teleus")


async def _jobs(server: Running) -> dict[int, ForwardJob]:
    async with server.app[DB]() as db:
        return {j.id: j for j in await db.scalars(select(ForwardJob).order_by(ForwardJob.id))}


async def _with_failed_jobs(start: Start, count: int) -> tuple[Running, list[bytes]]:
    """A server forwarding to a PACS that is not there, one attempt per job: `count` stored objects, failed."""
    server = await start(pacs=f"NOBODY@127.0.0.1:{free_port()}", forward_max_attempts=1, forward_backoff_seconds=0.05)
    sent = [image(modality="CR", seed=n) for n in range(count)]
    for raw in sent:
        await server.store(raw)

    async def all_failed() -> bool:
        jobs = await _jobs(server)
        return len(jobs) == count and all(j.state == "failed" for j in jobs.values())

    await eventually(all_failed, what=f"{count} failed jobs")
    return server, sent


async def test_admins_list_and_requeue_failed_jobs_and_others_may_not(start: Start) -> None:
    server, sent = await _with_failed_jobs(start, 2)
    first, second = sorted(await _jobs(server))
    for username in ("sono_a", "expert", "trainer"):
        api = await server.api(username)
        assert (await api.get("/api/v1/forward-jobs"))[0] == 403
        status, error = await api.post(f"/api/v1/forward-jobs/{first}/requeue")
        assert (status, error["error"]) == (403, "forbidden")
        assert (await api.post("/api/v1/forward-jobs/requeue", {}))[0] == 403
    assert {j.state for j in (await _jobs(server)).values()} == {"failed"}

    admin = await server.api("admin")
    status, listed = await admin.get("/api/v1/forward-jobs")
    assert status == 200 and [j["id"] for j in listed["jobs"]] == [first, second]
    job = listed["jobs"][0]
    assert job["sop_uid"] == str(read(sent[0]).SOPInstanceUID) and job["site_id"] == server.world.site_a
    assert (job["state"], job["attempts"]) == ("failed", 1) and "association" in job["last_error"]
    assert (await admin.get("/api/v1/forward-jobs?state=sent"))[1] == {"jobs": []}
    assert (await admin.get("/api/v1/forward-jobs?state=lost"))[1]["error"] == "invalid_request"

    server.app[FORWARDER].max_attempts = 100  # from now on a re-queued job stays pending, retried with backoff
    server.app[FORWARDER].backoff = server.app[FORWARDER].backoff * 100_000
    status, job = await admin.post(f"/api/v1/forward-jobs/{first}/requeue")
    assert status == 200 and (job["id"], job["state"], job["attempts"]) == (first, "pending", 0), job
    status, error = await admin.post(f"/api/v1/forward-jobs/{first}/requeue")  # pending (or trying): not failed
    assert (status, error["error"]) == (409, "invalid_transition"), error
    assert (await admin.post("/api/v1/forward-jobs/999999/requeue"))[1]["error"] == "not_found"

    status, error = await admin.post("/api/v1/forward-jobs/requeue", {"ids": [second, first]})  # all or none
    assert (status, error["error"]) == (409, "invalid_transition")
    assert (await _jobs(server))[second].state == "failed"
    assert await admin.post("/api/v1/forward-jobs/requeue", {}) == (200, {"requeued": [second]})
    assert {j.state for j in (await _jobs(server)).values()} == {"pending"}


async def test_teleus_forward_requeue(start: Start, db_url: str) -> None:
    server, _ = await _with_failed_jobs(start, 1)
    [job_id] = await _jobs(server)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEUS_")}

    async def teleus(*argv: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run, [TELEUS, *argv, "--database-url", db_url], capture_output=True, text=True, env=env,
            timeout=120, check=False,
        )  # fmt: skip

    listed = await teleus("forward", "list")
    assert listed.returncode == 0 and f'"id": {job_id}' in listed.stdout and '"state": "failed"' in listed.stdout
    lost = await teleus("forward", "list", "--state", "lost")
    assert lost.returncode == 1 and "'state' must be one of pending, sent, failed" in lost.stderr, lost.stderr
    refused = await teleus("forward", "requeue")
    assert refused.returncode == 1 and "--all-failed" in refused.stderr
    server.app[FORWARDER].max_attempts = 100
    server.app[FORWARDER].backoff = server.app[FORWARDER].backoff * 100_000
    done = await teleus("forward", "requeue", "--all-failed")
    assert done.returncode == 0 and done.stdout.strip() == f"re-queued 1 forward job(s): {job_id}", done.stdout
    assert (await _jobs(server))[job_id].state == "pending"  # (the forwarder notices within a minute)
