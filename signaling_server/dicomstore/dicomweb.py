"""The DICOMweb routes under /dicomweb (DICOMWEB.md): STOW-RS, QIDO-RS and WADO-RS over the DICOM store.

Callers authenticate like everywhere else (cookie + CSRF, `tok_` or `dev_` bearer). Devices only store; a
reader sees the studies the access policy gives them in full (signaling_server/access/policy.py: their own site,
the sites they serve, what their grants open). De-identified sight (trainers) reaches only what carries no patient
attributes: the series and instance searches of a study (UIDs, modality, numbers) and rendered frames; never the
study search, the objects or their metadata (the de-identified object: /api/v1/teaching/instances/{uid}).
"""

from __future__ import annotations

import json

from aiohttp import web

from signaling_server import errors
from signaling_server.access import policy
from signaling_server.access.policy import Sight
from signaling_server.appkeys import DB, SETTINGS
from signaling_server.audit.middleware import note as audit_note
from signaling_server.auth.identity import Caller, caller
from signaling_server.consultations import captures
from signaling_server.db.models import Instance, Series
from signaling_server.dicomstore import qido, stow, wado
from signaling_server.dicomstore.blobs import BLOBS
from signaling_server.dicomstore.ingest import DICOM_STORE
from signaling_server.reading.deidentified import identifiers_of

routes = web.RouteTableDef()

PREFIX = "/dicomweb"
DICOM_JSON = "application/dicom+json"
_STUDY = PREFIX + "/studies/{study}"
_SERIES = _STUDY + "/series/{series}"
_INSTANCE = _SERIES + "/instances/{instance}"


def base_url(request: web.Request) -> str:
    return f"{request.url.origin()}{PREFIX}"


def _json(body: object, status: int = 200, warning: str | None = None) -> web.Response:
    # No charset parameter: DICOM JSON is UTF-8 by definition, and some clients compare the media type verbatim.
    headers = {"Content-Type": DICOM_JSON}
    if warning:
        headers["Warning"] = f'299 teleus "{warning}"'
    return web.Response(body=json.dumps(body, ensure_ascii=False).encode(), status=status, headers=headers)


# --- STOW-RS ----------------------------------------------------------------------------------------------------


@routes.post(PREFIX + "/studies")
@routes.post(_STUDY)
async def store(request: web.Request) -> web.StreamResponse:
    who = await caller(request)
    async with request.app[DB]() as db:
        site_id = await policy.storing_site(db, who, request.query.get("site"))
    settings = request.app[SETTINGS]
    try:
        parser = await stow.read_parts(
            request, settings.max_dicom_bytes, settings.max_stow_parts, request.app[BLOBS].tmp
        )
    except errors.TooLarge as exc:  # too_large, too_many_parts
        response = web.json_response(exc.as_json(), status=exc.status)
        response.force_close()  # the rest of the body is not wanted: do not linger reading it
        return response
    study_uid = request.match_info.get("study")
    try:
        outcomes = await stow.store_parts(request.app[DICOM_STORE], parser.parts, site_id=site_id, study_uid=study_uid)
    finally:
        parser.close()
    stored = [outcome.stored for outcome in outcomes if outcome.stored is not None]
    for instance in stored:
        await captures.announce_stored(request.app, instance)
    if stored:  # the audit row names the study stored into, and the objects
        first = stored[0]
        audit_note(request, object_id=first.study_uid, study_id=first.study_id, patient_id=first.patient_id)
        audit_note(request, instances=[instance.sop_uid for instance in stored][:100])
    status, body = stow.answer(outcomes, base_url(request), study_uid)
    return _json(body, status)


# --- QIDO-RS ----------------------------------------------------------------------------------------------------


def reader(who: Caller) -> Caller:
    if who.device is not None:
        raise errors.Forbidden("edge devices store objects; they do not read them back")
    who.require_user()
    return who


def _ignored(q: qido.Query) -> str | None:
    return f"not matched on: {', '.join(q.ignored)}" if q.ignored else None


@routes.get(PREFIX + "/studies")
async def search_studies(request: web.Request) -> web.Response:
    who = reader(await caller(request))
    wado.check_json_accept(request.headers.get("Accept", ""))
    q = qido.parse_query(request.query, qido.STUDY_KEYS)
    async with request.app[DB]() as db:
        scope = await policy.scope_of(db, who)
        found = await qido.search_studies(db, q, scope, base_url(request))
    return _json(found, warning=_ignored(q))


@routes.get(_STUDY + "/series")
async def search_series(request: web.Request) -> web.Response:
    who = reader(await caller(request))
    wado.check_json_accept(request.headers.get("Accept", ""))
    q = qido.parse_query(request.query, qido.SERIES_KEYS)
    async with request.app[DB]() as db:
        scope = await policy.scope_of(db, who)
        study = await qido.visible_study(db, request.match_info["study"], scope, Sight.DEIDENTIFIED)
        deidentified = policy.study_sight(scope, study) == Sight.DEIDENTIFIED
        patient = (await identifiers_of(db, [study]))[study.id] if deidentified else None
        found = await qido.search_series(db, study, q, base_url(request), patient)
    return _json(found, warning=_ignored(q))


@routes.get(_STUDY + "/instances")
@routes.get(_SERIES + "/instances")
async def search_instances(request: web.Request) -> web.Response:
    who = reader(await caller(request))
    wado.check_json_accept(request.headers.get("Accept", ""))
    series_uid = request.match_info.get("series")
    q = qido.parse_query(request.query, qido.INSTANCE_KEYS if series_uid is None else qido.INSTANCE_KEYS - {"Modality"})
    async with request.app[DB]() as db:
        scope = await policy.scope_of(db, who)
        study = await qido.visible_study(db, request.match_info["study"], scope, Sight.DEIDENTIFIED)
        series = await qido.study_series(db, study, series_uid) if series_uid else None
        found = await qido.search_instances(db, study, series, q, base_url(request))
    return _json(found, warning=_ignored(q))


# --- WADO-RS ----------------------------------------------------------------------------------------------------


async def _rows(request: web.Request, least: Sight = Sight.FULL) -> list[tuple[Instance, Series]]:
    """The instances a WADO-RS path names (study, series or instance) that the caller sees with `least` sight."""
    who = reader(await caller(request))
    match = request.match_info
    async with request.app[DB]() as db:
        study = await qido.visible_study(db, match["study"], await policy.scope_of(db, who), least)
        series = await qido.study_series(db, study, match["series"]) if "series" in match else None
        return await qido.instances_of(db, study, series, match.get("instance"))


@routes.get(_STUDY)
@routes.get(_SERIES)
@routes.get(_INSTANCE)
async def retrieve(request: web.Request) -> web.StreamResponse:
    rows = await _rows(request)
    return await wado.send_instances(request, request.app[BLOBS], rows, request.headers.get("Accept", ""))


@routes.get(_STUDY + "/metadata")
@routes.get(_SERIES + "/metadata")
@routes.get(_INSTANCE + "/metadata")
async def retrieve_metadata(request: web.Request) -> web.Response:
    rows = await _rows(request)
    wado.check_json_accept(request.headers.get("Accept", ""))
    return _json(await wado.metadata(request.app[BLOBS], rows))


@routes.get(_INSTANCE + "/rendered")
@routes.get(_INSTANCE + "/frames/{frame}/rendered")
async def retrieve_rendered(request: web.Request) -> web.Response:
    frame = wado.frame_number(request.match_info["frame"]) if "frame" in request.match_info else None
    who = reader(await caller(request))
    match = request.match_info
    async with request.app[DB]() as db:  # pixels only, no patient attributes: de-identified sight reaches them
        scope = await policy.scope_of(db, who)
        study = await qido.visible_study(db, match["study"], scope, Sight.DEIDENTIFIED)
        series = await qido.study_series(db, study, match["series"])
        (instance, _), *_ = await qido.instances_of(db, study, series, match["instance"])
        identified = policy.study_sight(scope, study) == Sight.FULL
    audit_note(request, copy="original" if identified else "deidentified")
    limits = request.app[DICOM_STORE].limits
    return await wado.rendered(request, request.app[BLOBS], instance, frame, limits, mask_banners=not identified)
