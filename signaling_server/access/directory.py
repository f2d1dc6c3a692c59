"""The people a grant may name, as registrars and admins look them up (docs/SECURITY.md §3): active accounts whose
username or display name holds the words typed, at most :data:`LIMIT` of them, each with only what choosing a
grantee needs (id, username, name, role, their own site and the sites they serve). The full user list, with
accounts' states and second factors, stays the admins' (`GET /api/v1/users`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.db.models import SiteAssignment, User

MIN_QUERY, MAX_QUERY = 2, 64  # characters
LIMIT = 20


@dataclass(frozen=True)
class Person:
    user: User
    serves: tuple[str, ...]  # site ids, sorted


@dataclass(frozen=True)
class Found:
    people: list[Person]
    truncated: bool  # more matched than LIMIT: type more of the name


def query_text(raw: str) -> str:
    """The words to look for, trimmed; InvalidRequest unless 2 to 64 characters."""
    text = raw.strip()
    if not MIN_QUERY <= len(text) <= MAX_QUERY:
        raise errors.InvalidRequest(f"'q' must be {MIN_QUERY} to {MAX_QUERY} characters of a username or name")
    return text


async def lookup(db: AsyncSession, text: str) -> Found:
    """Active accounts whose username or name contains `text` (case-insensitive), by username, at most LIMIT."""
    wanted = text.lower()
    query = (
        select(User)
        .where(User.active.is_(True))
        .where(
            or_(
                func.lower(User.username).contains(wanted, autoescape=True),
                func.lower(User.name).contains(wanted, autoescape=True),
            )
        )
        .order_by(User.username)
        .limit(LIMIT + 1)
    )
    users = list(await db.scalars(query))
    shown = users[:LIMIT]
    serves: dict[str, list[str]] = {}
    if shown:
        rows = await db.execute(
            select(SiteAssignment.user_id, SiteAssignment.site_id).where(
                SiteAssignment.user_id.in_([u.id for u in shown])
            )
        )
        for user_id, site_id in rows.all():
            serves.setdefault(user_id, []).append(site_id)
    people = [Person(u, tuple(sorted(serves.get(u.id, [])))) for u in shown]
    return Found(people, len(users) > LIMIT)
