"""RADPEER peer review over REST (CLINICAL.md §4):

GET  /api/v1/peer-reviews/sample?n=5          random final CR/DX/CT reports by others, not yet reviewed by me
POST /api/v1/reports/{id}/peer-reviews        {score: 1|2|3, significance: "a"|"b"|null, comment}  → 201
GET  /api/v1/reports/{id}/peer-reviews        the reviews of one report
GET  /api/v1/peer-reviews/summary?from=&to=   per reader: counts of 1, 2a, 2b, 3a, 3b and the discrepancy rate
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from signaling_server import errors
from signaling_server.api import body
from signaling_server.api.representations import iso
from signaling_server.appkeys import DB
from signaling_server.auth.identity import caller
from signaling_server.reports import peer_review
from signaling_server.reports.peer_review import PeerReviewView, SampledReport

routes = web.RouteTableDef()


def _day(request: web.Request, name: str, *, end: bool = False) -> dt.datetime | None:
    """?from= and ?to= as dates YYYY-MM-DD (UTC, both inclusive)."""
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise errors.InvalidRequest(f"'{name}' must be a date YYYY-MM-DD") from None
    return dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time(), dt.UTC)


def sampled_json(s: SampledReport) -> dict[str, Any]:
    r, study = s.report, s.study
    return {
        "report": {
            "id": r.id,
            "version": r.version,
            "kind": r.kind,
            "state": r.state,
            "content": r.content.get("input", {}),
            "computed": r.content.get("computed", {}),
            "author": {"id": s.author.id, "name": s.author.name},
            "approved_at": iso(r.approved_at),
            "amends_id": r.amends_id,
        },
        "study": {
            "id": study.id,
            "study_uid": study.study_uid,
            "modality": study.modality,
            "description": study.description,
            "accession": study.accession,
            "study_date": study.study_date,
            "site": {"id": s.site.id, "code": s.site.code, "name": s.site.name},
        },
    }


def peer_review_json(v: PeerReviewView) -> dict[str, Any]:
    p = v.review
    return {
        "id": p.id,
        "report_id": p.report_id,
        "study_id": v.study.id,
        "modality": v.study.modality,
        "reader": {"id": v.reader.id, "name": v.reader.name},
        "reviewer": {"id": v.reviewer.id, "name": v.reviewer.name},
        "score": p.score,
        "significance": p.significance,
        "category": peer_review.category(p.score, p.significance),
        "comment": v.comment,
        "created_at": iso(p.created_at),
    }


@routes.get("/api/v1/peer-reviews/sample")
async def sample(request: web.Request) -> web.Response:
    who = await caller(request)
    raw = request.query.get("n", str(peer_review.DEFAULT_SAMPLE))
    if not raw.isdigit() or not 1 <= int(raw) <= peer_review.MAX_SAMPLE:
        raise errors.InvalidRequest(f"n: how many reports, 1 to {peer_review.MAX_SAMPLE}")
    async with request.app[DB]() as db:
        found = await peer_review.sample(db, who, int(raw))
    return web.json_response({"reports": [sampled_json(s) for s in found]})


@routes.post("/api/v1/reports/{id}/peer-reviews")
async def submit(request: web.Request) -> web.Response:
    who = await caller(request)
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        view = await peer_review.submit(db, who, request.match_info["id"], data)
    return web.json_response(peer_review_json(view), status=201)


@routes.get("/api/v1/reports/{id}/peer-reviews")
async def for_report(request: web.Request) -> web.Response:
    who = await caller(request)
    async with request.app[DB]() as db:
        views = await peer_review.for_report(db, who, request.match_info["id"])
    return web.json_response({"peer_reviews": [peer_review_json(v) for v in views]})


@routes.get("/api/v1/peer-reviews/summary")
async def summary(request: web.Request) -> web.Response:
    who = await caller(request)
    start, end = _day(request, "from"), _day(request, "to", end=True)
    async with request.app[DB]() as db:
        readers = await peer_review.summary(db, who, start, end)
    return web.json_response({"categories": list(peer_review.CATEGORIES), "readers": readers})
