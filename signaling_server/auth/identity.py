"""Resolve the caller of a request: cookie session (with CSRF), user token, or device credential."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from aiohttp import web

from signaling_server import errors
from signaling_server.appkeys import CLOCK, DB
from signaling_server.auth import secrets
from signaling_server.db.models import ApiToken, Device, User, WebSession

COOKIE = "teleus_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

ROLES = ("sonographer", "expert", "trainer", "admin", "registrar")


@dataclass(frozen=True)
class Caller:
    """A signed-in user (by cookie or token) or an edge device."""

    via: str  # "cookie" | "token" | "device"
    user: User | None = None
    device: Device | None = None
    csrf_token: str | None = None
    session_id: str | None = None
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


_CALLER = web.RequestKey("caller", Caller)


async def caller(request: web.Request) -> Caller:
    """The authenticated caller; raises Unauthenticated, DeviceRevoked or CsrfFailed."""
    found = request.get(_CALLER)
    if found is None:
        found = await _resolve(request)
        clock = request.app.get(CLOCK)
        if clock is not None:
            found = replace(found, at=clock())
        request[_CALLER] = found
    return found


async def _resolve(request: web.Request) -> Caller:
    auth = request.headers.get("Authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        cred = secrets.parse(value.strip()) if scheme.lower() == "bearer" else None
        if cred is None or cred.kind == secrets.SESSION:
            raise errors.Unauthenticated("the Authorization header is not a teleus bearer credential")
        if cred.kind == secrets.DEVICE:
            return await _device(request, cred)
        return await _token(request, cred)
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
        device.last_seen_at = datetime.now(UTC)
        await db.commit()
    return Caller(via="device", device=device)


async def _token(request: web.Request, cred: secrets.Credential) -> Caller:
    async with request.app[DB]() as db:
        token = await db.get(ApiToken, cred.id)
        if token is None or token.revoked or not secrets.secret_matches(token.secret_hash, cred.secret):
            raise errors.Unauthenticated("unknown or revoked token")
        user = await db.get(User, token.user_id)
    if user is None or not user.active:
        raise errors.Unauthenticated("the token's user is disabled")
    return Caller(via="token", user=user)


async def _session(request: web.Request, cred: secrets.Credential) -> Caller:
    async with request.app[DB]() as db:
        ses = await db.get(WebSession, cred.id)
        if ses is None or ses.revoked or not secrets.secret_matches(ses.secret_hash, cred.secret):
            raise errors.Unauthenticated("session expired; sign in again")
        if ses.expires_at <= datetime.now(UTC):
            raise errors.Unauthenticated("session expired; sign in again")
        user = await db.get(User, ses.user_id)
    if user is None or not user.active:
        raise errors.Unauthenticated("the session's user is disabled")
    return Caller(via="cookie", user=user, csrf_token=ses.csrf_token, session_id=ses.id)
