"""Resolve the caller of a request: cookie session (with CSRF), user token, or device credential.

Every credential is checked against the database on every request, so a disabled user, a revoked session or token
and an expired one are refused at once. A signed-in user may be *restricted* (a forced password change, an admin
who must enrol TOTP): `caller()` then refuses every call but the few the restriction itself needs.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.appkeys import CLOCK, DB, SETTINGS
from signaling_server.auth import secrets
from signaling_server.db.models import ApiToken, Device, User, WebSession
from signaling_server.settings import Settings

COOKIE = "teleus_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

ROLES = ("sonographer", "expert", "trainer", "admin", "registrar", "doctor")
SITE_ROLES = ("sonographer", "doctor")  # people of one community site: they belong to it and see its patients
READ, WRITE = "read", "write"
SCOPES = (READ, WRITE)  # an API token's scope: "read" tokens may only GET

PASSWORD_CHANGE = "password_change_required"
TOTP_ENROLMENT = "totp_enrolment_required"

# last_used_at / last_seen_at are written at most this often: not one write per request.
_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Caller:
    """A signed-in user (by cookie or token) or an edge device, and what their credential allows."""

    via: str  # "cookie" | "token" | "device"
    user: User | None = None
    device: Device | None = None
    csrf_token: str | None = None
    session_id: str | None = None
    token_id: str | None = None
    scope: str = WRITE
    expires_at: datetime | None = None  # of the session or token
    restriction: str | None = None  # PASSWORD_CHANGE | TOTP_ENROLMENT | None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))  # the request's moment, by the app's clock

    @property
    def role(self) -> str:
        return self.user.role if self.user else "edge"

    def require_user(self, *roles: str) -> User:
        if self.user is None:
            raise errors.Forbidden("this call is for signed-in users, not devices")
        if roles and self.user.role not in roles:
            raise errors.Forbidden(f"a {self.user.role} may not do this")
        return self.user

    def require_device(self) -> Device:
        if self.device is None:
            raise errors.Forbidden("this call is for edge devices")
        return self.device

    def require_session(self) -> User:
        """Calls that manage the account's own credentials need the password, i.e. a browser session: a token
        cannot mint tokens (its expiry would mean nothing) nor change the password."""
        user = self.require_user()
        if self.via != "cookie":
            raise errors.ScopeForbidden("this call needs a signed-in browser session, not an API token")
        return user


_CALLER = web.RequestKey("caller", Caller)


async def caller(request: web.Request, *, allow_restricted: bool = False) -> Caller:
    """The authenticated caller; raises Unauthenticated (and its kinds), CsrfFailed, ScopeForbidden, and, for a
    restricted user unless `allow_restricted`, PasswordChangeRequired or TotpEnrolmentRequired."""
    found = request.get(_CALLER)
    if found is None:
        found = await _resolve(request)
        clock = request.app.get(CLOCK)
        if clock is not None:
            found = replace(found, at=clock())
        request[_CALLER] = found
    if found.restriction and not allow_restricted:
        if found.restriction == PASSWORD_CHANGE:
            raise errors.PasswordChangeRequired("set a new password first (POST /api/v1/auth/password)")
        raise errors.TotpEnrolmentRequired("admins must enrol a TOTP second factor first (/api/v1/auth/totp)")
    return found


def restriction_of(user: User, settings: Settings) -> str | None:
    if user.must_change_password:
        return PASSWORD_CHANGE
    if settings.admin_totp_required and user.role == "admin" and not user.totp_secret:
        return TOTP_ENROLMENT
    return None


async def _resolve(request: web.Request) -> Caller:
    auth = request.headers.get("Authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        cred = secrets.parse(value.strip()) if scheme.lower() == "bearer" else None
        if cred is None or cred.kind == secrets.SESSION:
            raise errors.Unauthenticated("the Authorization header is not a teleus bearer credential")
        if cred.kind == secrets.DEVICE:
            return await _device(request, cred)
        found = await _token(request, cred)
        if found.scope != WRITE and request.method not in _SAFE_METHODS:
            raise errors.ScopeForbidden("this API token is read-only: it may only GET")
        return found
    cookie = request.cookies.get(COOKIE)
    cred = secrets.parse(cookie) if cookie else None
    if cred is None or cred.kind != secrets.SESSION:
        raise errors.Unauthenticated("sign in first")
    found = await _session(request, cred)
    if request.method not in _SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not (found.csrf_token and hmac.compare_digest(sent, found.csrf_token)):
            raise errors.CsrfFailed(f"a {request.method} with the session cookie needs the {CSRF_HEADER} header")
    return found


async def _device(request: web.Request, cred: secrets.Credential) -> Caller:
    async with request.app[DB]() as db:
        device = await db.get(Device, cred.id)
        if device is None:
            raise errors.Unauthenticated("unknown device")
        if device.revoked or not secrets.secret_matches(device.secret_hash, cred.secret):
            raise errors.DeviceRevoked("this device credential was revoked or replaced")
        now = request.app[CLOCK]()
        if device.last_seen_at is None or now - device.last_seen_at >= _TOUCH_EVERY:  # not a write per call
            device.last_seen_at = now
            await db.commit()
    return Caller(via="device", device=device)


async def _token(request: web.Request, cred: secrets.Credential) -> Caller:
    now = request.app[CLOCK]()
    async with request.app[DB]() as db:
        token = await db.get(ApiToken, cred.id)
        if token is None or token.revoked or not secrets.secret_matches(token.secret_hash, cred.secret):
            raise errors.Unauthenticated("unknown or revoked token")
        if token.expires_at <= now:
            raise errors.TokenExpired("this API token has expired: make a new one")
        user = await db.get(User, token.user_id)
        if user is None:
            raise errors.Unauthenticated("unknown or revoked token")
        if not user.active:
            raise errors.AccountDisabled("the token's user is disabled")
        if token.last_used_at is None or now - token.last_used_at >= _TOUCH_EVERY:
            token.last_used_at = now
            await db.commit()
    restriction = restriction_of(user, request.app[SETTINGS])
    return Caller(
        via="token", user=user, token_id=token.id, scope=token.scope, expires_at=token.expires_at,
        restriction=restriction,
    )  # fmt: skip


async def _session(request: web.Request, cred: secrets.Credential) -> Caller:
    now = request.app[CLOCK]()
    async with request.app[DB]() as db:
        # the session and its user in one round trip: every request of a signed-in page asks this
        query = select(WebSession, User).join(User, User.id == WebSession.user_id).where(WebSession.id == cred.id)
        found = (await db.execute(query)).first()
        ses, user = found if found is not None else (None, None)
        if ses is None or ses.revoked or not secrets.secret_matches(ses.secret_hash, cred.secret):
            raise errors.Unauthenticated("session expired; sign in again")
        if ses.expires_at <= now:
            raise errors.Unauthenticated("session expired; sign in again")
        if user is None:
            raise errors.Unauthenticated("session expired; sign in again")
        if not user.active:
            raise errors.AccountDisabled("the session's user is disabled")
        if ses.last_seen_at is None or now - ses.last_seen_at >= _TOUCH_EVERY:
            ses.last_seen_at = now
            await db.commit()
    return Caller(
        via="cookie", user=user, csrf_token=ses.csrf_token, session_id=ses.id, expires_at=ses.expires_at,
        restriction=restriction_of(user, request.app[SETTINGS]),
    )  # fmt: skip


async def credential_ended(db: AsyncSession, who: Caller, now: datetime) -> str | None:
    """Why `who`'s credential no longer holds (a reason for the socket's close frame), or None while it does.
    Asked again for long-lived connections: when a socket joins its room and every few seconds after."""
    if who.device is not None:
        device = await db.get(Device, who.device.id)
        return "device revoked" if device is None or device.revoked else None
    if who.expires_at is not None and who.expires_at <= now:
        return "session expired" if who.session_id else "token expired"
    if who.session_id is not None:
        session = await db.get(WebSession, who.session_id)
        if session is None or session.revoked:
            return "signed out"
    if who.token_id is not None:
        token = await db.get(ApiToken, who.token_id)
        if token is None or token.revoked:
            return "token revoked"
    if who.user is not None:
        user = await db.get(User, who.user.id)
        if user is None or not user.active:
            return "account disabled"
    return None


def own_origins(request: web.Request) -> set[str]:
    """The origins of this server's own pages: the public URL's, and the one the request was addressed to."""
    found = {f"{scheme}://{request.host}" for scheme in ("http", "https")}
    public = request.app[SETTINGS].public_url
    if public:
        parts = urlsplit(public)
        found.add(f"{parts.scheme.lower()}://{parts.netloc.lower()}")
    return found


def check_origin(request: web.Request, *, required: bool) -> None:
    """Refuse (BadOrigin) a request a page of another origin made; `required`: a missing Origin is refused too
    (browsers always send one on a WebSocket; scripts that send none are not a browser a page could steer)."""
    origin = request.headers.get("Origin")
    if origin is None and not required:
        return
    if origin not in own_origins(request):
        raise errors.BadOrigin("this call must come from this server's own pages")
