"""The reading queue over REST (PROTOCOL.md §5): list with filters, read, register, prioritise, claim, release."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from signaling_server.access import redaction
from signaling_server.access.policy import Sight
from signaling_server.access.redaction import Identifiers
from signaling_server.api import body
from signaling_server.api.representations import iso, site_json
from signaling_server.appkeys import DB, SETTINGS
from signaling_server.auth.identity import caller
from signaling_server.events import changes
from signaling_server.events.hub import CHANGES
from signaling_server.reading import deidentified, service
from signaling_server.reading.service import QueueFilter, StudyView
from signaling_server.reading.targets import TARGETS

routes = web.RouteTableDef()


def patient_json(view: StudyView) -> dict[str, Any]:
    """The study's patient as its site sent them; without name and IDs for a de-identified view."""
    s = view.study
    if view.sight < Sight.FULL:
        return {"id": None, "local_id": "", "name": "", "deidentified": True}
    return {"id": s.patient_id, "local_id": s.local_patient_id, "name": s.patient_name}


def study_json(view: StudyView, at: datetime, patient: Identifiers = redaction.NONE) -> dict[str, Any]:
    """A study; a de-identified reader's with its description cleared of `patient`'s identifiers."""
    s = view.study
    seconds_left = (s.due_at - at).total_seconds() if s.due_at is not None else None
    clock_running = s.state in service.UNAPPROVED_WITH_CLOCK
    lock = None
    if view.lock_holder is not None and view.lock_active(at):
        lock = {
            "holder": {"id": view.lock_holder.id, "name": view.lock_holder.name},
            "expires_at": iso(s.lock_expires_at),
        }
    return {
        "id": s.id,
        "study_uid": s.study_uid,
        "site": site_json(view.site),
        "patient": patient_json(view),
        "accession": s.accession if view.sight == Sight.FULL else "",
        "modality": s.modality,
        "description": deidentified.text_for(view.sight, s.description, patient),
        "study_date": s.study_date,
        "consultation_id": s.consultation_id,
        "exam_type": view.exam_type,
        "state": s.state,
        "priority": s.priority,
        "registered_at": iso(s.registered_at),
        "examined_at": iso(s.examined_at),
        "due_at": iso(s.due_at),
        "target_seconds": (s.due_at - s.examined_at).total_seconds() if s.due_at and s.examined_at else None,
        "reported_at": iso(s.reported_at),
        "approved_at": iso(s.approved_at),
        "turnaround_seconds": (s.approved_at - s.examined_at).total_seconds()
        if s.approved_at and s.examined_at
        else None,
        "seconds_left": seconds_left if clock_running else None,
        "overdue": bool(clock_running and seconds_left is not None and seconds_left < 0),
        "lock": lock,
        "instance_count": s.instance_count,
    }


@routes.get("/api/v1/studies")
async def list_studies(request: web.Request) -> web.Response:
    who = await caller(request)
    filt = QueueFilter.from_query(dict(request.query))
    at = service.now()
    async with request.app[DB]() as db:
        views = await service.list_queue(db, who, filt, at)
        counts = await service.counts(db, who, at)
        patients = await deidentified.identifiers_of(db, [v.study for v in views if v.sight == Sight.DEIDENTIFIED])
    studies = [study_json(v, at, patients.get(v.study.id, redaction.NONE)) for v in views]
    return web.json_response({"now": iso(at), "counts": counts, "studies": studies})


@routes.post("/api/v1/studies")
async def register(request: web.Request) -> web.Response:
    who = await caller(request)
    data = await body.json_body(request)
    at = service.now()
    async with request.app[DB]() as db:
        study = await service.register_order(db, who, data, at)
        view = await service.get_visible(db, who, study.id)
    request.app[CHANGES].changed(changes.of_study(view.study))
    return web.json_response(study_json(view, at), status=201)


@routes.get("/api/v1/studies/{id}")
async def read(request: web.Request) -> web.Response:
    who = await caller(request)
    at = service.now()
    async with request.app[DB]() as db:
        view = await service.get_visible(db, who, request.match_info["id"], least=Sight.DEIDENTIFIED)
        priors = await service.priors(db, who, view)
        patients = await deidentified.identifiers_of(db, [view.study] if view.sight == Sight.DEIDENTIFIED else [])
    data = study_json(view, at, patients.get(view.study.id, redaction.NONE))
    data["priors"] = [study_json(p, at) for p in priors]
    data["now"] = iso(at)
    return web.json_response(data)


@routes.post("/api/v1/studies/{id}/priority")
async def prioritise(request: web.Request) -> web.Response:
    who = await caller(request)
    data = await body.json_body(request)
    async with request.app[DB]() as db:
        await service.set_priority(db, who, request.match_info["id"], data, request.app[TARGETS])
        view = await service.get_visible(db, who, request.match_info["id"])
    request.app[CHANGES].changed(changes.of_study(view.study))
    return web.json_response(study_json(view, service.now()))


@routes.post("/api/v1/studies/{id}/claim")
async def claim(request: web.Request) -> web.Response:
    who = await caller(request)
    at = service.now()
    async with request.app[DB]() as db:
        await service.claim(db, who, request.match_info["id"], request.app[SETTINGS].lock_minutes, at)
        view = await service.get_visible(db, who, request.match_info["id"])
    request.app[CHANGES].changed(changes.of_study(view.study))
    return web.json_response(study_json(view, at))


@routes.post("/api/v1/studies/{id}/release")
async def release(request: web.Request) -> web.Response:
    who = await caller(request)
    at = service.now()
    async with request.app[DB]() as db:
        await service.release(db, who, request.match_info["id"], at)
        view = await service.get_visible(db, who, request.match_info["id"])
    request.app[CHANGES].changed(changes.of_study(view.study))
    return web.json_response(study_json(view, at))
