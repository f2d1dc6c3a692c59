"""Reports through the real app on SQLite and PostgreSQL: draft, sign, senior approval, DICOM SR, addenda."""

from __future__ import annotations

import subprocess
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import Instance, Study
from signaling_server.dicomstore.blobs import BLOBS
from tests.signaling_server.reading.studies import arrive

NODULE = {
    "location": "right lobe, lower pole",
    "composition": "solid",
    "echogenicity": "hypoechoic",
    "shape": "wider_than_tall",
    "margin": "smooth",
    "echogenic_foci": ["macrocalcifications"],
    "max_axial_mm": 16,
    "perpendicular_axial_mm": 11,
    "craniocaudal_mm": 14,
}


async def _stored_sr(app: Any, sop_uid: str) -> pydicom.Dataset:
    async with app[DB]() as db:
        instance = await db.scalar(select(Instance).where(Instance.sop_uid == sop_uid))
        assert instance is not None, "the approved report's SR is not in the index"
        raw = await app[BLOBS].read(instance.sha256)
    return pydicom.dcmread(BytesIO(raw))


def _dciodvfy(ds: pydicom.Dataset, tmp_path: Path) -> str:
    path = tmp_path / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    result = subprocess.run(["dciodvfy", "-new", str(path)], capture_output=True, text=True, check=False)
    return result.stdout + result.stderr


async def test_a_ct_report_is_drafted_signed_approved_archived_and_amended(people: Any, tmp_path: Path) -> None:
    client, world, open_api = people
    study = await arrive(client.app, world.site_a, "CT", name="Zhang^San")
    reader, senior = await open_api("expert"), await open_api("expert2")

    status, error = await reader.post(f"/api/v1/studies/{study}/reports", {"kind": "free_text", "content": {}})
    assert status == 409 and error["error"] == "not_lock_holder"
    await reader.post(f"/api/v1/studies/{study}/claim")
    status, draft = await reader.post(
        f"/api/v1/studies/{study}/reports", {"kind": "free_text", "content": {"findings": "No acute findings."}}
    )
    assert status == 201 and draft["state"] == "draft" and draft["version"] == 1
    status, error = await reader.post(f"/api/v1/studies/{study}/reports", {"kind": "free_text", "content": {}})
    assert status == 409 and error["error"] == "conflict"
    status, error = await reader.post(f"/api/v1/reports/{draft['id']}/sign")
    assert status == 400 and "impression" in error["message"]
    async with reader.session.put(
        f"{reader.base}/api/v1/reports/{draft['id']}",
        json={"content": {"findings": "No acute findings.", "impression": "Normal CT head."}},
        headers={"X-CSRF-Token": reader.csrf or ""},
    ) as r:
        assert r.status == 200
    status, signed = await reader.post(f"/api/v1/reports/{draft['id']}/sign")
    assert status == 200 and signed["state"] == "preliminary" and signed["signed_at"]
    _, after_sign = await reader.get(f"/api/v1/studies/{study}")
    assert after_sign["state"] == "reported" and after_sign["lock"] is None

    status, error = await reader.post(f"/api/v1/reports/{draft['id']}/approve")
    assert status == 403 and "different expert" in error["message"]
    status, final = await senior.post(f"/api/v1/reports/{draft['id']}/approve")
    assert status == 200, final
    assert final["state"] == "final" and final["approver"]["name"] == "Expert2" and final["sr_sop_uid"]
    _, approved = await reader.get(f"/api/v1/studies/{study}")
    assert approved["state"] == "approved" and approved["turnaround_seconds"] >= 0
    sr = await _stored_sr(client.app, final["sr_sop_uid"])
    assert sr.VerificationFlag == "VERIFIED" and sr.StudyInstanceUID == approved["study_uid"]
    assert "Error" not in _dciodvfy(sr, tmp_path)

    status, error = await senior.post(f"/api/v1/reports/{draft['id']}/addenda", {"content": {"impression": "x"}})
    assert status == 409 and error["error"] == "not_lock_holder"
    await senior.post(f"/api/v1/studies/{study}/claim")
    status, addendum = await senior.post(
        f"/api/v1/reports/{draft['id']}/addenda",
        {"content": {"findings": "Small left frontal contusion on review.", "impression": "Addendum: contusion."}},
    )
    assert status == 201 and addendum["version"] == 2 and addendum["amends_id"] == draft["id"]
    await senior.post(f"/api/v1/reports/{addendum['id']}/sign")
    _, amended = await reader.get(f"/api/v1/studies/{study}")
    assert amended["state"] == "reported"
    status, final2 = await reader.post(f"/api/v1/reports/{addendum['id']}/approve")
    assert status == 200
    sr2 = await _stored_sr(client.app, final2["sr_sop_uid"])
    predecessor = sr2.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert predecessor.ReferencedSOPInstanceUID == final["sr_sop_uid"]

    _, versions = await reader.get(f"/api/v1/studies/{study}/reports")
    assert [(r["version"], r["state"]) for r in versions["reports"]] == [(1, "final"), (2, "final")]
    assert versions["reports"][0]["content"]["impression"] == "Normal CT head."  # never overwritten
    async with reader.session.get(f"{reader.base}/api/v1/reports/{addendum['id']}/print") as r:
        page = await r.text()
    assert r.status == 200 and "contusion" in page and r.content_type == "text/html"


async def test_a_thyroid_report_computes_ti_rads_and_freezes_it_at_signing(people: Any, tmp_path: Path) -> None:
    client, world, open_api = people
    study = await arrive(client.app, world.site_a, "US", name="张^三")
    reader, senior = await open_api("expert"), await open_api("expert2")

    status, preview = await reader.post(
        "/api/v1/reports/preview", {"kind": "thyroid", "content": {"nodules": [NODULE]}}
    )
    assert status == 200, preview
    nodule = preview["computed"]["nodules"][0]
    assert nodule["total"] == 5 and nodule["level"] == "TR4"  # solid 2 + hypoechoic 2 + macrocalcifications 1
    assert nodule["fna_recommended"] is True  # TR4 at 1.6 cm ≥ 1.5 cm
    bad = {**NODULE, "max_axial_mm": -1}
    status, error = await reader.post("/api/v1/reports/preview", {"kind": "thyroid", "content": {"nodules": [bad]}})
    assert status == 400 and "max_axial_mm" in error["message"]

    await reader.post(f"/api/v1/studies/{study}/claim")
    _, draft = await reader.post(
        f"/api/v1/studies/{study}/reports", {"kind": "thyroid", "content": {"nodules": [NODULE]}}
    )
    assert draft["computed"]["nodules"][0]["level"] == "TR4"
    await reader.post(f"/api/v1/reports/{draft['id']}/sign")
    status, final = await senior.post(f"/api/v1/reports/{draft['id']}/approve")
    assert status == 200
    sr = await _stored_sr(client.app, final["sr_sop_uid"])
    assert str(sr.PatientName) == "张^三" and sr.SpecificCharacterSet == "ISO_IR 192"
    assert "Error" not in _dciodvfy(sr, tmp_path)
    async with client.app[DB]() as db:
        row = await db.get(Study, study)
        assert row is not None and row.state == "approved"
