"""The admin's audit API on the two-site world: filters, paging, the CSV export; everyone else is refused (and the
refusal is audited like any other read)."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import quote

import pytest

from signaling_server.audit.routes import CSV_COLUMNS
from tests.conftest import Api
from tests.signaling_server.audit.test_middleware import DICOM_JSON, get, stored_image


async def events(api: Api, query: str = "", *, own: bool = False) -> list[dict[str, Any]]:
    """The rows matching `query`, without the admin's own reads of the trail (unless `own`)."""
    status, page = await api.get("/api/v1/audit" + query)
    assert status == 200, page
    return [e for e in page["events"] if own or e["object_kind"] != "audit"]


async def test_only_admins_read_the_trail(people: Any) -> None:
    client, world, open_api = people
    for who in ("sono_a", "expert", "trainer"):
        api = await open_api(who)
        for path in ("/api/v1/audit", "/api/v1/audit.csv"):
            async with api.session.get(api.base + path) as r:
                assert (r.status, (await r.json())["error"]) == (403, "forbidden"), (who, path)
    device = await open_api(bearer=world.device_a_credential)
    assert await get(device, "/api/v1/audit") == 403
    admin = await open_api("admin")
    refusals = await events(admin, "?kind=audit&result=forbidden", own=True)
    assert len(refusals) == 7 and {e["actor_name"] for e in refusals} == {"sono_a", "expert", "trainer", "north-us-1"}


async def test_filters_and_paging(people: Any) -> None:
    client, world, open_api = people
    stored = await stored_image(client.app, world.site_a)
    sono, other, expert, admin = [await open_api(u) for u in ("sono_a", "sono_b", "expert", "admin")]
    for _ in range(3):
        assert await get(sono, f"/api/v1/studies/{stored.study_id}") == 200
    assert await get(other, f"/api/v1/studies/{stored.study_id}") == 404
    assert await get(expert, "/dicomweb/studies?PatientID=AUD-1", DICOM_JSON) == 200
    assert await get(expert, f"/api/v1/patients/{stored.patient_id}") == 200

    everything = await events(admin)
    assert [e["seq"] for e in everything] == sorted((e["seq"] for e in everything), reverse=True)  # newest first
    assert len(everything) == 6
    by_sono = await events(admin, "?user=sono_a")
    assert len(by_sono) == 3 and {e["actor_id"] for e in by_sono} == {world.users["sono_a"]}
    assert await events(admin, f"?user={world.users['sono_a']}") == by_sono
    refused = await events(admin, "?result=error")
    assert [(e["actor_name"], e["outcome"], e["status"]) for e in refused] == [("sono_b", "not_found", 404)]
    assert await events(admin, "?result=not_found") == refused
    assert len(await events(admin, "?result=ok")) == 5
    of_patient = await events(admin, f"?patient={stored.patient_id}")
    assert len(of_patient) == 5  # the QIDO named a site's patient ID, not the regional one
    of_study = await events(admin, f"?study={stored.study_id}")
    assert len(of_study) == 4 and await events(admin, f"?study={stored.study_uid}") == of_study
    assert [e["route"] for e in await events(admin, "?action=search")] == ["/dicomweb/studies"]
    assert len(await events(admin, "?kind=patient")) == 1
    assert len(await events(admin, f"?site={world.site_b}")) == 1
    assert await events(admin, "?from=2999-01-01") == [] and await events(admin, "?to=2000-01-01") == []
    newest = quote(everything[0]["at"])
    assert [e["seq"] for e in await events(admin, f"?from={newest}&to={newest}")] == [everything[0]["seq"]]

    paged, before = [], everything[0]["seq"] + 1  # the admin's reads since are newer: pages start below them
    while before is not None:
        status, page = await admin.get(f"/api/v1/audit?limit=4&before={before}")
        assert status == 200 and len(page["events"]) <= 4
        paged += page["events"]
        before = page["next"]
    assert [e["seq"] for e in paged if e["object_kind"] != "audit"] == [e["seq"] for e in everything]
    assert [e["seq"] for e in paged] == list(range(everything[0]["seq"], 0, -1))  # no row twice, none left out


@pytest.mark.parametrize(
    ("query", "field"), [("?from=yesterday", "from"), ("?to=2026-13-01", "to"), ("?limit=0", "limit"),
                         ("?limit=501", "limit"), ("?before=-1", "before")]
)
async def test_a_filter_that_does_not_parse_is_refused(people: Any, query: str, field: str) -> None:
    client, world, open_api = people
    admin = await open_api("admin")
    status, error = await admin.get("/api/v1/audit" + query)
    assert status == 400 and (error["error"], error["field"]) == ("invalid_request", field)


async def test_the_csv_export_has_every_matching_row_and_no_formulas(people: Any) -> None:
    client, world, open_api = people
    sono, admin = await open_api("sono_a"), await open_api("admin")
    assert await get(sono, "/api/v1/studies/=1+2") == 404  # a path part a spreadsheet would run
    for _ in range(3):
        assert await get(sono, "/api/v1/consultations") == 200
    listed = await events(admin, "?user=sono_a")
    async with admin.session.get(admin.base + "/api/v1/audit.csv?user=sono_a") as r:
        assert r.status == 200 and r.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert r.headers["Content-Disposition"] == 'attachment; filename="teleus-audit.csv"'
        raw = await r.read()
    assert raw.startswith("\ufeff".encode())
    header, *lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert tuple(header) == CSV_COLUMNS
    assert [line[header.index("row_hash")] for line in lines] == [e["row_hash"] for e in listed]
    refused = next(line for line in lines if line[header.index("status")] == "404")
    assert refused[header.index("object_id")] == "'=1+2"
    exported = await events(admin, "?action=export", own=True)
    assert [(e["actor_name"], e["route"], e["status"]) for e in exported] == [("admin", "/api/v1/audit.csv", 200)]
    assert exported[0]["detail"] == {"query": {"user": "sono_a"}}
