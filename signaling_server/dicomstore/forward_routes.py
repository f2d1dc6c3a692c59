"""Forward jobs over REST, for admins (DICOMWEB.md §Forwarding): list them by state, re-queue failed ones.

The queries and actions here are shared with the `teleus forward` command.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.api import body
from signaling_server.api.representations import iso
from signaling_server.appkeys import DB
from signaling_server.auth.identity import caller
from signaling_server.db.models import ForwardJob, Instance, Study
from signaling_server.dicomstore.forward import FORWARDER, JobState, requeue
from signaling_server.states import IllegalMove

routes = web.RouteTableDef()

MAX_LISTED = 1000


def job_json(job: ForwardJob, instance: Instance, study: Study) -> dict[str, Any]:
    return {
        "id": job.id,
        "instance_id": job.instance_id,
        "sop_uid": instance.sop_uid,
        "study_uid": study.study_uid,
        "site_id": study.site_id,
        "destination": job.destination,
        "state": job.state,
        "attempts": job.attempts,
        "last_error": job.last_error,
        "next_attempt_at": iso(job.next_attempt_at),
    }


async def list_jobs(db: AsyncSession, state: str, limit: int = 100) -> list[dict[str, Any]]:
    """The jobs in `state`, oldest first; another state is refused (invalid_request)."""
    if state not in set(JobState):
        raise errors.InvalidRequest(f"'state' must be one of {', '.join(JobState)}")
    query = (
        select(ForwardJob, Instance, Study)
        .join(Instance, Instance.id == ForwardJob.instance_id)
        .join(Study, Study.id == Instance.study_id)
        .where(ForwardJob.state == state)
        .order_by(ForwardJob.id)
        .limit(limit)
    )
    return [job_json(job, instance, study) for job, instance, study in (await db.execute(query)).all()]


async def requeue_jobs(db: AsyncSession, job_ids: Sequence[int] | None) -> list[int]:
    """Re-queue the given jobs (each must exist and have failed: else nothing changes), or every failed job."""
    now = datetime.now(UTC)
    if job_ids is None:
        jobs = list(await db.scalars(select(ForwardJob).where(ForwardJob.state == JobState.FAILED)))
    else:
        jobs = []
        for job_id in job_ids:
            job = await db.get(ForwardJob, job_id)
            if job is None:
                raise errors.NotFound(f"no forward job {job_id}")
            jobs.append(job)
    try:
        for job in jobs:
            requeue(job, now)
    except IllegalMove as exc:
        await db.rollback()
        raise errors.InvalidTransition(f"forward job {exc.entity_id}: {exc.message}") from None
    await db.commit()
    return [job.id for job in jobs]


@routes.get("/api/v1/forward-jobs")
async def get_jobs(request: web.Request) -> web.Response:
    """`?state=failed` (the default) | `pending` | `sent`, `&limit=` (at most 1000) → `{"jobs": [ForwardJob]}`."""
    (await caller(request)).require_user("admin")
    state = request.query.get("state", JobState.FAILED)
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        limit = 0
    if not 0 < limit <= MAX_LISTED:
        raise errors.InvalidRequest(f"'limit' must be a whole number from 1 to {MAX_LISTED}")
    async with request.app[DB]() as db:
        jobs = await list_jobs(db, state, limit)
    return web.json_response({"jobs": jobs})


@routes.post("/api/v1/forward-jobs/{id}/requeue")
async def requeue_one(request: web.Request) -> web.Response:
    """A failed job is pending again, due now, attempts 0 → ForwardJob; 409 `invalid_transition` unless it failed."""
    (await caller(request)).require_user("admin")
    try:
        job_id = int(request.match_info["id"])
    except ValueError:
        raise errors.NotFound("no such forward job") from None
    async with request.app[DB]() as db:
        await requeue_jobs(db, [job_id])
        job, instance, study = (
            await db.execute(
                select(ForwardJob, Instance, Study)
                .join(Instance, Instance.id == ForwardJob.instance_id)
                .join(Study, Study.id == Instance.study_id)
                .where(ForwardJob.id == job_id)
            )
        ).one()
        answer = job_json(job, instance, study)
    _wake(request)
    return web.json_response(answer)


@routes.post("/api/v1/forward-jobs/requeue")
async def requeue_many(request: web.Request) -> web.Response:
    """`{"ids": [job id]}`, or `{}` for every failed job → `{"requeued": [job id]}` (all or none)."""
    (await caller(request)).require_user("admin")
    data = await body.json_body(request)
    ids = data.get("ids")
    if ids is not None and (not isinstance(ids, list) or not all(type(i) is int for i in ids) or len(ids) > MAX_LISTED):
        raise errors.InvalidRequest(f"'ids' must be a list of at most {MAX_LISTED} job ids")
    async with request.app[DB]() as db:
        requeued = await requeue_jobs(db, ids)
    if requeued:
        _wake(request)
    return web.json_response({"requeued": requeued})


def _wake(request: web.Request) -> None:
    forwarder = request.app.get(FORWARDER)
    if forwarder is not None:
        forwarder.wake()
