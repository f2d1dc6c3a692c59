"""signaling_server.caching on the real app (SQLite and PostgreSQL): no response that may carry patient data may be
stored by a browser or a proxy; the console's own files keep their caching."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from aiohttp import web

from signaling_server.dicomstore.ingest import DICOM_STORE, store_instance
from tests.conftest import Api
from tests.signaling_server.dicomstore.objects import real_file
from tests.signaling_server.reading.studies import arrive
from tests.signaling_server.session_recordings.test_routes import live_consultation, timeline_bytes, upload


def get_paths(app: web.Application) -> list[str]:
    """Every GET route of the app but the console's static files, its parameters filled with a placeholder."""
    paths = []
    for route in app.router.routes():
        resource = route.resource
        if route.method != "GET" or resource is None or isinstance(resource, web.StaticResource):
            continue
        paths.append(re.sub(r"\{[^}]+\}", "1", resource.canonical))
    return sorted(set(paths))


async def headers_of(api: Api, path: str, **headers: str) -> tuple[int, aiohttp.typedefs.LooseHeaders]:
    async with api.session.get(api.base + path, headers=headers) as response:
        if response.content_type != "text/event-stream":  # the change feed never ends: its headers are the answer
            await response.read()
        return response.status, response.headers


def no_store(headers: Any) -> bool:
    return headers.get("Cache-Control") == "no-store" and headers.get("Pragma") == "no-cache"


async def test_every_get_route_answers_no_store_signed_in_or_not(people: Any) -> None:
    client, _, open_api = people
    paths = get_paths(client.app)
    assert "/dicomweb/studies/1/series/1/instances/1/rendered" in paths and "/api/v1/reports/1/print" in paths
    assert len(paths) > 40
    admin, anonymous = await open_api("admin"), await open_api()
    for api in (admin, anonymous):
        for path in paths:
            if path == "/":
                continue
            status, headers = await headers_of(api, path)
            assert no_store(headers), (path, status, headers.get("Cache-Control"))


async def test_the_console_files_keep_their_own_caching(people: Any) -> None:
    _, _, open_api = people
    api = await open_api()
    status, headers = await headers_of(api, "/")
    assert status == 200 and headers["Cache-Control"] == "no-cache" and "Pragma" not in headers
    status, headers = await headers_of(api, "/static/app.js")
    assert status == 200 and "no-store" not in headers.get("Cache-Control", "")


async def test_patient_data_answers_are_never_stored(people: Any) -> None:
    """A representative answer of each kind, each a real 200 carrying patient data: JSON, DICOMweb (QIDO, WADO,
    metadata), a rendered frame and its thumbnail (which said `max-age=3600` before), recording media and
    timeline, a printable report, a de-identified teaching still."""
    client, world, open_api = people
    stored = await store_instance(
        client.app[DICOM_STORE], real_file("US1_UNCR.dcm"), site_id=world.site_a, received_via="test"
    )
    instance = f"/dicomweb/studies/{stored.study_uid}/series/{stored.series_uid}/instances/{stored.sop_uid}"
    expert, trainer = await open_api("expert"), await open_api("trainer")
    study = await arrive(client.app, world.site_a, "CT", name="Zhang^San")
    await expert.post(f"/api/v1/studies/{study}/claim")
    _, draft = await expert.post(
        f"/api/v1/studies/{study}/reports", {"kind": "free_text", "content": {"findings": "No acute findings."}}
    )
    cid = await live_consultation(open_api)
    edge = await open_api(bearer=world.device_a_credential)
    _, recording = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    await upload(edge, recording["id"], "media.mp4", bytes(range(256)) * 8)
    await upload(edge, recording["id"], "timeline.jsonl", timeline_bytes(cid))

    answers = [
        (expert, "/api/v1/studies", {}),
        (expert, f"/api/v1/studies/{study}", {}),
        (expert, f"/dicomweb/studies?StudyInstanceUID={stored.study_uid}", {"Accept": "application/dicom+json"}),
        (expert, instance, {"Accept": 'multipart/related; type="application/dicom"'}),
        (expert, instance + "/metadata", {}),
        (expert, instance + "/rendered", {"Accept": "image/jpeg"}),
        (expert, instance + "/rendered?viewport=160,120", {"Accept": "image/jpeg"}),  # the captures' thumbnail
        (expert, f"/api/v1/reports/{draft['id']}/print", {}),
        (expert, f"/api/v1/recordings/{recording['id']}/media", {"Range": "bytes=0-99"}),
        (trainer, f"/api/v1/recordings/{recording['id']}/timeline", {}),
        (trainer, f"/api/v1/teaching/instances/{stored.sop_uid}", {}),
    ]
    for api, path, headers in answers:
        status, answered = await headers_of(api, path, **headers)
        assert status in (200, 206), (path, status)
        assert no_store(answered), (path, answered.get("Cache-Control"))
