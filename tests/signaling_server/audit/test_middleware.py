"""Every read and change of patient data through HTTP leaves its row, on the two-site world (SQLite and PostgreSQL):
who, from where, what (route, object, study, patient, query), and the result, refusals included; a read that
cannot be audited is not answered."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select, text

from signaling_server.appkeys import DB, ENGINE
from signaling_server.db.models import AuditEvent
from signaling_server.dicomstore.ingest import DICOM_STORE, StoredInstance, store_instance
from tests.conftest import THYROID_REQUEST, Api
from tests.signaling_server.dicomstore.objects import image, multipart
from tests.signaling_server.session_recordings.test_routes import live_consultation, timeline_bytes, upload

DICOM_JSON = {"Accept": "application/dicom+json"}
WADO = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
STUDY = "/api/v1/studies/{id}"


async def trail(app: web.Application) -> list[AuditEvent]:
    async with app[DB]() as db:
        return list(await db.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


async def newest(app: web.Application, route: str) -> AuditEvent:
    rows = [row for row in await trail(app) if row.route == route]
    assert rows, f"no audit row for {route}"
    return rows[-1]


def who_what_result(row: AuditEvent) -> tuple[Any, ...]:
    return row.actor_name, row.action, row.object_kind, row.object_id, row.status, row.outcome


async def get(api: Api, path: str, headers: dict[str, str] | None = None) -> int:
    async with api.session.get(api.base + path, headers=headers or {}) as response:
        await response.read()
        return response.status


async def stored_image(app: web.Application, site_id: str, name: str = "Zhang^San") -> StoredInstance:
    return await store_instance(app[DICOM_STORE], image(name=name, patient_id="AUD-1"), site_id=site_id,
                                received_via="test")


async def test_a_sonographers_reads_each_leave_a_row_with_who_what_and_result(people: Any) -> None:
    client, world, open_api = people
    app = client.app
    stored = await stored_image(app, world.site_a)
    expert = await open_api("expert")
    await expert.post(f"/api/v1/studies/{stored.study_id}/claim")
    _, report = await expert.post(f"/api/v1/studies/{stored.study_id}/reports", {"kind": "free_text", "content": {}})
    sono = await open_api("sono_a")
    sono_id = world.users["sono_a"]
    instance = f"/dicomweb/studies/{stored.study_uid}/series/{stored.series_uid}/instances/{stored.sop_uid}"

    reads: list[tuple[str, dict[str, str], str, str, str, str]] = [
        # path, headers, expected route, action, object kind, object id
        (f"/api/v1/studies/{stored.study_id}", {}, STUDY, "read", "study", stored.study_id),
        (f"/api/v1/reports/{report['id']}", {}, "/api/v1/reports/{id}", "read", "report", report["id"]),
        (f"/api/v1/reports/{report['id']}/print", {}, "/api/v1/reports/{id}/print", "print", "report", report["id"]),
        (f"/api/v1/patients/{stored.patient_id}", {}, "/api/v1/patients/{id}", "read", "patient", stored.patient_id),
        (instance, WADO, "/dicomweb/studies/{study}/series/{series}/instances/{instance}", "read", "instance",
         stored.sop_uid),
        (instance + "/rendered", {"Accept": "image/png"},
         "/dicomweb/studies/{study}/series/{series}/instances/{instance}/rendered", "read", "instance", stored.sop_uid),
    ]
    for path, headers, route, action, kind, object_id in reads:
        assert await get(sono, path, headers) == 200, path
        row = await newest(app, route)
        assert who_what_result(row) == ("sono_a", action, kind, object_id, 200, "ok"), path
        assert (row.actor_kind, row.actor_id, row.actor_role, row.site_id) == ("user", sono_id, "sonographer",
                                                                                world.site_a)
        assert row.method == "GET" and row.client == "127.0.0.1"
        assert row.patient_id == stored.patient_id, path
        assert row.study_id == (None if kind == "patient" else stored.study_id), path

    assert await get(sono, "/dicomweb/studies?PatientName=Zhang*&PatientID=AUD-1", DICOM_JSON) == 200
    qido = await newest(app, "/dicomweb/studies")
    assert who_what_result(qido) == ("sono_a", "search", "study_uid", None, 200, "ok")
    assert qido.detail == {"query": {"PatientName": "Zhang*", "PatientID": "AUD-1"}}  # what was searched for


async def test_recording_media_timeline_chat_and_the_live_session_are_audited(people: Any) -> None:
    client, world, open_api = people
    app = client.app
    cid = await live_consultation(open_api)
    edge = await open_api(bearer=world.device_a_credential)
    _, recording = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    rid = recording["id"]
    await upload(edge, rid, "media.mp4", bytes(range(256)) * 8)
    await upload(edge, rid, "timeline.jsonl", timeline_bytes(cid))
    await edge.post(f"/api/v1/recordings/{rid}/end", {"files": ["media.mp4", "timeline.jsonl"]})
    written = await newest(app, "/api/v1/recordings/{id}/files/{name}")
    assert (written.actor_kind, written.actor_id, written.action, written.object_id) == (
        "device", world.device_a, "write", rid)
    assert written.detail["path"] == {"name": "timeline.jsonl"} and written.detail["query"] == {"offset": "0"}

    sono = await open_api("sono_a")
    for path, route in ((f"/api/v1/recordings/{rid}/media", "/api/v1/recordings/{id}/media"),
                        (f"/api/v1/recordings/{rid}/timeline", "/api/v1/recordings/{id}/timeline")):
        assert await get(sono, path) == 200
        assert who_what_result(await newest(app, route)) == ("sono_a", "read", "recording", rid, 200, "ok")

    assert await get(sono, f"/api/v1/consultations/{cid}/chat") == 200
    chat = await newest(app, "/api/v1/consultations/{id}/chat")
    assert who_what_result(chat) == ("sono_a", "read", "consultation", cid, 200, "ok")

    ws = await sono.ws(f"/api/v1/consultations/{cid}/signal")  # the live session and its chat history
    joined = await newest(app, "/api/v1/consultations/{id}/signal")  # written before the socket opened
    assert who_what_result(joined) == ("sono_a", "join", "consultation", cid, 101, "ok")
    await ws.close()


async def test_refused_reads_leave_a_row_with_their_error(people: Any) -> None:
    client, world, open_api = people
    app = client.app
    stored = await stored_image(app, world.site_a)
    other_site = await open_api("sono_b")
    assert await get(other_site, f"/api/v1/studies/{stored.study_id}") == 404
    refused = await newest(app, STUDY)
    assert who_what_result(refused) == ("sono_b", "read", "study", stored.study_id, 404, "not_found")
    assert (refused.site_id, refused.patient_id) == (world.site_b, stored.patient_id)  # whose data was asked for

    nobody = await open_api()
    assert await get(nobody, f"/api/v1/patients/{stored.patient_id}") == 401
    anonymous = await newest(app, "/api/v1/patients/{id}")
    assert (anonymous.actor_kind, anonymous.actor_id, anonymous.status, anonymous.outcome) == (
        "anonymous", None, 401, "unauthenticated")

    device = await open_api(bearer=world.device_a_credential)
    assert await get(device, "/dicomweb/studies?PatientName=Zhang*", DICOM_JSON) == 403
    qido = await newest(app, "/dicomweb/studies")
    assert (qido.actor_kind, qido.outcome, qido.detail) == ("device", "forbidden", {"query": {"PatientName": "Zhang*"}})

    sono = await open_api("sono_a")
    _, waiting = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await other_site.ws(f"/api/v1/consultations/{waiting['id']}/signal")
    join = await newest(app, "/api/v1/consultations/{id}/signal")
    assert who_what_result(join) == ("sono_b", "join", "consultation", waiting["id"], 404, "not_found")


async def test_changes_name_what_they_made(people: Any) -> None:
    client, world, open_api = people
    app = client.app
    sono = await open_api("sono_a")
    status, made = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    assert status == 201
    created = await newest(app, "/api/v1/consultations")
    assert who_what_result(created) == ("sono_a", "write", "consultation", made["id"], 201, "ok")

    edge = await open_api(bearer=world.device_a_credential)
    content_type, body = multipart([image(name="Li^Si", patient_id="AUD-2")])
    headers = {"Content-Type": content_type, **DICOM_JSON}
    async with edge.session.post(edge.base + "/dicomweb/studies", data=io.BytesIO(body), headers=headers) as r:
        assert r.status == 200
    stow = await newest(app, "/dicomweb/studies")
    assert (stow.actor_kind, stow.action, stow.object_kind, stow.status) == ("device", "store", "study_uid", 200)
    assert stow.study_id is not None and stow.patient_id is not None and len(stow.detail["instances"]) == 1


async def _rename_trail(app: web.Application, old: str, new: str) -> None:
    async with app[ENGINE].begin() as conn:
        await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_a_read_that_cannot_be_audited_is_not_answered(people: Any) -> None:
    client, world, open_api = people
    app = client.app
    stored = await stored_image(app, world.site_a, name="Wang^Wu")
    expert = await open_api("expert")
    instance = f"/dicomweb/studies/{stored.study_uid}/series/{stored.series_uid}/instances/{stored.sop_uid}"
    _, consultation = await (await open_api("sono_a")).post("/api/v1/consultations", THYROID_REQUEST)
    before = len(await trail(app))

    await _rename_trail(app, "audit_events", "audit_events_away")  # the trail cannot be written
    try:
        async with expert.session.get(f"{expert.base}/api/v1/studies/{stored.study_id}") as r:
            assert r.status == 503 and await r.json() == {
                "error": "audit_unavailable",
                "message": "this read of patient data cannot be audited just now: try again later",
            }
        with pytest.raises(aiohttp.ClientError):  # a streamed answer: the connection ends before its first byte
            async with expert.session.get(expert.base + instance, headers=WADO) as r:
                await r.read()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await expert.ws(f"/api/v1/consultations/{consultation['id']}/signal")
        assert refused.value.status == 503
        status, claimed = await expert.post(f"/api/v1/studies/{stored.study_id}/claim")
        assert status == 200 and claimed["lock"] is not None  # a change already made is answered truthfully
    finally:
        await _rename_trail(app, "audit_events_away", "audit_events")

    assert await get(expert, f"/api/v1/studies/{stored.study_id}") == 200  # and reads come back with the trail
    assert [row.route for row in (await trail(app))[before:]] == [STUDY]


def _matching(rows: list[AuditEvent], keep: Callable[[AuditEvent], bool]) -> list[AuditEvent]:
    return [row for row in rows if keep(row)]


async def test_directory_and_sign_in_routes_leave_no_row(people: Any) -> None:
    client, world, open_api = people
    admin = await open_api("admin")
    for path in ("/api/v1/auth/me", "/api/v1/sites", "/api/v1/users", "/api/v1/config", "/"):
        assert await get(admin, path) == 200, path
    assert await trail(client.app) == []
    status, _ = await admin.post("/api/v1/users", {"username": "newbie", "name": "New", "role": "expert",
                                                   "password": "a long enough password"})
    assert status == 201
    rows = await trail(client.app)
    assert _matching(rows, lambda r: r.route == "/api/v1/users" and r.actor_name == "admin" and r.action == "write")
