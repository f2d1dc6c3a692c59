"""The printed report as a PDF through the real app on SQLite and PostgreSQL: Chinese header and patient, the
findings, the chosen images, the reader and approver; English on request; other sites' users see nothing; the SR
carries the same people and images."""

from __future__ import annotations

import os
import re
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from signaling_server.appkeys import DB
from signaling_server.db.models import AuditEvent, Instance
from signaling_server.dicomstore.blobs import BLOBS
from tests.signaling_server.results.exams import examined, reported
from tests.signaling_server.results.test_header_routes import encoded


def text_of(data: bytes) -> str:
    assert data.startswith(b"%PDF-"), data[:20]
    reader = PdfReader(BytesIO(data))
    return re.sub(r"\s+", "", "".join(page.extract_text() or "" for page in reader.pages))


def images_in(data: bytes) -> int:
    """Distinct images (pages may share one resource dictionary, which lists every image of the document)."""
    return len({image.data for page in PdfReader(BytesIO(data)).pages for image in page.images})


async def _pdf(api: Any, report_id: str, query: str = "", **headers: str) -> tuple[int, bytes, str]:
    async with api.session.get(f"{api.base}/api/v1/reports/{report_id}/pdf{query}", headers=headers) as r:
        return r.status, await r.read(), r.headers.get("Content-Type", "")


async def _header(admin: Any, site_id: str) -> None:
    async with admin.session.put(
        f"{admin.base}/api/v1/sites/{site_id}/header",
        json={"name": "北城社区卫生服务中心", "address": "顺德区北城路 12 号", "phone": "0757-2222 1234"},
        headers={"X-CSRF-Token": admin.csrf},
    ) as r:
        assert r.status == 200, await r.text()
    async with admin.session.put(
        f"{admin.base}/api/v1/sites/{site_id}/logo",
        data=encoded(".png", 96),
        headers={"X-CSRF-Token": admin.csrf, "Content-Type": "image/png"},
    ) as r:
        assert r.status == 200, await r.text()


async def test_the_approved_report_prints_in_chinese_with_header_patient_findings_and_people(
    people: Any, db_url: str
) -> None:
    client, world, open_api = people
    admin, reader, senior = await open_api("admin"), await open_api("expert"), await open_api("expert2")
    community, other_site = await open_api("sono_a"), await open_api("sono_b")
    await _header(admin, world.site_a)
    study, sops = await examined(client.app, world.site_a)
    report = await reported(reader, study, sops)
    status, approved = await senior.post(f"/api/v1/reports/{report}/approve")
    assert status == 200, approved

    status, data, kind = await _pdf(community, report, **{"Accept-Language": "zh-CN,zh;q=0.9"})
    assert status == 200 and kind == "application/pdf"
    text = text_of(data)
    for expected in (
        "北城社区卫生服务中心",  # the site's header
        "顺德区北城路12号",
        "甲状腺超声检查报告",
        "张三",  # the name as people write it, no caret
        "男",
        "45岁",  # born 1980-03-15, examined 2025-12-01
        "2025-12-01",
        "检查所见",
        "实性",  # composition in Chinese
        "低回声",
        "甲状腺右叶见一实性低回声结节。",  # the reader's own words
        "诊断意见",
        "报告医师",
        "Expert",  # the reader
        "审核医师",
        "Expert2",  # the approver
        "报告互认",
    ):
        assert expected in text, expected
    assert "张^三" not in text
    assert re.search(r"审核时间：\d{4}-\d{2}-\d{2}\d{2}:\d{2}", text), "the approval time as YYYY-MM-DD HH:MM"
    assert images_in(data) == 3  # the logo and the two chosen images
    if os.environ.get("TELEUS_SCREENS"):
        (Path(os.environ["TELEUS_SCREENS"]) / f"report-zh-{db_url.split(':')[0].split('+')[0]}.pdf").write_bytes(data)

    status, data, _ = await _pdf(community, report, "?language=en")
    english = text_of(data)
    if os.environ.get("TELEUS_SCREENS"):
        (Path(os.environ["TELEUS_SCREENS"]) / "report-en.pdf").write_bytes(data)
    assert status == 200 and "Thyroidultrasoundreport" in english and "Approvingphysician" in english
    assert "Expert2" in english and "45years" in english

    status, error, _ = await _pdf(community, report, "?language=fr")
    assert status == 400 and b"invalid_request" in error
    for stranger in (other_site, await open_api("trainer")):
        status, _, _ = await _pdf(stranger, report)
        assert status == 404

    async with client.app[DB]() as db:
        printed = await db.scalar(
            select(func.count()).where(
                AuditEvent.route == "/api/v1/reports/{id}/pdf", AuditEvent.action == "print", AuditEvent.status == 200
            )
        )
        refused = await db.scalar(
            select(func.count()).where(AuditEvent.route == "/api/v1/reports/{id}/pdf", AuditEvent.status == 404)
        )
    assert printed == 2 and refused == 2

    # the SR stored with the study says the same: the reader, the approver, the site, the chosen images
    async with client.app[DB]() as db:
        row = await db.scalar(select(Instance).where(Instance.sop_uid == approved["sr_sop_uid"]))
        assert row is not None
        raw = await client.app[BLOBS].read(row.sha256)
    sr = pydicom.dcmread(BytesIO(raw))
    assert sr.VerifyingObserverSequence[0].VerifyingObserverName == "Expert2^"
    assert sr.InstitutionName == "北城社区卫生服务中心"
    observers = [item for item in sr.ContentSequence if item.get("PersonName")]
    assert str(observers[0].PersonName) == "Expert^"
    key_images = [item for item in sr.ContentSequence if item.ConceptNameCodeSequence[0].CodeValue == "121180"]
    referenced = [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in key_images[0].ContentSequence]
    assert referenced == sops
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence
    assert [e.ReferencedSOPInstanceUID for e in evidence] == sops


async def test_a_preliminary_report_prints_as_preliminary_without_an_approver(people: Any) -> None:
    client, world, open_api = people
    reader, community = await open_api("expert"), await open_api("sono_a")
    study, sops = await examined(client.app, world.site_a, images=1)
    report = await reported(reader, study, sops)
    status, data, _ = await _pdf(community, report, "?language=zh-CN")
    text = text_of(data)
    assert status == 200 and "初步报告：尚未审核" in text and "审核医师" not in text and "报告医师" in text


@pytest.mark.parametrize("bad", [{"images": "x"}, {"images": [{"sop_uid": "1.2.3"}]}, {"images": [{"frame": 0}]}])
async def test_only_the_studys_own_images_are_chosen_by_the_draft_author(people: Any, bad: dict[str, Any]) -> None:
    client, world, open_api = people
    reader, senior = await open_api("expert"), await open_api("expert2")
    study, sops = await examined(client.app, world.site_a, images=1)
    await reader.post(f"/api/v1/studies/{study}/claim")
    _, draft = await reader.post(f"/api/v1/studies/{study}/reports", {"kind": "free_text", "content": {}})
    url = f"{reader.base}/api/v1/reports/{draft['id']}/images"
    async with reader.session.put(url, json=bad, headers={"X-CSRF-Token": reader.csrf}) as r:
        assert r.status == 400 and (await r.json())["error"] == "invalid_request"
    chosen = {"images": [{"sop_uid": sops[0]}]}
    async with senior.session.put(url, json=chosen, headers={"X-CSRF-Token": senior.csrf}) as r:
        assert r.status == 403  # not the author
    async with reader.session.put(url, json=chosen, headers={"X-CSRF-Token": reader.csrf}) as r:
        assert r.status == 200 and (await r.json())["images"] == [{"sop_uid": sops[0], "frame": 1}]


async def test_an_addendum_starts_with_the_images_of_the_version_it_amends(people: Any) -> None:
    client, world, open_api = people
    reader, senior = await open_api("expert"), await open_api("expert2")
    study, sops = await examined(client.app, world.site_a, images=2)
    report = await reported(reader, study, sops[:1])
    await senior.post(f"/api/v1/reports/{report}/approve")
    await senior.post(f"/api/v1/studies/{study}/claim")
    status, addendum = await senior.post(f"/api/v1/reports/{report}/addenda", {"content": {"nodules": []}})
    assert status == 201, addendum
    _, images = await senior.get(f"/api/v1/reports/{addendum['id']}/images")
    assert images["images"] == [{"sop_uid": sops[0], "frame": 1}]
    url = f"{senior.base}/api/v1/reports/{report}/images"
    async with senior.session.put(url, json={"images": []}, headers={"X-CSRF-Token": senior.csrf}) as r:
        assert r.status == 409 and (await r.json())["error"] == "invalid_transition"  # a final report's are fixed
