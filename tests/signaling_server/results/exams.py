"""An exam of the community with real images in the store, read and approved by the centre through the real API."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydicom.uid import generate_uid
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import Study
from signaling_server.dicomstore.ingest import store_instance
from tests.signaling_server.dicomstore.objects import image

NODULE = {
    "location": "右叶下极",
    "composition": "solid",
    "echogenicity": "hypoechoic",
    "shape": "wider_than_tall",
    "margin": "smooth",
    "echogenic_foci": ["macrocalcifications"],
    "max_axial_mm": 16,
    "perpendicular_axial_mm": 11,
    "craniocaudal_mm": 14,
}


async def examined(
    app: web.Application, site_id: str, *, name: str = "张^三", images: int = 2, accession: str = "ACC12"
) -> tuple[str, list[str]]:
    """A thyroid exam of `images` ultrasound images arrives from the site (matched): its id and SOP UIDs."""
    study_uid, series_uid = generate_uid(), generate_uid()
    sops = []
    for n in range(images):
        raw = image(
            patient_id="P-12",
            name=name,
            birth_date="19800315",
            sex="M",
            study_uid=study_uid,
            series_uid=series_uid,
            accession=accession,
            study_date="20251201",
            rows=120,
            columns=160,
            seed=n,
        )
        stored = await store_instance(app, raw, site_id=site_id, received_via="stow")
        sops.append(stored.sop_uid)
    async with app[DB]() as db:
        study = await db.scalar(select(Study).where(Study.study_uid == study_uid))
        assert study is not None
        return study.id, sops


async def reported(reader: Any, study_id: str, sops: list[str], nodule: dict[str, Any] = NODULE) -> str:
    """The reader claims the exam, writes a thyroid report with the given images chosen, and signs it."""
    status, _ = await reader.post(f"/api/v1/studies/{study_id}/claim")
    assert status == 200
    status, draft = await reader.post(
        f"/api/v1/studies/{study_id}/reports",
        {"kind": "thyroid", "content": {"nodules": [nodule], "comment": "甲状腺右叶见一实性低回声结节。"}},
    )
    assert status == 201, draft
    chosen = {"images": [{"sop_uid": uid, "frame": 1} for uid in sops]}
    async with reader.session.put(
        f"{reader.base}/api/v1/reports/{draft['id']}/images", json=chosen, headers={"X-CSRF-Token": reader.csrf}
    ) as r:
        assert r.status == 200, await r.text()
    status, signed = await reader.post(f"/api/v1/reports/{draft['id']}/sign")
    assert status == 200, signed
    return str(draft["id"])
