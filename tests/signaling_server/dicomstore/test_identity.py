"""Regional identity as objects arrive: same site and ID, the shared regional ID, look-alikes, merging."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from signaling_server import errors
from signaling_server.appkeys import DB
from signaling_server.db.models import Patient, PatientIdentifier, PatientLink, PatientMatch, StudyEvent
from signaling_server.dicomstore import identity, links
from signaling_server.dicomstore.parsing import Demographics

from .conftest import Running
from .objects import image

ISSUER = "CN-RESIDENT-ID"
RESIDENT = "110101199003071234"


async def _patients(server: Running) -> list[Patient]:
    async with server.app[DB]() as db:
        return list(await db.scalars(select(Patient)))


async def test_same_site_and_patient_id_is_one_identity(server: Running) -> None:
    first = await server.store(image(patient_id="N-77"))
    second = await server.store(image(patient_id="N-77"))  # another study, same patient
    other_site = await server.store(image(patient_id="N-77"), site="b")  # B's N-77 is someone else
    assert first.patient_id == second.patient_id != other_site.patient_id
    assert first.study_uid != second.study_uid
    assert len(await _patients(server)) == 2


async def test_the_shared_regional_id_links_sites(server: Running) -> None:
    at_a = await server.store(image(patient_id="N-1", name="Zhang^San", other_ids=((ISSUER, RESIDENT),)))
    at_b = await server.store(image(patient_id=RESIDENT, issuer=ISSUER, name="ZHANG^SAN"), site="b")
    other_issuer = await server.store(image(patient_id="R-5", other_ids=(("HOSPITAL-X", RESIDENT),)), site="b")
    assert at_a.patient_id == at_b.patient_id != other_issuer.patient_id
    async with server.app[DB]() as db:
        rows = list(await db.scalars(select(PatientIdentifier).where(PatientIdentifier.patient_id == at_a.patient_id)))
        studies = await identity.patient_studies(db, str(at_a.patient_id))
    assert {(r.site_id, r.local_id) for r in rows} == {
        (server.world.site_a, "N-1"),
        (server.world.site_a, f"{ISSUER}\\{RESIDENT}"),
        (server.world.site_b, RESIDENT),
        (server.world.site_b, f"{ISSUER}\\{RESIDENT}"),
    }
    assert {s.study_uid for s in studies} == {at_a.study_uid, at_b.study_uid}


async def test_a_site_identity_joins_the_regional_one_when_its_id_arrives(server: Running) -> None:
    regional = await server.store(image(patient_id="B-9", other_ids=((ISSUER, RESIDENT),)), site="b")
    local = await server.store(image(patient_id="A-9"))  # A does not send the resident ID at first
    assert local.patient_id != regional.patient_id
    later = await server.store(image(patient_id="A-9", other_ids=((ISSUER, RESIDENT),)))
    assert later.patient_id == regional.patient_id
    async with server.app[DB]() as db:
        moved = await identity.patient_studies(db, str(regional.patient_id))
        events = list(await db.scalars(select(StudyEvent).where(StudyEvent.kind == "patient_linked")))
        kept = await db.get(Patient, local.patient_id)  # kept, so that the link can be split back
        assert kept is not None and kept.merged_into_id == regional.patient_id
        [link] = await db.scalars(select(PatientLink))
    assert {s.study_uid for s in moved} == {regional.study_uid, local.study_uid, later.study_uid}
    assert [e.detail for e in events] == [
        {"from": local.patient_id, "into": regional.patient_id, "reason": "regional_id", "link": link.id}
    ]
    assert (link.kept_id, link.merged_id, link.reason, link.state) == (
        regional.patient_id, local.patient_id, "regional_id", "linked"
    )


async def test_look_alikes_stay_apart_as_a_possible_match(server: Running) -> None:
    one = await server.store(image(patient_id="A-1", name="Wang^Fang", birth_date="19800202"))
    two = await server.store(image(patient_id="B-1", name="WANG^FANG^^", birth_date="19800202"), site="b")
    await server.store(image(patient_id="B-2", name="Wang^Fang", birth_date="19800203"), site="b")  # not a twin
    assert one.patient_id != two.patient_id
    async with server.app[DB]() as db:
        found = list(await db.scalars(select(PatientMatch)))
        studies = await identity.patient_studies(db, str(one.patient_id))
    assert [(m.patient_id, m.candidate_id, m.reason, m.state) for m in found] == [
        (two.patient_id, one.patient_id, "look_alike", "open")
    ]
    assert {s.study_uid for s in studies} == {one.study_uid}


async def test_two_different_regional_ids_are_never_merged(server: Running) -> None:
    one = await server.store(image(patient_id="A-1", other_ids=((ISSUER, "1"),)))
    two = await server.store(image(patient_id="B-1", other_ids=((ISSUER, "2"),)), site="b")
    again = await server.store(image(patient_id="A-1", other_ids=((ISSUER, "2"),)))  # a typing error at A
    assert again.patient_id == one.patient_id != two.patient_id
    async with server.app[DB]() as db:
        with pytest.raises(errors.Conflict, match="different regional IDs"):
            await links.link_patients(
                db, str(one.patient_id), str(two.patient_id), by_user_id=None, reason="t", now=datetime.now(UTC)
            )


def test_names_compare_without_case_spaces_or_separators() -> None:
    key = identity.normalised_name
    assert key("Zhang^San=张^三") == key("ZHANG SAN") == key("zhang^san^^") == "ZHANGSAN"
    assert key("张^三") == key("张三") == key("=张^三")
    assert key("Zhang^San") != key("San^Zhang")
    assert identity.regional_key("CN-RESIDENT-ID", "123") == "CN-RESIDENT-ID\\123"
    assert len(identity.regional_key("X" * 60, "1" * 30)) <= 64
    person = Demographics("A-1", "A^B", "", "", issuer="", other_ids=(("HOSP", "9"), (ISSUER, "42")))
    assert person.regional_id(ISSUER) == "42" and person.regional_id("OTHER") is None
    assert Demographics("42", "A^B", "", "", issuer=ISSUER).regional_id(ISSUER) == "42"
