"""A site's thyroid scoring system through the real app (SQLite and PostgreSQL): set by admins, used and recorded
by every thyroid report started there (draft, preview, signature, SR and printed page), kept by its addenda; and the
warnings a reader must confirm before signing (a missing Doppler angle, a likely unit slip)."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pydicom
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import Instance
from signaling_server.dicomstore.blobs import BLOBS
from tests.signaling_server.reading.studies import arrive

SOLID = {
    "composition": "solid",
    "echogenicity": "hypoechoic",
    "shape": "wider_than_tall",
    "margin": "smooth",
    "echogenic_foci": ["none_or_comet_tail"],
    "max_axial_mm": 16,
    "perpendicular_axial_mm": 11,
    "craniocaudal_mm": 14,
    "location": "右叶中部",
}


async def _sr_texts(app: Any, sop_uid: str) -> list[str]:
    async with app[DB]() as db:
        instance = await db.scalar(select(Instance).where(Instance.sop_uid == sop_uid))
        assert instance is not None
        raw = await app[BLOBS].read(instance.sha256)
    texts: list[str] = []

    def walk(items: Any) -> None:
        for item in items:
            if "TextValue" in item:
                texts.append(str(item.TextValue))
            if "ContentSequence" in item:
                walk(item.ContentSequence)

    walk(pydicom.dcmread(BytesIO(raw)).ContentSequence)
    return texts


async def test_only_an_admin_sets_a_known_system(people: Any) -> None:
    _, world, open_api = people
    admin, expert = await open_api("admin"), await open_api("expert")
    path = f"/api/v1/sites/{world.site_a}/thyroid-system"
    status, error = await expert.post(path, {"system": "c_tirads"})
    assert status == 403 and error["error"] == "forbidden"
    status, error = await admin.post(path, {"system": "k_tirads"})
    assert status == 400 and error["error"] == "invalid_request" and "system" in error["message"]
    status, error = await admin.post("/api/v1/sites/nope/thyroid-system", {"system": "c_tirads"})
    assert status == 404 and error["error"] == "not_found"
    status, site = await admin.post(path, {"system": "c_tirads"})
    assert status == 200 and site["thyroid_system"] == "c_tirads"
    _, listed = await expert.get("/api/v1/sites")
    systems = {s["id"]: s["thyroid_system"] for s in listed["sites"]}
    assert systems == {world.site_a: "c_tirads", world.site_b: "acr_tirads"}  # ACR by default


async def test_a_c_tirads_site_scores_records_and_prints_c_tirads(people: Any) -> None:
    client, world, open_api = people
    admin, reader, senior = await open_api("admin"), await open_api("expert"), await open_api("expert2")
    await admin.post(f"/api/v1/sites/{world.site_a}/thyroid-system", {"system": "c_tirads"})
    study = await arrive(client.app, world.site_a, "US", name="张^三")
    other = await arrive(client.app, world.site_b, "US", name="李^四")

    # the preview of a study scores with its site's system, whatever the content says
    content = {"system": "acr_tirads", "nodules": [SOLID]}
    _, preview = await reader.post(
        "/api/v1/reports/preview", {"kind": "thyroid", "content": content, "study_id": study}
    )
    assert preview["computed"]["system"] == "c_tirads" and preview["computed"]["nodules"][0]["level"] == "C-TR4A"
    _, preview = await reader.post(
        "/api/v1/reports/preview", {"kind": "thyroid", "content": content, "study_id": other}
    )
    assert preview["computed"]["nodules"][0]["level"] == "TR4"

    await reader.post(f"/api/v1/studies/{study}/claim")
    status, draft = await reader.post(f"/api/v1/studies/{study}/reports", {"kind": "thyroid", "content": content})
    assert status == 201, draft
    assert draft["content"]["system"] == "c_tirads" and draft["computed"]["nodules"][0]["level"] == "C-TR4A"
    # the site changing its mind later does not rescore the report already started
    await admin.post(f"/api/v1/sites/{world.site_a}/thyroid-system", {"system": "acr_tirads"})
    assert (await reader.post(f"/api/v1/reports/{draft['id']}/sign"))[0] == 200
    status, final = await senior.post(f"/api/v1/reports/{draft['id']}/approve")
    assert status == 200, final
    assert final["computed"]["system"] == "c_tirads"

    texts = await _sr_texts(client.app, final["sr_sop_uid"])
    assert "C-TIRADS分类" in texts  # the SR is written in Chinese and names its system
    assert any(t.startswith("结节1（右叶中部）：C-TR4A") for t in texts), texts
    async with reader.session.get(f"{reader.base}/api/v1/reports/{draft['id']}/print?language=zh-CN") as r:
        page = await r.text()
    assert r.status == 200 and '<html lang="zh-CN">' in page
    assert "分类系统：C-TIRADS分类" in page and "甲状腺超声检查报告" in page and "C-TIRADS 4A类" in page
    headers = {"Accept-Language": "en-GB,en;q=0.9"}
    async with reader.session.get(f"{reader.base}/api/v1/reports/{draft['id']}/print", headers=headers) as r:
        english = await r.text()
    assert "Scoring system: C-TIRADS" in english and "Thyroid ultrasound report" in english


async def test_a_missing_doppler_angle_must_be_confirmed_before_signing(people: Any) -> None:
    client, world, open_api = people
    reader = await open_api("expert")
    study = await arrive(client.app, world.site_a, "US", name="王^五")
    await reader.post(f"/api/v1/studies/{study}/claim")
    right = {"plaque": "visible", "flow": "present", "ica_psv_cm_s": 150}
    status, draft = await reader.post(
        f"/api/v1/studies/{study}/reports", {"kind": "carotid", "content": {"right": right}}
    )
    assert status == 201, draft
    warnings = draft["computed"]["warnings"]
    assert [(w["id"], w["code"], w["confirmed"]) for w in warnings] == [
        ("angle_missing:right", "warning.angle_missing", False)
    ]
    status, error = await reader.post(f"/api/v1/reports/{draft['id']}/sign")
    assert status == 409 and error["error"] == "unconfirmed_warnings" and error["warnings"] == ["angle_missing:right"]
    assert "Doppler angle not recorded" in error["message"]
    confirmed = {"right": right, "confirmed_warnings": ["angle_missing:right", "stale:left"]}
    async with reader.session.put(
        f"{reader.base}/api/v1/reports/{draft['id']}", json={"content": confirmed}, headers=reader._headers()
    ) as r:
        edited = await r.json()
    assert edited["content"]["confirmed_warnings"] == ["angle_missing:right"]  # unknown ids are not kept
    assert edited["computed"]["warnings"][0]["confirmed"] is True
    status, signed = await reader.post(f"/api/v1/reports/{draft['id']}/sign")
    assert status == 200 and signed["state"] == "preliminary"


async def test_a_likely_unit_slip_asks_for_confirmation_and_is_not_refused(people: Any) -> None:
    client, world, open_api = people
    reader = await open_api("expert")
    study = await arrive(client.app, world.site_a, "US", name="赵^六")
    await reader.post(f"/api/v1/studies/{study}/claim")
    tiny = {**SOLID, "max_axial_mm": 1.6, "perpendicular_axial_mm": 1.1, "craniocaudal_mm": 1.4}  # cm typed as mm
    status, draft = await reader.post(
        f"/api/v1/studies/{study}/reports", {"kind": "thyroid", "content": {"nodules": [tiny]}}
    )
    assert status == 201, draft
    assert [w["id"] for w in draft["computed"]["warnings"]] == ["diameter_unit:nodule1"]
    status, error = await reader.post(f"/api/v1/reports/{draft['id']}/sign")
    assert status == 409 and error["error"] == "unconfirmed_warnings"
