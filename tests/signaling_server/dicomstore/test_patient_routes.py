"""/api/v1/patients: priors from every site, duplicate candidates and linking, and who may do what."""

from __future__ import annotations

from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import StudyEvent

from .conftest import Running
from .objects import image

ISSUER = "CN-RESIDENT-ID"


async def test_priors_from_every_site(server: Running) -> None:
    at_a = await server.store(image(patient_id="N-1", name="Zhang^San=张^三", other_ids=((ISSUER, "1101"),)))
    at_b = await server.store(image(patient_id="R-1", name="Zhang^San", issuer=ISSUER), site="b")
    at_b2 = await server.store(image(patient_id="1101", issuer=ISSUER, modality="CR", study_date="20250601"), site="b")
    patient = at_a.patient_id
    assert patient == at_b2.patient_id != at_b.patient_id  # R-1's issuer is CN-RESIDENT-ID but its value differs

    expert = await server.api("expert")
    status, data = await expert.get(f"/api/v1/patients/{patient}/studies")
    assert status == 200 and data["patient_id"] == patient
    assert [(s["study_uid"], s["site"]["code"]) for s in data["studies"]] == [
        (at_b2.study_uid, "river"),
        (at_a.study_uid, "north"),
    ]
    status, person = await expert.get(f"/api/v1/patients/{patient}")
    assert person["name"] == "Zhang^San=张^三" and person["birth_date"] == "19700101" and person["sex"] == "F"
    assert {(i["site"]["code"], i["local_id"]) for i in person["identifiers"]} == {("north", "N-1"), ("river", "1101")}
    assert person["regional_ids"] == [{"issuer": ISSUER, "value": "1101"}]

    sono_a = await server.api("sono_a")
    status, data = await sono_a.get(f"/api/v1/patients/{patient}/studies")
    assert status == 200 and [s["study_uid"] for s in data["studies"]] == [at_a.study_uid]
    status, error = await sono_a.get(f"/api/v1/patients/{at_b.patient_id}/studies")
    assert (status, error["error"]) == (404, "not_found")


async def test_admin_reviews_candidates_and_links_them(server: Running) -> None:
    one = await server.store(image(patient_id="A-1", name="Li^Na", birth_date="19900909"))
    two = await server.store(image(patient_id="B-1", name="LI NA", birth_date="19900909"), site="b")
    admin, expert = await server.api("admin"), await server.api("expert")
    assert (await expert.get("/api/v1/patients/duplicates"))[0] == 403
    status, data = await admin.get("/api/v1/patients/duplicates")
    assert status == 200
    [group] = data["candidates"]
    assert (group["name"], group["birth_date"], group["sex"]) == ("LINA", "19900909", "F")
    assert {p["id"] for p in group["patients"]} == {one.patient_id, two.patient_id}

    path = f"/api/v1/patients/{one.patient_id}/link"
    assert (await expert.post(path, {"patient_id": two.patient_id}))[0] == 403
    assert (await admin.post(path, {"patient_id": one.patient_id}))[1]["error"] == "invalid_request"
    assert (await admin.post(path, {"patient_id": "nobody"}))[1]["error"] == "not_found"
    status, merged = await admin.post(path, {"patient_id": two.patient_id})
    assert status == 200 and {i["local_id"] for i in merged["identifiers"]} == {"A-1", "B-1"}
    assert (await admin.get(f"/api/v1/patients/{two.patient_id}"))[0] == 404
    _, data = await admin.get(f"/api/v1/patients/{one.patient_id}/studies")
    assert {s["study_uid"] for s in data["studies"]} == {one.study_uid, two.study_uid}
    assert (await admin.get("/api/v1/patients/duplicates"))[1]["candidates"] == []
    async with server.app[DB]() as db:
        [event] = await db.scalars(select(StudyEvent).where(StudyEvent.kind == "patient_linked"))
    assert event.user_id == server.world.users["admin"] and event.detail["from"] == two.patient_id

    again = await server.store(image(patient_id="B-1"), site="b")  # B's number now leads to the merged identity
    assert again.patient_id == one.patient_id
