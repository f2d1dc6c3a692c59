"""Regional patient identities over REST (DICOMWEB.md §Patients): read one, its studies from every site, the
duplicate candidates an admin reviews, and linking two identities into one.
"""

from __future__ import annotations

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
from signaling_server.db.models import Patient, PatientIdentifier, Site, Study
from signaling_server.dicomstore import access, identity

routes = web.RouteTableDef()


def patient_json(patient: Patient, identifiers: list[PatientIdentifier], sites: dict[str, Site]) -> dict[str, Any]:
    local, regional = [], []
    for row in identifiers:
        if identity.is_regional(row.local_id):
            issuer, _, value = row.local_id.partition(identity.SEPARATOR)
            if issuer and {"issuer": issuer, "value": value} not in regional:
                regional.append({"issuer": issuer, "value": value})
        else:
            site = sites.get(row.site_id)
            local.append({"site": {"id": row.site_id, "code": site.code if site else None}, "local_id": row.local_id})
    return {
        "id": patient.id,
        "name": patient.name,
        "birth_date": patient.birth_date,
        "sex": patient.sex,
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


async def _sites(db: AsyncSession) -> dict[str, Site]:
    return {s.id: s for s in await db.scalars(select(Site))}


async def _visible_patient(db: AsyncSession, patient_id: str, site_id: str | None) -> Patient:
    patient = await db.get(Patient, patient_id)
    if patient is None:
        raise errors.NotFound("no such patient")
    if site_id is not None:
        ids = (await identity.identifiers_of(db, [patient.id])).get(patient.id, [])
        if not any(row.site_id == site_id for row in ids):
            raise errors.NotFound("no such patient")
    return patient


@routes.get("/api/v1/patients/duplicates")
async def duplicates(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    async with request.app[DB]() as db:
        groups = await identity.duplicate_candidates(db)
        ids = await identity.identifiers_of(db, [p.id for group in groups for p in group])
        sites = await _sites(db)
    candidates = [
        {
            "name": identity.normalised_name(group[0].name),
            "birth_date": group[0].birth_date,
            "sex": group[0].sex,
            "patients": [patient_json(p, ids.get(p.id, []), sites) for p in group],
        }
        for group in groups
    ]
    return web.json_response({"candidates": candidates})


@routes.get("/api/v1/patients/{id}")
async def read(request: web.Request) -> web.Response:
    site_id = access.reading_site(await caller(request))
    async with request.app[DB]() as db:
        patient = await _visible_patient(db, request.match_info["id"], site_id)
        ids = await identity.identifiers_of(db, [patient.id])
        sites = await _sites(db)
    return web.json_response(patient_json(patient, ids.get(patient.id, []), sites))


@routes.get("/api/v1/patients/{id}/studies")
async def studies(request: web.Request) -> web.Response:
    """Every study of the regional identity, from every site (a sonographer: their own site's)."""
    site_id = access.reading_site(await caller(request))
    async with request.app[DB]() as db:
        patient = await _visible_patient(db, request.match_info["id"], site_id)
        found = await identity.patient_studies(db, patient.id, site_id)
        sites = await _sites(db)
    return web.json_response({"patient_id": patient.id, "studies": [study_json(s, sites) for s in found]})


@routes.post("/api/v1/patients/{id}/link")
async def link(request: web.Request) -> web.Response:
    """Merge the identity named in the body into this one (admin): its site IDs and studies move here."""
    admin = (await caller(request)).require_user("admin")
    data = await body.json_body(request)
    other_id = body.text(data, "patient_id", max_len=32)
    async with request.app[DB]() as db:
        keep = await identity.link_patients(
            db, request.match_info["id"], other_id, by_user_id=admin.id, reason="admin", now=datetime.now(UTC)
        )
        await db.commit()
        ids = await identity.identifiers_of(db, [keep.id])
        sites = await _sites(db)
    return web.json_response(patient_json(keep, ids.get(keep.id, []), sites))
