"""Access grants (docs/SECURITY.md §3): a grant opens exactly the objects it names, to its grantee, from its
start until its end (on the server's clock, which the test sets), and nothing else; a consultation grants its
expert its patient's studies while it lasts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from signaling_server.db.models import Study
from tests.conftest import THYROID_REQUEST
from tests.signaling_server.dicomstore.objects import image
from tests.signaling_server.test_signaling import join

from .conftest import T0, District

ISSUER = "CN-RESIDENT-ID"


def iso(delta: timedelta) -> str:
    return (T0 + delta).isoformat()


async def grant(district: District, body: dict[str, Any], by: str = "registrar") -> tuple[int, Any]:
    return await (await district.api(by)).post("/api/v1/grants", body)


async def test_a_grant_opens_exactly_its_objects_until_its_end(district: District) -> None:
    first = await district.store(image(patient_id="R-7", name="Chen^Jing", birth_date="19650312"), site="b")
    second = await district.store(image(patient_id="R-7", name="Chen^Jing", birth_date="19650312"), site="b")
    other = await district.store(image(patient_id="R-8", name="Zhou^Min"), site="b")
    sono_a = await district.api("sono_a")

    async def sees() -> dict[str, int]:
        return {
            "first": (await sono_a.get(f"/api/v1/studies/{first.study_id}"))[0],
            "second": (await sono_a.get(f"/api/v1/studies/{second.study_id}"))[0],
            "other": (await sono_a.get(f"/api/v1/studies/{other.study_id}"))[0],
            "patient": (await sono_a.get(f"/api/v1/patients/{first.patient_id}"))[0],
        }

    nothing = {"first": 404, "second": 404, "other": 404, "patient": 404}
    assert await sees() == nothing
    status, made = await grant(district, {
        "kind": "referral", "grantee": {"user_id": district.world.users["sono_a"]},
        "objects": [{"kind": "study", "id": first.study_id}],
        "valid_from": iso(timedelta(hours=1)), "valid_until": iso(timedelta(hours=3)), "reason": "second opinion",
    })  # fmt: skip
    assert status == 201 and made["objects"] == [{"kind": "study", "id": first.study_id}] and not made["active"]
    assert await sees() == nothing  # not yet
    district.clock.at(timedelta(hours=1))
    assert await sees() == {**nothing, "first": 200}  # that study, not the patient's other one, not the patient
    status, page = await sono_a.get(f"/api/v1/studies/{first.study_id}")
    assert page["patient"]["name"] == "Chen^Jing" and page["priors"] == []
    _, queue = await sono_a.get("/api/v1/studies")
    assert first.study_id in {s["id"] for s in queue["studies"]} and other.study_id not in str(queue)
    async with sono_a.session.get(f"{sono_a.base}/dicomweb/studies/{first.study_uid}/series") as response:
        assert response.status == 200
    async with sono_a.session.get(f"{sono_a.base}/dicomweb/studies/{second.study_uid}/series") as response:
        assert response.status == 404
    assert (await (await district.api("sono_a2")).get(f"/api/v1/studies/{first.study_id}"))[0] == 404  # a user's
    district.clock.at(timedelta(hours=3))
    assert await sees() == nothing  # ended
    _, mine = await sono_a.get("/api/v1/grants")
    assert [g["id"] for g in mine["grants"]] == [made["id"]] and mine["grants"][0]["active"] is False


async def test_a_referral_of_a_patient_opens_their_studies_until_revoked(district: District) -> None:
    theirs = await district.store(image(patient_id="R-7", name="Chen^Jing", birth_date="19650312"), site="b")
    sono_a = await district.api("sono_a")
    status, made = await grant(district, {
        "kind": "referral", "grantee": {"site_id": district.world.site_a},
        "objects": [{"kind": "patient", "id": theirs.patient_id}],
        "valid_until": iso(timedelta(days=30)), "reason": "referred to North for follow-up",
    }, by="admin")  # fmt: skip
    assert status == 201 and made["active"]
    status, person = await sono_a.get(f"/api/v1/patients/{theirs.patient_id}")
    assert status == 200 and [(i["site"]["code"], i["local_id"]) for i in person["identifiers"]] == [("river", "R-7")]
    status, studies = await (await district.api("sono_a2")).get(f"/api/v1/patients/{theirs.patient_id}/studies")
    assert status == 200 and [s["study_uid"] for s in studies["studies"]] == [theirs.study_uid]  # the whole site
    status, revoked = await (await district.api("registrar")).post(f"/api/v1/grants/{made['id']}/revoke")
    assert status == 200 and revoked["revoked_by"] == district.world.users["registrar"] and not revoked["active"]
    assert (await sono_a.get(f"/api/v1/patients/{theirs.patient_id}"))[0] == 404


async def test_a_shared_report_opens_that_report_alone(district: District) -> None:
    study = await district.store(image(patient_id="R-7", name="Chen^Jing"), site="b")
    shared = await district.final_report(study.study_id, "Benign nodule, TI-RADS 2.")
    kept = await district.final_report((await district.store(image(patient_id="R-9"), site="b")).study_id)
    status, _ = await grant(district, {
        "kind": "shared_report", "grantee": {"site_id": district.world.site_a},
        "objects": [{"kind": "report", "id": shared}], "valid_until": iso(timedelta(days=90)),
        "reason": "mutual recognition",
    })  # fmt: skip
    assert status == 201
    sono_a = await district.api("sono_a")
    status, report = await sono_a.get(f"/api/v1/reports/{shared}")
    assert status == 200 and report["content"]["impression"] == "Benign nodule, TI-RADS 2."
    async with sono_a.session.get(f"{sono_a.base}/api/v1/reports/{shared}/print") as response:
        assert response.status == 200 and "Benign nodule" in await response.text()
    assert (await sono_a.get(f"/api/v1/reports/{kept}"))[0] == 404
    assert (await sono_a.get(f"/api/v1/studies/{study.study_id}"))[0] == 404  # the report, not its study
    assert (await sono_a.get(f"/api/v1/studies/{study.study_id}/reports"))[0] == 404


async def test_grants_are_checked_and_made_by_registrars_and_admins_only(district: District) -> None:
    study = await district.store(image(), site="b")
    good = {
        "kind": "referral", "grantee": {"user_id": district.world.users["sono_a"]},
        "objects": [{"kind": "study", "id": study.study_id}], "valid_until": iso(timedelta(days=1)), "reason": "r",
    }  # fmt: skip
    for who in ("expert", "sono_b", "trainer"):
        status, error = await grant(district, good, by=who)
        assert (status, error["error"]) == (403, "forbidden"), who
    for change, words in (
        ({"valid_until": None}, "until when"),
        ({"valid_until": iso(-timedelta(days=1))}, "after valid_from"),
        ({"valid_until": "tomorrow"}, "ISO 8601"),
        ({"valid_until": "2026-06-02T08:00:00"}, "time zone"),
        ({"kind": "shared_report"}, "opens report, not a study"),
        ({"objects": [{"kind": "study", "id": "nope"}]}, "no study"),
        ({"objects": []}, "name 1 to"),
        ({"grantee": {"user_id": "nobody"}}, "no such user"),
        ({"grantee": {}}, "one grantee"),
        ({"kind": "consultation", "valid_until": None}, "until when"),  # open-ended only naming a consultation
    ):
        status, error = await grant(district, {**good, **change})
        assert (status, error["error"]) == (400, "invalid_request") and words in error["message"], (change, error)
    _, listed = await (await district.api("registrar")).get("/api/v1/grants")
    assert listed["grants"] == []  # nothing was stored by the refusals


async def test_a_consultation_grants_its_expert_the_patients_studies_while_it_lasts(district: District) -> None:
    person = {"name": "张^三", "birth_date": "19700501", "other_ids": ((ISSUER, "42"),)}
    at_b = await district.store(image(patient_id="R-1", **person), site="b")  # type: ignore[arg-type]
    at_a = await district.store(image(patient_id="P-0001", **person))  # type: ignore[arg-type]
    assert at_a.patient_id == at_b.patient_id  # one person, linked automatically; A still sees nothing of B
    expert_id = await district.new_user("north_expert", "expert")
    status, _ = await (await district.api("admin")).post(f"/api/v1/users/{expert_id}/sites",
                                                          {"site_id": district.world.site_a})  # fmt: skip
    assert status == 201
    expert = await district.api("north_expert", password="p" * 12)
    assert (await expert.get(f"/api/v1/studies/{at_b.study_id}"))[0] == 404

    sono = await district.api("sono_a")
    _, consultation = await sono.post("/api/v1/consultations", THYROID_REQUEST)  # patient P-0001
    ws, welcome = await join(expert, consultation["id"])
    assert welcome["you"]["role"] == "expert"
    status, page = await expert.get(f"/api/v1/studies/{at_a.study_id}")
    assert status == 200 and {p["study_uid"] for p in page["priors"]} == {at_b.study_uid}  # the district's history
    assert (await expert.get(f"/api/v1/studies/{at_b.study_id}"))[0] == 200
    status, _ = await expert.post(f"/api/v1/consultations/{consultation['id']}/end")
    assert status == 200
    await ws.close()
    assert (await expert.get(f"/api/v1/studies/{at_b.study_id}"))[0] == 404  # the consultation is over
    _, page = await expert.get(f"/api/v1/studies/{at_a.study_id}")
    assert page["priors"] == []
    assert Study  # the rows themselves are untouched
