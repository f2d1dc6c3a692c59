"""Results back to the community through the real app on SQLite and PostgreSQL: the exams of one's own site with
their community state, the approved report, the images as a DICOM zip (with a DICOMDIR) and as JPEGs; nobody of
another site lists or downloads them; every list and download is audited."""

from __future__ import annotations

import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import AuditEvent
from tests.signaling_server.reading.studies import arrive
from tests.signaling_server.results.exams import examined, reported


async def _download(api: Any, path: str) -> tuple[int, bytes, dict[str, str]]:
    async with api.session.get(api.base + path) as r:
        return r.status, await r.read(), dict(r.headers)


async def test_the_community_sees_its_exams_in_the_districts_five_states(people: Any) -> None:
    client, world, open_api = people
    reader, senior = await open_api("expert"), await open_api("expert2")
    community, doctor_b = await open_api("sono_a"), await open_api("sono_b")
    status, order = await community.post(
        "/api/v1/studies",
        {"patient": {"id": "P-9", "name": "李^四", "birth_date": "1990-01-01", "sex": "F"}, "accession": "ORD1",
         "modality": "US"},
    )
    assert status == 201, order
    matched, _ = await examined(client.app, world.site_a, name="王^五", images=1, accession="M1")
    waiting, sops = await examined(client.app, world.site_a, name="赵^六", images=1, accession="R1")
    await reported(reader, waiting, sops)
    done, sops = await examined(client.app, world.site_a, name="张^三", images=1, accession="A1")
    report = await reported(reader, done, sops)
    await senior.post(f"/api/v1/reports/{report}/approve")
    elsewhere = await arrive(client.app, world.site_b, "US", name="钱^七")

    status, body = await community.get("/api/v1/results")
    assert status == 200
    states = {r["accession"]: r["state"] for r in body["results"]}
    assert states == {"ORD1": "registered", "M1": "matched", "R1": "reported", "A1": "approved"}
    approved = next(r for r in body["results"] if r["accession"] == "A1")
    assert approved["report"]["id"] == report and approved["report"]["approver"]["name"] == "Expert2"
    assert approved["patient"]["name"] == "张^三" and approved["site"]["id"] == world.site_a
    assert all(r["report"] is None for r in body["results"] if r["accession"] != "A1")

    _, only = await community.get("/api/v1/results?state=approved,reported")
    assert sorted(r["accession"] for r in only["results"]) == ["A1", "R1"]
    status, error = await community.get("/api/v1/results?state=done")
    assert status == 400 and error["error"] == "invalid_request"

    _, theirs = await doctor_b.get("/api/v1/results")
    assert [r["study_id"] for r in theirs["results"]] == [elsewhere]
    _, trainer = await (await open_api("trainer")).get("/api/v1/results")
    assert trainer["results"] == []  # de-identified sight is not enough: a result names the patient
    _, report_body = await community.get(f"/api/v1/reports/{report}")
    assert report_body["state"] == "final"  # the approved report opens read-only for the community
    status, _ = await doctor_b.get(f"/api/v1/reports/{report}")
    assert status == 404


async def test_the_images_download_as_dicom_with_a_dicomdir_and_as_jpeg(people: Any, tmp_path: Path) -> None:
    client, world, open_api = people
    community, other_site = await open_api("sono_a"), await open_api("sono_b")
    study, sops = await examined(client.app, world.site_a, images=2, accession="Z/1")

    status, data, headers = await _download(community, f"/api/v1/studies/{study}/dicom.zip")
    assert status == 200 and headers["Content-Type"] == "application/zip"
    assert headers["Content-Disposition"] == 'attachment; filename="Z_1-dicom.zip"'
    with zipfile.ZipFile(BytesIO(data)) as archive:
        names = archive.namelist()
        assert "DICOMDIR" in names
        archive.extractall(tmp_path)
    records = pydicom.dcmread(tmp_path / "DICOMDIR").DirectoryRecordSequence
    images = [r for r in records if r.DirectoryRecordType == "IMAGE"]
    assert sorted(r.ReferencedSOPInstanceUIDInFile for r in images) == sorted(sops)
    for record in images:  # each record names a file of the archive holding that object
        stored = pydicom.dcmread(tmp_path.joinpath(*record.ReferencedFileID))
        assert stored.SOPInstanceUID == record.ReferencedSOPInstanceUIDInFile and str(stored.PatientName) == "张^三"
    assert [r.PatientName for r in records if r.DirectoryRecordType == "PATIENT"] == ["张^三"]

    status, data, headers = await _download(community, f"/api/v1/studies/{study}/jpeg.zip")
    assert status == 200
    with zipfile.ZipFile(BytesIO(data)) as archive:
        jpegs = [archive.read(n) for n in archive.namelist()]
    assert len(jpegs) == 2 and all(j.startswith(b"\xff\xd8\xff") for j in jpegs)

    for path in (f"/api/v1/studies/{study}/dicom.zip", f"/api/v1/studies/{study}/jpeg.zip"):
        status, body, _ = await _download(other_site, path)
        assert status == 404 and b"not_found" in body
    empty = await arrive(client.app, world.site_a, "US")
    status, _, _ = await _download(community, f"/api/v1/studies/{empty}/dicom.zip")
    assert status == 404

    async with client.app[DB]() as db:
        rows = (
            await db.scalars(select(AuditEvent).where(AuditEvent.study_id == study, AuditEvent.action == "export"))
        ).all()
    assert [(r.route, r.status, r.actor_name) for r in rows] == [
        ("/api/v1/studies/{id}/dicom.zip", 200, "sono_a"),
        ("/api/v1/studies/{id}/jpeg.zip", 200, "sono_a"),
        ("/api/v1/studies/{id}/dicom.zip", 404, "sono_b"),
        ("/api/v1/studies/{id}/jpeg.zip", 404, "sono_b"),
    ]
