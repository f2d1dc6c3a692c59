"""What a trainer (de-identified sight) reads of a study's text against what an identified reader reads, through the
real app on SQLite and PostgreSQL: the report's JSON and the study's list of reports, peer-review comments, the
study's and its series' descriptions. A name, ID, accession or birth date typed into any of them is struck out for
the trainer only; the printable view is not theirs at all (docs/SECURITY.md §2)."""

from __future__ import annotations

from sqlalchemy import select, update

from signaling_server.access.redaction import MARKER
from signaling_server.appkeys import DB
from signaling_server.db.models import Report, Series, Study
from tests.signaling_server.access.conftest import District, district  # noqa: F401  (fixture)
from tests.signaling_server.dicomstore.objects import image

WRITTEN = (
    "Mr Wang Fang (WANG^FANG, 王芳), ID N-3, acc ACC7, regional 310101198002020011, born 1980-02-02 / "
    "1980年2月2日: the thyroid is normal. Compare with the study of Wang's sister."
)
SHOWN = (
    f"Mr {MARKER} ({MARKER}, {MARKER}), ID {MARKER}, acc {MARKER}, regional {MARKER}, born {MARKER} / "
    f"{MARKER}: the thyroid is normal. Compare with the study of {MARKER}'s sister."
)


async def test_a_trainer_reads_the_patients_identifiers_struck_out_of_every_text(
    district: District,  # noqa: F811
) -> None:
    raw = image(patient_id="N-3", name="Wang^Fang=王^芳", birth_date="19800202", accession="ACC7", modality="CT",
                other_ids=(("CN-RESIDENT-ID", "310101198002020011"),))  # fmt: skip
    stored = await district.store(raw)
    report_id = await district.final_report(stored.study_id, impression=WRITTEN)
    async with district.app[DB]() as db:
        await db.execute(update(Study).where(Study.id == stored.study_id).values(description="CT neck Wang Fang"))
        await db.execute(update(Series).where(Series.study_id == stored.study_id).values(description="N-3 axial"))
        await db.commit()
        assert (await db.scalars(select(Report.id).where(Report.study_id == stored.study_id))).all() == [report_id]
    expert, trainer = await district.api("expert"), await district.api("trainer")
    review = {"score": 2, "significance": "a", "comment": "Wang Fang: missed N-3 nodule"}
    status, review = await (await district.api("expert2")).post(f"/api/v1/reports/{report_id}/peer-reviews", review)
    assert status == 201, review

    for reader, impression, comment, description, series in (
        (expert, WRITTEN, "Wang Fang: missed N-3 nodule", "CT neck Wang Fang", "N-3 axial"),
        (trainer, SHOWN, f"{MARKER}: missed {MARKER} nodule", f"CT neck {MARKER}", f"{MARKER} axial"),
    ):
        status, report = await reader.get(f"/api/v1/reports/{report_id}")
        assert status == 200 and report["content"]["impression"] == impression
        _, listed = await reader.get(f"/api/v1/studies/{stored.study_id}/reports")
        assert [r["content"]["impression"] for r in listed["reports"]] == [impression]
        _, reviews = await reader.get(f"/api/v1/reports/{report_id}/peer-reviews")
        assert [r["comment"] for r in reviews["peer_reviews"]] == [comment]
        _, study = await reader.get(f"/api/v1/studies/{stored.study_id}")
        assert study["description"] == description
        _, queue = await reader.get("/api/v1/studies")
        assert [s["description"] for s in queue["studies"] if s["id"] == stored.study_id] == [description]
        status, found = await reader.get(f"/dicomweb/studies/{stored.study_uid}/series")
        assert status == 200 and [s["0008103E"]["Value"] for s in found] == [[series]]

    async with trainer.session.get(f"{trainer.base}/api/v1/reports/{report_id}/print") as response:
        assert response.status == 404  # the printable view needs the patient in full

    status, grant = await (await district.api("registrar")).post("/api/v1/grants", {
        "kind": "shared_report", "grantee": {"user_id": district.world.users["trainer"]},
        "objects": [{"kind": "report", "id": report_id}], "valid_until": "2026-06-02T00:00:00+00:00",
        "reason": "teaching case, with consent",
    })  # fmt: skip
    assert status == 201, grant
    _, report = await trainer.get(f"/api/v1/reports/{report_id}")  # a shared report is the report as written
    _, listed = await trainer.get(f"/api/v1/studies/{stored.study_id}/reports")
    assert report["content"]["impression"] == WRITTEN
    assert [r["content"]["impression"] for r in listed["reports"]] == [WRITTEN]
    _, study = await trainer.get(f"/api/v1/studies/{stored.study_id}")  # not the study it belongs to
    assert study["description"] == f"CT neck {MARKER}"
    async with district.app[DB]() as db:  # what is stored stays as written
        report = await db.get(Report, report_id)
        assert report is not None and report.content["input"]["impression"] == WRITTEN
