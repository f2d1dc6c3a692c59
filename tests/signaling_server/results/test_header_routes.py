"""A site's printed-report header through the real app: admins set name, address, phone and a PNG or JPEG logo;
bad input answers stable codes; every change is audited; the logo comes back as the type it was found to be."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import AuditEvent
from signaling_server.results.header import MAX_LOGO_BYTES


def encoded(ext: str, side: int = 32) -> bytes:
    pixels = np.zeros((side, side, 3), np.uint8)
    cv2.circle(pixels, (side // 2, side // 2), side // 3, (30, 120, 200), -1)
    ok, data = cv2.imencode(ext, pixels)
    assert ok
    return data.tobytes()


async def _put(api: Any, path: str, **kwargs: Any) -> tuple[int, Any]:
    headers = {"X-CSRF-Token": api.csrf, **kwargs.pop("headers", {})}
    async with api.session.put(api.base + path, headers=headers, **kwargs) as r:
        return r.status, await r.json()


async def test_an_admin_sets_the_header_and_a_logo_that_others_read(people: Any) -> None:
    client, world, open_api = people
    admin, community = await open_api("admin"), await open_api("sono_a")
    path = f"/api/v1/sites/{world.site_a}"

    status, header = await _put(admin, f"{path}/header", json={"address": " 顺德区北城路 12 号 ", "phone": "0757-1"})
    assert status == 200 and header["address"] == "顺德区北城路 12 号" and header["name"].startswith("North")
    status, header = await _put(admin, f"{path}/logo", data=encoded(".png"), headers={"Content-Type": "image/png"})
    assert status == 200 and header["logo"] is True
    async with community.session.get(community.base + f"{path}/logo") as r:
        assert r.status == 200 and r.content_type == "image/png" and r.headers["X-Content-Type-Options"] == "nosniff"
        assert (await r.read()).startswith(b"\x89PNG")
    status, header = await _put(admin, f"{path}/logo", data=encoded(".jpg"), headers={"Content-Type": "image/jpeg"})
    assert status == 200 and header["logo"] is True
    _, read = await community.get(f"{path}/header")
    assert read == header

    status, error = await _put(community, f"{path}/header", json={"phone": "1"})
    assert status == 403 and error["error"] == "forbidden"
    status, error = await _put(admin, "/api/v1/sites/nope/header", json={"phone": "1"})
    assert status == 404

    async with admin.session.delete(admin.base + f"{path}/logo", headers={"X-CSRF-Token": admin.csrf}) as r:
        assert r.status == 200 and (await r.json())["logo"] is False
    async with community.session.get(community.base + f"{path}/logo") as r:
        assert r.status == 404

    async with client.app[DB]() as db:
        rows = (await db.scalars(select(AuditEvent).where(AuditEvent.object_id == world.site_a))).all()
    assert [(r.action, r.method, r.route, r.status) for r in rows] == [
        ("write", "PUT", "/api/v1/sites/{id}/header", 200),
        ("write", "PUT", "/api/v1/sites/{id}/logo", 200),
        ("write", "PUT", "/api/v1/sites/{id}/logo", 200),
        ("write", "PUT", "/api/v1/sites/{id}/header", 403),
        ("write", "DELETE", "/api/v1/sites/{id}/logo", 200),
    ]


async def test_bad_headers_and_logos_are_refused_with_stable_codes(people: Any) -> None:
    client, world, open_api = people
    admin = await open_api("admin")
    path = f"/api/v1/sites/{world.site_a}"
    for body, field in (
        ({"name": ""}, "name"),
        ({"address": "x" * 301}, "address"),
        ({"phone": "1\n2"}, "phone"),
        ({"fax": "1"}, "fax"),
        ({}, "name"),
    ):
        status, error = await _put(admin, f"{path}/header", json=body)
        assert status == 400 and error["error"] == "invalid_site_header" and error["field"] == field, body

    png = encoded(".png")
    for data, content_type, code, expected in (
        (png, "image/gif", 415, "unsupported_media_type"),
        (png, "image/svg+xml", 415, "unsupported_media_type"),
        (png, "image/jpeg", 400, "invalid_logo"),  # the bytes are not what the type says
        (png[: len(png) // 2], "image/png", 400, "invalid_logo"),  # truncated
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/png", 400, "invalid_logo"),
        (encoded(".png", 2100), "image/png", 400, "invalid_logo"),  # over 2000 pixels a side
        (b"\x89PNG\r\n\x1a\n" + b"\0" * MAX_LOGO_BYTES, "image/png", 413, "too_large"),
    ):
        status, error = await _put(admin, f"{path}/logo", data=data, headers={"Content-Type": content_type})
        assert (status, error["error"]) == (code, expected), content_type
    _, header = await admin.get(f"{path}/header")
    assert header["logo"] is False
