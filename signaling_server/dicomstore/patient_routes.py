"""Regional patient identities over REST (DICOMWEB.md §Patients; docs/SECURITY.md §3).

    GET  /api/v1/patients/{id}                 one identity, as far as the caller may see it
    GET  /api/v1/patients/{id}/studies         its studies the caller may see, from every site
    GET  /api/v1/patient-matches?state=open    possible matches (registrars)
    POST /api/v1/patient-matches/{id}/confirm  link the two (registrars)
    POST /api/v1/patient-matches/{id}/reject   keep the two apart for good (registrars)
    POST /api/v1/patients/{id}/link            link the identity named in the body into this one (registrars)
    GET  /api/v1/patient-links?patient_id=     links made, with what moved (registrars)
    POST /api/v1/patient-links/{id}/unlink     split a link back (registrars)

A site is shown its own identifiers of a person and the demographics it sent, never another site's, unless a
grant names the patient; registrars see every site's (they keep the regional index) but no studies by that.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.access import policy
from signaling_server.access.policy import Sight
from signaling_server.api import body
from signaling_server.api.representations import iso
from signaling_server.appkeys import DB
from signaling_server.auth.identity import caller
from signaling_server.db.models import Patient, PatientIdentifier, PatientLink, PatientMatch, Site, Study
from signaling_server.dicomstore import identity, links, matches

routes = web.RouteTableDef()

REGISTRAR = "registrar"


def patient_json(
    patient: Patient, identifiers: list[PatientIdentifier], sites: dict[str, Site], shown: frozenset[str] | None
) -> dict[str, Any]:
    """The identity as shown to a caller who sees the identifiers of the `shown` sites (None: every site)."""
    rows = [row for row in identifiers if shown is None or row.site_id in shown]
    local, regional = [], []
    for row in rows:
        if identity.is_regional(row.local_id):
            issuer, _, value = row.local_id.partition(identity.SEPARATOR)
            if issuer and {"issuer": issuer, "value": value} not in regional:
                regional.append({"issuer": issuer, "value": value})
        else:
            site = sites.get(row.site_id)
            local.append({"site": {"id": row.site_id, "code": site.code if site else None}, "local_id": row.local_id})
    if shown is None:
        name, birth_date, sex = patient.name, patient.birth_date, patient.sex
    else:  # what the caller's sites sent
        sent = next((r for r in rows if r.name or r.birth_date), None)
        name, birth_date, sex = (sent.name, sent.birth_date, sent.sex) if sent else ("", "", "")
    return {
        "id": patient.id,
        "name": name,
        "birth_date": birth_date,
        "sex": sex,
        "identifiers": local,
        "regional_ids": regional,
        "created_at": iso(patient.created_at),
    }


def study_json(study: Study, sites: dict[str, Site]) -> dict[str, Any]:
    site = sites.get(study.site_id)
    return {
        "id": study.id,
        "study_uid": study.study_uid,
        "site": {"id": study.site_id, "code": site.code if site else None, "name": site.name if site else None},
        "local_patient_id": study.local_patient_id,
        "accession": study.accession,
        "modality": study.modality,
        "description": study.description,
        "study_date": study.study_date,
        "state": study.state,
        "instance_count": study.instance_count,
    }


def link_json(link: PatientLink) -> dict[str, Any]:
    return {
        "id": link.id,
        "kept_id": link.kept_id,
        "merged_id": link.merged_id,
        "reason": link.reason,
        "state": link.state,
        "moved": link.moved,
        "by": link.by_user_id,
        "at": iso(link.at),
        "unlinked_by": link.unlinked_by_id,
        "unlinked_at": iso(link.unlinked_at),
    }


async def _sites(db: AsyncSession) -> dict[str, Site]:
    return {s.id: s for s in await db.scalars(select(Site))}


async def _full(db: AsyncSession, patient: Patient) -> dict[str, Any]:
    ids = await identity.identifiers_of(db, [patient.id])
    return patient_json(patient, ids.get(patient.id, []), await _sites(db), None)


async def _match_json(db: AsyncSession, match: PatientMatch) -> dict[str, Any]:
    one, two = await db.get(Patient, match.patient_id), await db.get(Patient, match.candidate_id)
    assert one is not None and two is not None
    return {
        "id": match.id,
        "reason": match.reason,
        "detail": match.detail,
        "state": match.state,
        "patient": await _full(db, one),
        "candidate": await _full(db, two),
        "created_at": iso(match.created_at),
        "decided_by": match.decided_by_id,
        "decided_at": iso(match.decided_at),
        "link_id": match.link_id,
    }


@routes.get("/api/v1/patients/{id}")
async def read(request: web.Request) -> web.Response:
    who = await caller(request)
    who.require_user()  # a device reads no patient
    async with request.app[DB]() as db:
        scope = await policy.scope_of(db, who)
        patient = await identity.live_patient(db, request.match_info["id"])
        ids = (await identity.identifiers_of(db, [patient.id])).get(patient.id, [])
        shown = policy.patient_sites(scope, patient.id, ids)
        sites = await _sites(db)
    return web.json_response(patient_json(patient, ids, sites, shown))


@routes.get("/api/v1/patients/{id}/studies")
async def studies(request: web.Request) -> web.Response:
    """The identity's studies the caller sees in full, from every site, newest first."""
    who = await caller(request)
    who.require_user()  # a device reads no patient
    async with request.app[DB]() as db:
        scope = await policy.scope_of(db, who)
        patient = await identity.live_patient(db, request.match_info["id"])
        ids = (await identity.identifiers_of(db, [patient.id])).get(patient.id, [])
        policy.patient_sites(scope, patient.id, ids)
        found = [
            s for s in await identity.patient_studies(db, patient.id) if policy.study_sight(scope, s) == Sight.FULL
        ]
        sites = await _sites(db)
    return web.json_response({"patient_id": patient.id, "studies": [study_json(s, sites) for s in found]})


@routes.get("/api/v1/patient-matches")
async def list_matches(request: web.Request) -> web.Response:
    (await caller(request)).require_user(REGISTRAR)
    state = request.query.get("state", "")
    if state and state not in tuple(matches.MatchState):
        raise errors.InvalidRequest(f"state must be one of {', '.join(matches.MatchState)}")
    async with request.app[DB]() as db:
        found = [await _match_json(db, m) for m in await matches.listing(db, state or None)]
    return web.json_response({"matches": found})


@routes.post("/api/v1/patient-matches/{id}/confirm")
async def confirm(request: web.Request) -> web.Response:
    who = await caller(request)
    registrar = who.require_user(REGISTRAR)
    async with request.app[DB]() as db:
        link = await matches.confirm(db, request.match_info["id"], by=registrar.id, at=who.at)
        await db.commit()
        match = await db.get(PatientMatch, request.match_info["id"])
        assert match is not None
        answer = {"match": await _match_json(db, match), "link": link_json(link)}
    return web.json_response(answer)


@routes.post("/api/v1/patient-matches/{id}/reject")
async def reject(request: web.Request) -> web.Response:
    who = await caller(request)
    registrar = who.require_user(REGISTRAR)
    async with request.app[DB]() as db:
        match = await matches.reject(db, request.match_info["id"], by=registrar.id, at=who.at)
        await db.commit()
        answer = await _match_json(db, match)
    return web.json_response(answer)


@routes.post("/api/v1/patients/{id}/link")
async def link(request: web.Request) -> web.Response:
    """Link the identity named in the body into this one (a registrar's decision without a proposed match)."""
    who = await caller(request)
    registrar = who.require_user(REGISTRAR)
    data = await body.json_body(request)
    other_id = body.text(data, "patient_id", max_len=32)
    keep_id = request.match_info["id"]
    async with request.app[DB]() as db:
        if await matches.kept_apart(db, keep_id, other_id):
            raise errors.KeptApart("a registrar decided these are different people: they stay apart")
        made = await links.link_patients(db, keep_id, other_id, by_user_id=registrar.id, reason="registrar", now=who.at)
        await db.commit()
        keep = await identity.live_patient(db, keep_id)
        answer = {**await _full(db, keep), "link": link_json(made)}
    return web.json_response(answer)


@routes.get("/api/v1/patient-links")
async def list_links(request: web.Request) -> web.Response:
    (await caller(request)).require_user(REGISTRAR)
    query = select(PatientLink).order_by(PatientLink.at.desc()).limit(500)
    patient_id = request.query.get("patient_id", "")
    if patient_id:
        query = query.where(or_(PatientLink.kept_id == patient_id, PatientLink.merged_id == patient_id))
    async with request.app[DB]() as db:
        found = [link_json(x) for x in await db.scalars(query)]
    return web.json_response({"links": found})


@routes.post("/api/v1/patient-links/{id}/unlink")
async def unlink(request: web.Request) -> web.Response:
    who = await caller(request)
    registrar = who.require_user(REGISTRAR)
    async with request.app[DB]() as db:
        split = await matches.unlink(db, request.match_info["id"], by=registrar.id, at=who.at)
        await db.commit()
        answer = link_json(split)
    return web.json_response(answer)
