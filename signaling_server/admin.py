"""Administration actions shared by the REST API, the `teleus` command and the demo seed."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.auth import secrets
from signaling_server.auth.identity import ROLES, SITE_ROLES
from signaling_server.auth.passwords import hash_password
from signaling_server.db.models import Device, Site, User

_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MIN_PASSWORD = 8


# What a site is in the district: a community health centre sends exams, the regional centre reads them, a partner
# hospital takes referrals. Access follows the sites a person belongs to or serves, whatever the kind.
SITE_KINDS = ("community", "regional", "hospital")


async def create_site(db: AsyncSession, code: str, name: str, kind: str = "community") -> Site:
    """A new site. Its modalities are DICOM peers of their own (`dicomstore/peers.py`)."""
    if not _CODE.match(code):
        raise errors.InvalidRequest("a site code is 1-32 letters, digits, '-' or '_'")
    if kind not in SITE_KINDS:
        raise errors.InvalidRequest(f"a site's kind is one of {', '.join(SITE_KINDS)}")
    site = Site(code=code, name=name, kind=kind)
    db.add(site)
    await _commit_unique(db, f"a site with code {code!r} exists already")
    return site


async def set_kind(db: AsyncSession, site_id: str, kind: str) -> Site:
    if kind not in SITE_KINDS:
        raise errors.InvalidRequest(f"a site's kind is one of {', '.join(SITE_KINDS)}")
    site = await db.get(Site, site_id)
    if site is None:
        raise errors.NotFound("no such site")
    site.kind = kind
    await db.commit()
    return site


async def set_recording(db: AsyncSession, site_id: str, enabled: bool) -> Site:
    """The site's recording policy: whether the edge records its live consultations (RECORDINGS.md)."""
    site = await db.get(Site, site_id)
    if site is None:
        raise errors.NotFound("no such site")
    site.recording_enabled = enabled
    await db.commit()
    return site


async def create_user(
    db: AsyncSession,
    username: str,
    name: str,
    role: str,
    password: str,
    site_id: str | None = None,
    *,
    must_change_password: bool = False,
) -> User:
    """A new account; `must_change_password`: the password was chosen by someone else, for one sign-in only."""
    if role not in ROLES:
        raise errors.InvalidRequest(f"role must be one of {', '.join(ROLES)}")
    if role in SITE_ROLES and not site_id:
        raise errors.InvalidRequest(f"a {role} belongs to a site: give site_id")
    if site_id and await db.get(Site, site_id) is None:
        raise errors.InvalidRequest("no such site")
    if len(password) < MIN_PASSWORD:
        raise errors.InvalidRequest(f"a password has at least {MIN_PASSWORD} characters")
    password_hash = await asyncio.to_thread(hash_password, password)  # slow by design: off the event loop
    user = User(
        username=username,
        name=name,
        role=role,
        site_id=site_id,
        password_hash=password_hash,
        must_change_password=must_change_password,
    )
    db.add(user)
    await _commit_unique(db, f"the username {username!r} is taken")
    return user


async def register_device(db: AsyncSession, site_id: str, name: str) -> tuple[Device, str]:
    """A new edge device and its credential (`dev_<id>_<secret>`), shown only this once."""
    if await db.get(Site, site_id) is None:
        raise errors.InvalidRequest("no such site")
    secret = secrets.new_secret()
    device = Device(site_id=site_id, name=name, secret_hash=secrets.hash_secret(secret))
    db.add(device)
    await db.commit()
    return device, str(secrets.Credential(secrets.DEVICE, device.id, secret))


async def rotate_device(db: AsyncSession, device_id: str) -> tuple[Device, str]:
    device = await _device(db, device_id)
    secret = secrets.new_secret()
    device.secret_hash = secrets.hash_secret(secret)
    device.revoked = False
    await db.commit()
    return device, str(secrets.Credential(secrets.DEVICE, device.id, secret))


async def revoke_device(db: AsyncSession, device_id: str) -> Device:
    device = await _device(db, device_id)
    device.revoked = True
    await db.commit()
    return device


async def _device(db: AsyncSession, device_id: str) -> Device:
    device = await db.get(Device, device_id)
    if device is None:
        raise errors.NotFound("no such device")
    return device


async def find_site(db: AsyncSession, code_or_id: str) -> Site:
    site = (await db.scalars(select(Site).where((Site.code == code_or_id) | (Site.id == code_or_id)))).first()
    if site is None:
        raise errors.NotFound(f"no site {code_or_id!r}")
    return site


async def _commit_unique(db: AsyncSession, message: str) -> None:
    try:
        await db.commit()
    except IntegrityError:
        await db.rollback()
        raise errors.Conflict(message) from None
