"""Orders over REST on SQLite and PostgreSQL: placing (generated and supplied accession numbers, a duplicate refused
with its code), who sees and cancels what (the ordering site, the experts who serve it, nobody else), the refusals
of the state machine, the audit rows and the change notices."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import AuditEvent, Order, PatientIdentifier
from signaling_server.events.changes import ORDERS
from signaling_server.events.hub import CHANGES
from tests.waiting import eventually

from .conftest import Running, order_body


async def test_a_doctor_orders_and_the_order_is_scheduled_with_a_generated_accession(ordering: Running) -> None:
    doctor = await ordering.api("doc_a")
    before = ordering.app[CHANGES].versions[ORDERS]
    status, order = await doctor.post("/api/v1/orders", order_body())
    assert status == 201, order
    assert order["state"] == "scheduled" and order["priority"] == "routine"
    assert re.fullmatch(r"RC\d{12}", order["accession"]), order["accession"]
    assert order["site"]["id"] == ordering.world.site_a
    assert order["ordered_by"] == {"id": ordering.world.users["doc_a"], "name": "李医生", "role": "doctor"}
    assert order["patient"]["name"] == "张^三" and order["patient"]["birth_date"] == "19700501"
    assert order["exam"] == {"modality": "US", "body_part": "THYROID", "description": "甲状腺超声"}
    assert order["study_uid"] and order["links"] == {}
    assert [e["kind"] for e in order["events"]] == ["placed"]
    assert ordering.app[CHANGES].versions[ORDERS] == before + 1
    async with ordering.app[DB]() as db:  # the patient is the site's identity, as for arriving images
        identifier = await db.scalar(select(PatientIdentifier).where(PatientIdentifier.local_id == "MZ-0001"))
    assert identifier is not None and identifier.patient_id == order["patient"]["id"]
    assert identifier.site_id == ordering.world.site_a

    sonographer = await ordering.api("sono_a")  # sonographers order too
    status, second = await sonographer.post("/api/v1/orders", order_body(priority="stat"))
    assert status == 201 and second["accession"] != order["accession"] and second["priority"] == "stat"
    assert second["patient"]["id"] == order["patient"]["id"]  # the same person of the same site


async def test_a_supplied_accession_is_kept_and_a_duplicate_refused_for_ever(ordering: Running) -> None:
    doctor, other_site = await ordering.api("doc_a"), await ordering.api("doc_b")
    status, order = await doctor.post("/api/v1/orders", order_body(accession="NA-2026-001"))
    assert status == 201 and order["accession"] == "NA-2026-001"
    status, error = await other_site.post("/api/v1/orders", order_body(accession="NA-2026-001"))
    assert (status, error["error"]) == (409, "duplicate_accession")
    assert "NA-2026-001" in error["message"]
    assert (await doctor.post(f"/api/v1/orders/{order['id']}/cancel", {"reason": "患者未到"}))[0] == 200
    status, error = await doctor.post("/api/v1/orders", order_body(accession="NA-2026-001"))
    assert (status, error["error"]) == (409, "duplicate_accession")  # a cancelled order keeps its number
    async with ordering.app[DB]() as db:
        assert len(list(await db.scalars(select(Order)))) == 1


async def test_a_bad_form_is_refused_naming_the_field(ordering: Running) -> None:
    doctor = await ordering.api("doc_a")
    cases = [
        (order_body(patient={"name": "张三"}), "patient.id"),  # no patient ID
        (order_body(patient={"id": "P1", "name": "a\\b"}), "patient.name"),
        (order_body(patient={"id": "P1", "name": "张三", "birth_date": "1970-13-01"}), "patient.birth_date"),
        (order_body(exam={"modality": "XX"}), "exam.modality"),
        (order_body(exam={"modality": "US", "body_part": "thyroid gland!"}), "exam.body_part"),
        (order_body(priority="急诊"), "priority"),
        (order_body(reason=""), "reason"),
        (order_body(accession="has space"), "accession"),
        (order_body(accession="X" * 17), "accession"),
        (order_body(station_ae="RIVER_US"), "station_ae"),  # no such peer of north
        (order_body(scheduled_at="2026-12-08T09:30"), "scheduled_at"),  # no zone
    ]
    for body, field in cases:
        status, error = await doctor.post("/api/v1/orders", body)
        assert (status, error["error"], error.get("field")) == (400, "invalid_order", field), (body, error)
    status, order = await doctor.post("/api/v1/orders", order_body(station_ae="NORTH_CR",
                                                                    scheduled_at="2026-12-08T09:30:00+08:00"))
    assert status == 201, order
    assert order["station_ae"] == "NORTH_CR"


async def test_only_the_ordering_site_and_the_experts_who_serve_it_see_an_order(ordering: Running) -> None:
    doctor = await ordering.api("doc_a")
    _, order = await doctor.post("/api/v1/orders", order_body())
    path = f"/api/v1/orders/{order['id']}"
    for username in ("doc_a", "sono_a", "expert"):
        reader = await ordering.api(username)
        status, shown = await reader.get(path)
        assert status == 200 and shown["accession"] == order["accession"], username
        status, listed = await reader.get("/api/v1/orders")
        assert [o["id"] for o in listed["orders"]] == [order["id"]], username
    for username in ("doc_b", "sono_b", "trainer", "admin", "registrar"):
        outsider = await ordering.api(username)
        status, error = await outsider.get(path)
        assert (status, error["error"]) == (404, "not_found"), username
        assert (await outsider.get("/api/v1/orders"))[1]["orders"] == [], username
        status, error = await outsider.post(f"{path}/cancel", {"reason": "不是我的"})
        assert (status, error["error"]) == (404, "not_found"), username
    expert = await ordering.api("expert")  # the centre reads the order but does not withdraw it
    status, error = await expert.post(f"{path}/cancel", {"reason": "中心取消"})
    assert (status, error["error"]) == (403, "forbidden")
    status, error = await expert.post("/api/v1/orders", order_body())
    assert (status, error["error"]) == (403, "forbidden")
    status, listed = await expert.get("/api/v1/orders?site=river")
    assert listed["orders"] == []
    status, listed = await expert.get("/api/v1/orders?state=cancelled")
    assert listed["orders"] == []
    status, error = await expert.get("/api/v1/orders?state=lost")
    assert (status, error["error"]) == (400, "invalid_request")


async def test_cancel_needs_a_reason_and_happens_once(ordering: Running) -> None:
    doctor = await ordering.api("doc_a")
    _, order = await doctor.post("/api/v1/orders", order_body())
    path = f"/api/v1/orders/{order['id']}/cancel"
    status, error = await doctor.post(path, {})
    assert (status, error["error"], error["field"]) == (400, "invalid_order", "reason")
    before = ordering.app[CHANGES].versions[ORDERS]
    status, cancelled = await doctor.post(path, {"reason": "患者改约"})
    assert status == 200 and cancelled["state"] == "cancelled"
    assert cancelled["cancel_reason"] == "患者改约" and cancelled["cancelled_at"]
    assert cancelled["cancelled_by"]["id"] == ordering.world.users["doc_a"]
    assert [e["kind"] for e in cancelled["events"]] == ["placed", "cancelled"]
    assert ordering.app[CHANGES].versions[ORDERS] == before + 1
    status, error = await (await ordering.api("sono_a")).post(path, {"reason": "again"})
    assert (status, error["error"]) == (409, "invalid_transition")
    assert "cancelled cannot become cancelled" in error["message"]


async def test_every_read_and_change_of_an_order_is_audited(ordering: Running) -> None:
    doctor = await ordering.api("doc_a")
    _, order = await doctor.post("/api/v1/orders", order_body())
    await doctor.get(f"/api/v1/orders/{order['id']}")
    await doctor.get("/api/v1/orders?state=scheduled")
    await (await ordering.api("doc_b")).get(f"/api/v1/orders/{order['id']}")
    await doctor.post(f"/api/v1/orders/{order['id']}/cancel", {"reason": "重复开单"})

    async def five_rows() -> list[AuditEvent] | None:
        async with ordering.app[DB]() as db:
            query = select(AuditEvent).where(AuditEvent.route.like("/api/v1/orders%")).order_by(AuditEvent.seq)
            rows = list(await db.scalars(query))
        return rows if len(rows) >= 5 else None

    found = await eventually(five_rows, what="five audit rows of orders")
    assert [(r.action, r.method, r.route, r.outcome) for r in found] == [
        ("write", "POST", "/api/v1/orders", "ok"),
        ("read", "GET", "/api/v1/orders/{id}", "ok"),
        ("search", "GET", "/api/v1/orders", "ok"),
        ("read", "GET", "/api/v1/orders/{id}", "not_found"),
        ("write", "POST", "/api/v1/orders/{id}/cancel", "ok"),
    ]
    assert {r.object_id for r in found} == {order["id"], None} and found[0].object_id == order["id"]
    assert found[1].patient_id == order["patient"]["id"]  # who read this patient's order
    assert found[2].detail.get("query") == {"state": "scheduled"}



async def test_two_orders_racing_for_one_accession_number_one_wins(ordering: Running) -> None:
    north, river = await ordering.api("doc_a"), await ordering.api("doc_b")
    answers = await asyncio.gather(
        north.post("/api/v1/orders", order_body(accession="RACE-1")),
        river.post("/api/v1/orders", order_body(accession="RACE-1", patient={"id": "R-9", "name": "赵六"})),
    )
    assert sorted(status for status, _ in answers) == [201, 409], answers
    assert [body["error"] for status, body in answers if status == 409] == ["duplicate_accession"]
    async with ordering.app[DB]() as db:
        assert [o.accession for o in await db.scalars(select(Order))] == ["RACE-1"]
