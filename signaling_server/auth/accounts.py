"""The life of an account, shared by the REST API and the `teleus user` commands: disable and re-enable, reset
and change the password, change role, site or name, remove the second factor, end sessions, revoke tokens.

These only change the database. Closing the person's open WebSockets is the caller's part: the REST routes do it
at once through the room registry; for the command line (another process) the server's credential watch
(signaling/credential_watch.py) finds the ended credentials within `credential_check_seconds`.
"""

from __future__ import annotations

import secrets as pysecrets
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.admin import MIN_PASSWORD
from signaling_server.auth.identity import ROLES, SITE_ROLES
from signaling_server.db.models import ApiToken, Site, User, WebSession

MAX_PASSWORD = 256
Hasher = Callable[[str], Awaitable[str]]  # password -> Argon2 hash, off the event loop


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise errors.InvalidRequest(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise errors.InvalidRequest(f"a password has at most {MAX_PASSWORD} characters")


def temporary_password() -> str:
    """A password to hand over once, changed at the first sign-in: 16 characters of base64url (96 bits)."""
    return pysecrets.token_urlsafe(12)


async def get_user(db: AsyncSession, user_id: str) -> User:
    user = await db.get(User, user_id)
    if user is None:
        raise errors.NotFound("no such user")
    return user


async def find_user(db: AsyncSession, username_or_id: str) -> User:
    query = select(User).where((User.username == username_or_id) | (User.id == username_or_id))
    user = (await db.scalars(query)).first()
    if user is None:
        raise errors.NotFound(f"no user {username_or_id!r}")
    return user


async def _keep_an_admin(db: AsyncSession, user: User) -> None:
    """Refuse to take away the last active admin: nobody could administer the server (or undo it) after."""
    others = select(func.count()).select_from(User).where(User.role == "admin", User.active, User.id != user.id)
    if user.role == "admin" and user.active and not await db.scalar(others):
        raise errors.LastAdmin(f"{user.username} is the last active admin")


async def update_user(
    db: AsyncSession, user_id: str, *, name: str | None = None, role: str | None = None, site_code_or_id: str = ""
) -> User:
    """Change name, role and site; `site_code_or_id` "" keeps the site, "-" clears it."""
    user = await get_user(db, user_id)
    if role is not None and role not in ROLES:
        raise errors.InvalidRequest(f"role must be one of {', '.join(ROLES)}")
    site_id = user.site_id
    if site_code_or_id == "-":
        site_id = None
    elif site_code_or_id:
        query = select(Site).where((Site.id == site_code_or_id) | (Site.code == site_code_or_id))
        site = (await db.scalars(query)).first()
        if site is None:
            raise errors.InvalidRequest("no such site")
        site_id = site.id
    new_role = role or user.role
    if new_role in SITE_ROLES and not site_id:
        raise errors.InvalidRequest(f"a {new_role} belongs to a site: give site_id")
    if new_role != "admin":
        await _keep_an_admin(db, user)
    if name is not None:
        user.name = name
    user.role, user.site_id = new_role, site_id
    await db.commit()
    return user


async def disable_user(db: AsyncSession, user_id: str) -> User:
    """No more sign-ins; every session ends; tokens are refused while disabled (re-enabling brings them back)."""
    user = await get_user(db, user_id)
    await _keep_an_admin(db, user)
    user.active = False
    await _revoke_sessions(db, user.id)
    await db.commit()
    return user


async def enable_user(db: AsyncSession, user_id: str) -> User:
    user = await get_user(db, user_id)
    user.active = True
    await db.commit()
    return user


async def reset_password(db: AsyncSession, user_id: str, password: str, hasher: Hasher) -> User:
    """An administrator's reset: a new password that must be changed at the next sign-in. Every session ends and
    every token is revoked: a reset is what one does when an account may be in someone else's hands."""
    check_new_password(password)
    user = await get_user(db, user_id)
    user.password_hash = await hasher(password)
    user.must_change_password = True
    await _revoke_sessions(db, user.id)
    await db.execute(update(ApiToken).where(ApiToken.user_id == user.id).values(revoked=True))
    await db.commit()
    return user


async def change_password(
    db: AsyncSession, user_id: str, password: str, hasher: Hasher, now: datetime, keep_session: str | None
) -> list[str]:
    """The person's own change (the current password was checked by the caller). Their other sessions end;
    returns their ids."""
    check_new_password(password)
    user = await get_user(db, user_id)
    user.password_hash = await hasher(password)
    user.must_change_password = False
    user.password_changed_at = now
    ended = await _revoke_sessions(db, user.id, keep=keep_session)
    await db.commit()
    return ended


async def remove_totp(db: AsyncSession, user_id: str) -> User:
    """Forget the second factor (a lost phone); the person may enrol again."""
    user = await get_user(db, user_id)
    user.totp_secret = user.totp_pending_secret = None
    user.totp_last_step = None
    await db.commit()
    return user


async def _revoke_sessions(db: AsyncSession, user_id: str, keep: str | None = None) -> list[str]:
    query = select(WebSession.id).where(WebSession.user_id == user_id, WebSession.revoked.is_(False))
    if keep is not None:
        query = query.where(WebSession.id != keep)
    ids = list((await db.scalars(query)).all())
    if ids:
        await db.execute(update(WebSession).where(WebSession.id.in_(ids)).values(revoked=True))
    return ids


async def revoke_session(db: AsyncSession, session_id: str) -> WebSession:
    session = await db.get(WebSession, session_id)
    if session is None:
        raise errors.NotFound("no such session")
    session.revoked = True
    await db.commit()
    return session


async def revoke_token(db: AsyncSession, token_id: str) -> ApiToken:
    token = await db.get(ApiToken, token_id)
    if token is None:
        raise errors.NotFound("no such token")
    token.revoked = True
    await db.commit()
    return token


async def live_sessions(db: AsyncSession, user_id: str, now: datetime) -> list[WebSession]:
    query = (
        select(WebSession)
        .where(WebSession.user_id == user_id, WebSession.revoked.is_(False), WebSession.expires_at > now)
        .order_by(WebSession.created_at.desc())
    )
    return list((await db.scalars(query)).all())


async def tokens_of(db: AsyncSession, user_id: str) -> list[ApiToken]:
    """The user's tokens that were not revoked (expired ones included, marked so by their representation)."""
    query = (
        select(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked.is_(False))
        .order_by(ApiToken.created_at.desc())
    )
    return list((await db.scalars(query)).all())
