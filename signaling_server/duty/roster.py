"""Duty shifts: an expert is on duty from a shift's start until its end. Admins keep the roster (routes.py).

Who is alerted to a live request is decided here: the experts on duty now who serve the requesting site (the
sites they serve are what they may see, access/assignments.py). A sonographer can ask who that is before asking
for help; when nobody is, the request still goes to every expert who serves the site, without an alert.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.db.models import DutyShift, SiteAssignment, User

ON_DUTY_ROLES = ("expert",)
MAX_SHIFT = timedelta(days=7)  # a longer span is a typing slip (a wrong month), not a shift
MAX_WINDOW = timedelta(days=62)  # the longest stretch of the roster one listing returns
MAX_NOTE = 200


async def add(
    db: AsyncSession, user_id: str, starts_at: datetime, ends_at: datetime, note: str, *, by: str, at: datetime
) -> tuple[DutyShift, User]:
    """Put an expert on duty. Does not commit."""
    user = await db.get(User, user_id)
    if user is None or not user.active:
        raise errors.InvalidRequest("user_id: no such active user")
    if user.role not in ON_DUTY_ROLES:
        raise errors.InvalidRequest(f"user_id: a {user.role} is not put on duty (only experts answer live requests)")
    if ends_at <= starts_at:
        raise errors.InvalidRequest("ends_at must come after starts_at")
    if ends_at - starts_at > MAX_SHIFT:
        raise errors.InvalidRequest(f"a shift lasts at most {MAX_SHIFT.days} days")
    if ends_at <= at:
        raise errors.InvalidRequest("ends_at is in the past: the roster is kept for shifts to come")
    shift = DutyShift(user_id=user_id, starts_at=starts_at, ends_at=ends_at, note=note, created_by_id=by, created_at=at)
    db.add(shift)
    await db.flush()
    return shift, user


async def remove(db: AsyncSession, shift_id: str) -> DutyShift | None:
    """Take a shift off the roster; None when there was no such shift. Does not commit."""
    shift = await db.get(DutyShift, shift_id)
    if shift is not None:
        await db.delete(shift)
        await db.flush()
    return shift


async def between(db: AsyncSession, start: datetime, end: datetime) -> list[tuple[DutyShift, User]]:
    """Every shift that overlaps [start, end), earliest first."""
    query = (
        select(DutyShift, User)
        .join(User, User.id == DutyShift.user_id)
        .where(DutyShift.starts_at < end, DutyShift.ends_at > start)
        .order_by(DutyShift.starts_at, User.name)
    )
    return [(shift, user) for shift, user in (await db.execute(query)).all()]


async def on_duty(db: AsyncSession, at: datetime, site_id: str | None = None) -> list[tuple[DutyShift, User]]:
    """The experts on duty at `at` (active accounts), each with the shift that ends last; with `site_id`, only
    those who serve that site."""
    query = (
        select(DutyShift, User)
        .join(User, User.id == DutyShift.user_id)
        .where(DutyShift.starts_at <= at, DutyShift.ends_at > at, User.active.is_(True))
        .order_by(User.name, DutyShift.ends_at.desc())
    )
    if site_id is not None:
        serving = select(SiteAssignment.user_id).where(SiteAssignment.site_id == site_id)
        query = query.where(DutyShift.user_id.in_(serving))
    latest: dict[str, tuple[DutyShift, User]] = {}
    for shift, user in (await db.execute(query)).all():
        latest.setdefault(user.id, (shift, user))
    return list(latest.values())
