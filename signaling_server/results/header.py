"""A site's header on its printed reports: name, address, phone and logo (docs/RESULTS.md).

The logo is kept in the database (`sites.logo`), never as a file named by anyone: at most `MAX_LOGO_BYTES`, PNG or
JPEG only, recognised by its first bytes *and* decoded whole (a truncated or disguised file is refused), at most
`MAX_LOGO_SIDE` pixels a side. It is served back only as the media type it was found to be, with `nosniff`.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.db.models import Site

MAX_LOGO_BYTES = 256 * 1024
MAX_LOGO_SIDE = 2000
PNG, JPEG = "image/png", "image/jpeg"
_MAGIC = {PNG: b"\x89PNG\r\n\x1a\n", JPEG: b"\xff\xd8\xff"}
LIMITS = {"name": 200, "address": 300, "phone": 40}


def logo_type(declared: str, data: bytes) -> str:
    """The logo's media type if `data` is a whole PNG or JPEG image of what `declared` says; raises
    UnsupportedMediaType (another declared type), TooLarge or InvalidLogo."""
    if declared not in _MAGIC:
        raise errors.UnsupportedMediaType("a logo is sent as image/png or image/jpeg")
    if len(data) > MAX_LOGO_BYTES:
        raise errors.TooLarge(f"a logo is at most {MAX_LOGO_BYTES // 1024} KiB")
    if not data.startswith(_MAGIC[declared]):
        raise errors.InvalidLogo(f"the bytes sent are not a {declared.removeprefix('image/').upper()} image")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise errors.InvalidLogo("the logo could not be decoded: a damaged or truncated image")
    if max(image.shape[:2]) > MAX_LOGO_SIDE:
        raise errors.InvalidLogo(f"a logo is at most {MAX_LOGO_SIDE} pixels a side")
    return declared


def header_fields(data: dict[str, Any]) -> dict[str, str]:
    """The fields of `data` to change (name, address, phone), trimmed; InvalidSiteHeader names the first bad one."""
    unknown = sorted(set(data) - set(LIMITS))
    if unknown:
        raise errors.InvalidSiteHeader(unknown[0], "not a field of the site header (name, address, phone)")
    changes: dict[str, str] = {}
    for key, limit in LIMITS.items():
        if key not in data:
            continue
        value = data[key]
        if not isinstance(value, str) or len(value.strip()) > limit or any(ord(c) < 32 for c in value):
            raise errors.InvalidSiteHeader(key, f"text of at most {limit} characters on one line")
        changes[key] = value.strip()
    if "name" in changes and not changes["name"]:
        raise errors.InvalidSiteHeader("name", "a site keeps a name")
    if not changes:
        raise errors.InvalidSiteHeader("name", "give at least one of name, address, phone")
    return changes


async def site(db: AsyncSession, site_id: str) -> Site:
    found = await db.get(Site, site_id)
    if found is None:
        raise errors.NotFound("no such site")
    return found


async def set_header(db: AsyncSession, site_id: str, changes: dict[str, str]) -> Site:
    row = await site(db, site_id)
    for key, value in changes.items():
        setattr(row, key, value)
    await db.commit()
    return row


async def set_logo(db: AsyncSession, site_id: str, data: bytes | None, media_type: str | None) -> Site:
    """Store (or with None, remove) the site's logo, already checked by `logo_type`."""
    row = await site(db, site_id)
    row.logo, row.logo_type = data, media_type
    await db.commit()
    return row


async def logo_of(db: AsyncSession, site_id: str) -> tuple[bytes, str] | None:
    """The site's logo bytes and media type, or None."""
    row = (await db.execute(select(Site.logo, Site.logo_type).where(Site.id == site_id))).first()
    if row is None or row[0] is None or row[1] is None:
        return None
    return bytes(row[0]), str(row[1])
