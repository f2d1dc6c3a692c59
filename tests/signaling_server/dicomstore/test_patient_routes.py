"""/api/v1/patients and the registrar's routes: what each site is shown of a person, possible matches, confirm,
reject, unlink (docs/SECURITY.md §3)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import Patient, PatientEvent, PatientIdentifier, Study, StudyEvent

from .conftest import Running
from .objects import image

ISSUER = "CN-RESIDENT-ID"
RESIDENT = "110101196503120021"


async def _study_id(server: Running, study_uid: str) -> str:
    async with server.app[DB]() as db:
        found = await db.scalar(select(Study.id).where(Study.study_uid == study_uid))
    assert found is not None
    return str(found)


async def _priors(api: Any, study_id: str) -> set[str]:
    status, page = await api.get(f"/api/v1/studies/{study_id}")
    assert status == 200, page
    return {p["study_uid"] for p in page["priors"]}


async def test_priors_from_the_sites_a_reader_serves(server: Running) -> None:
    at_a = await server.store(image(patient_id="N-1", name="Zhang^San=张^三", other_ids=((ISSUER, "1101"),)))
    at_b = await server.store(image(patient_id="R-1", name="Zhang^San", issuer=ISSUER), site="b")
    at_b2 = await server.store(
        image(patient_id="1101", issuer=ISSUER, name="ZHANG^SAN", modality="CR", study_date="20250601"), site="b"
    )
    patient = at_a.patient_id
    assert patient == at_b2.patient_id != at_b.patient_id  # R-1's issuer is CN-RESIDENT-ID but its value differs

    expert = await server.api("expert")  # serves both sites
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


async def test_a_site_cannot_pull_another_sites_patient_into_its_view(server: Running) -> None:
    """Finding 1: device A stores an object carrying site B's patient's regional ID."""
    theirs = await server.store(
        image(patient_id="R-7", name="Chen^Jing", birth_date="19650312", other_ids=((ISSUER, RESIDENT),)), site="b"
    )
    status, _ = await server.stow(
        server.device("a"),
        [image(patient_id="N-5", name="Li^Wei", birth_date="19900101", sex="M", other_ids=((ISSUER, RESIDENT),))],
    )
    assert status == 200
    async with server.app[DB]() as db:
        ours = await db.scalar(select(Study).where(Study.site_id == server.world.site_a))
        assert ours is not None
        query = select(PatientIdentifier).where(PatientIdentifier.patient_id == theirs.patient_id)
        b_rows = list(await db.scalars(query))
    assert ours.patient_id != theirs.patient_id  # not joined, not merged
    assert {r.site_id for r in b_rows} == {server.world.site_b}

    sono_a = await server.api("sono_a")
    for path in (f"/api/v1/patients/{theirs.patient_id}", f"/api/v1/patients/{theirs.patient_id}/studies"):
        status, error = await sono_a.get(path)
        assert (status, error["error"]) == (404, "not_found"), path
    status, person = await sono_a.get(f"/api/v1/patients/{ours.patient_id}")
    assert status == 200 and person["name"] == "Li^Wei" and person["regional_ids"] == []
    assert [(i["site"]["code"], i["local_id"]) for i in person["identifiers"]] == [("north", "N-5")]

    b_study = await _study_id(server, theirs.study_uid)
    for reader in ("sono_b", "expert"):  # A's study is nobody's prior of B's patient
        assert ours.study_uid not in await _priors(await server.api(reader), b_study)

    registrar = await server.api("registrar")
    status, data = await registrar.get("/api/v1/patient-matches?state=open")
    assert status == 200
    [match] = [m for m in data["matches"] if m["reason"] == "regional_id"]
    assert {match["patient"]["id"], match["candidate"]["id"]} == {ours.patient_id, theirs.patient_id}
    assert match["detail"]["site_id"] == server.world.site_a
    assert (await sono_a.get("/api/v1/patient-matches"))[0] == 403
    assert (await (await server.api("admin")).get("/api/v1/patient-matches"))[0] == 403


async def test_an_automatic_link_shows_a_site_nothing_of_another(server: Running) -> None:
    theirs = await server.store(
        image(patient_id="R-7", name="Chen^Jing", birth_date="19650312", other_ids=((ISSUER, RESIDENT),)), site="b"
    )
    ours = await server.store(  # the same person: issuer, identifier, name and birth date agree
        image(patient_id="N-5", name="CHEN JING", birth_date="19650312", other_ids=((ISSUER, RESIDENT),))
    )
    assert ours.patient_id == theirs.patient_id

    sono_a = await server.api("sono_a")
    status, person = await sono_a.get(f"/api/v1/patients/{ours.patient_id}")
    assert status == 200 and person["name"] == "CHEN JING"  # what A sent, not B's spelling
    assert [(i["site"]["code"], i["local_id"]) for i in person["identifiers"]] == [("north", "N-5")]
    assert "R-7" not in str(person)
    _, data = await sono_a.get(f"/api/v1/patients/{ours.patient_id}/studies")
    assert [s["study_uid"] for s in data["studies"]] == [ours.study_uid]
    assert await _priors(sono_a, await _study_id(server, ours.study_uid)) == set()
    assert await _priors(await server.api("sono_b"), await _study_id(server, theirs.study_uid)) == set()
    expert = await server.api("expert")  # serves both sites: sees both
    assert await _priors(expert, await _study_id(server, ours.study_uid)) == {theirs.study_uid}


async def _look_alikes(server: Running, name: str, birth: str) -> tuple[Any, Any]:
    one = await server.store(image(patient_id="A-1", name=name, birth_date=birth))
    two = await server.store(image(patient_id="B-1", name=name.upper(), birth_date=birth), site="b")
    assert one.patient_id != two.patient_id
    return one, two


async def test_a_registrar_confirms_a_possible_match_and_unlinks_it(server: Running) -> None:
    one, two = await _look_alikes(server, "Li^Na", "19900909")
    registrar, expert = await server.api("registrar"), await server.api("expert")
    status, data = await registrar.get("/api/v1/patient-matches?state=open")
    [match] = data["matches"]
    assert match["reason"] == "look_alike" and match["state"] == "open"
    assert (await expert.post(f"/api/v1/patient-matches/{match['id']}/confirm"))[0] == 403

    status, confirmed = await registrar.post(f"/api/v1/patient-matches/{match['id']}/confirm")
    assert status == 200 and confirmed["match"]["state"] == "confirmed"
    link = confirmed["link"]
    assert (link["kept_id"], link["merged_id"], link["state"]) == (one.patient_id, two.patient_id, "linked")
    assert (await registrar.get(f"/api/v1/patients/{two.patient_id}"))[0] == 404
    _, data = await expert.get(f"/api/v1/patients/{one.patient_id}/studies")
    assert {s["study_uid"] for s in data["studies"]} == {one.study_uid, two.study_uid}
    again = await server.store(image(patient_id="B-1", name="LI^NA", birth_date="19900909"), site="b")
    assert again.patient_id == one.patient_id  # B's number now leads to the linked identity
    status, error = await registrar.post(f"/api/v1/patient-matches/{match['id']}/confirm")
    assert (status, error["error"]) == (409, "invalid_transition")

    status, split = await registrar.post(f"/api/v1/patient-links/{link['id']}/unlink")
    assert status == 200 and split["state"] == "unlinked"
    _, data = await expert.get(f"/api/v1/patients/{two.patient_id}/studies")
    assert {s["study_uid"] for s in data["studies"]} == {two.study_uid, again.study_uid}  # and the one since
    _, data = await expert.get(f"/api/v1/patients/{one.patient_id}/studies")
    assert {s["study_uid"] for s in data["studies"]} == {one.study_uid}
    status, error = await registrar.post(f"/api/v1/patients/{one.patient_id}/link", {"patient_id": two.patient_id})
    assert (status, error["error"]) == (409, "kept_apart")
    status, error = await registrar.post(f"/api/v1/patient-links/{link['id']}/unlink")
    assert (status, error["error"]) == (409, "invalid_transition")
    later = await server.store(image(patient_id="B-1", name="LI^NA", birth_date="19900909"), site="b")
    assert later.patient_id == two.patient_id

    async with server.app[DB]() as db:
        kinds = [(e.kind, e.user_id) for e in await db.scalars(select(PatientEvent).where(
            PatientEvent.patient_id == two.patient_id).order_by(PatientEvent.id))]  # fmt: skip
        studies = [e.kind for e in await db.scalars(select(StudyEvent).where(StudyEvent.kind.like("patient_%")))]
        merged = await db.get(Patient, two.patient_id)
    who = server.world.users["registrar"]
    assert kinds == [
        ("possible_match", None), ("match_confirmed", who), ("linked", who), ("unlinked", who), ("match_rejected", who),
    ]  # fmt: skip
    assert sorted(studies) == ["patient_linked", "patient_unlinked", "patient_unlinked"]
    assert merged is not None and merged.merged_into_id is None


async def test_a_rejected_match_keeps_the_two_apart_for_good(server: Running) -> None:
    one, two = await _look_alikes(server, "Wang^Fang", "19800202")
    registrar = await server.api("registrar")
    _, data = await registrar.get("/api/v1/patient-matches")
    [match] = data["matches"]
    status, rejected = await registrar.post(f"/api/v1/patient-matches/{match['id']}/reject")
    assert status == 200 and rejected["state"] == "rejected"
    assert rejected["decided_by"] == server.world.users["registrar"]
    status, error = await registrar.post(f"/api/v1/patient-matches/{match['id']}/confirm")
    assert (status, error["error"]) == (409, "invalid_transition")
    status, error = await registrar.post(f"/api/v1/patients/{one.patient_id}/link", {"patient_id": two.patient_id})
    assert (status, error["error"]) == (409, "kept_apart")
    third = await server.store(image(patient_id="B-9", name="WANG FANG", birth_date="19800202"), site="b")
    _, data = await registrar.get("/api/v1/patient-matches?state=open")  # a new look-alike is proposed, not that pair
    assert {frozenset((m["patient"]["id"], m["candidate"]["id"])) for m in data["matches"]} == {
        frozenset((third.patient_id, one.patient_id)), frozenset((third.patient_id, two.patient_id))
    }
    assert (await registrar.get("/api/v1/patient-matches?state=maybe"))[1]["error"] == "invalid_request"
