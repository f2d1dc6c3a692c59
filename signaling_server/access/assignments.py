"""Which sites a user serves: an expert reads and reports their studies, joins their consultations; an admin or a
registrar so assigned sees that site's patients as well. Only an admin assigns (`routes.py`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.db.models import Site, SiteAssignment, User

ASSIGNABLE_ROLES = ("expert", "admin", "registrar")


async def sites_of(db: AsyncSession, user_id: str) -> frozenset[str]:
    query = select(SiteAssignment.site_id).where(SiteAssignment.user_id == user_id)
    return frozenset(await db.scalars(query))


async def assign(db: AsyncSession, user_id: str, site_id: str, *, by: str | None, at: datetime) -> bool:
    """Assign `user_id` to serve `site_id`; False when it already did. Does not commit."""
    user, site = await db.get(User, user_id), await db.get(Site, site_id)
    if user is None:
        raise errors.NotFound("no such user")
    if site is None:
        raise errors.InvalidRequest("site_id: no such site")
    if user.role not in ASSIGNABLE_ROLES:
        raise errors.InvalidRequest(
            f"a {user.role} is not assigned to sites (only {', '.join(ASSIGNABLE_ROLES)}): "
            "a sonographer belongs to one site, a trainer sees de-identified sessions of every site"
        )
    if site_id in await sites_of(db, user_id):
        return False
    db.add(SiteAssignment(user_id=user_id, site_id=site_id, created_by_id=by, created_at=at))
    await db.flush()
    return True


async def unassign(db: AsyncSession, user_id: str, site_id: str) -> bool:
    """Stop `user_id` serving `site_id`; False when they did not. Does not commit."""
    query = delete(SiteAssignment).where(SiteAssignment.user_id == user_id, SiteAssignment.site_id == site_id)
    result = await db.execute(query)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def listing(db: AsyncSession, user_id: str | None = None) -> list[SiteAssignment]:
    query = select(SiteAssignment).order_by(SiteAssignment.user_id, SiteAssignment.site_id)
    if user_id:
        query = query.where(SiteAssignment.user_id == user_id)
    return list(await db.scalars(query))
