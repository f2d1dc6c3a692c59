"""Trainer reviews, session QC and the QC dashboard over REST (RECORDINGS.md; CLINICAL.md §5; QC.md §4).

GET  /api/v1/reviews/scheme                 the form: OSAUS and image-quality items, scale, weights
GET  /api/v1/recordings/{id}/qc             the session's QC (completeness, image metrics, link, alerts)
GET  /api/v1/recordings/{id}/reviews        every review of the recording
GET  /api/v1/recordings/{id}/review         the calling trainer's review (404 until saved)
PUT  /api/v1/recordings/{id}/review         save the calling trainer's review (201 created, 200 replaced)
GET  /api/v1/reviews?sonographer=&site=&trainer=   reviews, newest session first
GET  /api/v1/qc/dashboard?site=&sonographer=&from=&to=   sessions and one series per metric
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from signaling_server.api import body
from signaling_server.api.representations import iso
from signaling_server.appkeys import DB, QC_WEIGHTS
from signaling_server.auth.identity import caller
from signaling_server.quality import dashboard, session_qc
from signaling_server.session_recordings import service as recordings
from signaling_server.session_recordings.files import store_of
from signaling_server.training import reviews
from signaling_server.training.reviews import ReviewView

routes = web.RouteTableDef()


def _person(user: Any) -> dict[str, Any] | None:
    return {"id": user.id, "name": user.name} if user is not None else None


def review_json(view: ReviewView) -> dict[str, Any]:
    r, rec = view.review, view.recording
    return {
        "id": r.id,
        "recording_id": rec.id,
        "consultation_id": rec.consultation_id,
        "exam_type": view.consultation.exam_type,
        "recording_started_at": iso(rec.started_at),
        "duration_seconds": rec.duration_seconds,
        "site": {"id": view.site.id, "code": view.site.code, "name": view.site.name},
        "sonographer": _person(view.sonographer),
        "trainer": _person(view.trainer),
        "osaus": r.osaus,
        "image_quality": r.image_quality,
        "comments": r.comments,
        "score": r.score,
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
    }


@routes.get("/api/v1/reviews/scheme")
async def review_scheme(request: web.Request) -> web.Response:
    (await caller(request)).require_user()
    weights: dict[str, float] = request.app[QC_WEIGHTS]
    return web.json_response(reviews.scheme(weights))


@routes.get("/api/v1/recordings/{id}/qc")
async def recording_qc(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        view = await recordings.get_visible(db, who, request.match_info["id"])
        qc = await session_qc.load(db, store_of(request.app), view.recording, view.consultation.exam_type)
    return web.json_response({"recording_id": view.recording.id, **qc.to_dict()})


@routes.get("/api/v1/recordings/{id}/reviews")
async def recording_reviews(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        views = await reviews.for_recording(db, who, request.match_info["id"])
    return web.json_response({"reviews": [review_json(v) for v in views]})


@routes.get("/api/v1/recordings/{id}/review")
async def my_review(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        view = await reviews.mine(db, who, request.match_info["id"])
    return web.json_response(review_json(view))


@routes.put("/api/v1/recordings/{id}/review")
async def save_review(request: web.Request) -> web.Response:
    """Create or replace the caller's review; the score is computed with the session's QC as it is now."""
    who = await caller(request)
    who.require_user(*reviews.REVIEWER_ROLES)
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        recording = await recordings.get_visible(db, who, request.match_info["id"])
        qc = await session_qc.load(db, store_of(request.app), recording.recording, recording.consultation.exam_type)
        weights: dict[str, float] = request.app[QC_WEIGHTS]
        view, created = await reviews.save(db, who, recording.recording.id, data, qc, weights)
    return web.json_response(review_json(view), status=201 if created else 200)


@routes.get("/api/v1/reviews")
async def list_reviews(request: web.Request) -> web.Response:
    who = await caller(request)
    filters = {key: request.query.get(key, "")[:64].strip() for key in ("sonographer", "site", "trainer")}
    async with request.app[DB]() as db:
        views = await reviews.list_reviews(db, who, filters)
    return web.json_response({"reviews": [review_json(v) for v in views]})


@routes.get("/api/v1/qc/dashboard")
async def qc_dashboard(request: web.Request) -> web.Response:
    who = await caller(request)
    filters = dashboard.parse_filters(request.query)
    async with request.app[DB]() as db:
        weights: dict[str, float] = request.app[QC_WEIGHTS]
        answer = await dashboard.dashboard(db, who, filters, weights)
    return web.json_response(answer)
