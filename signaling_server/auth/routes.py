"""Sign-in and the person's own account: login, logout, who-am-I, the console language, changing the password, the
TOTP second factor.

Every password check goes through the login throttle (per account and per address, before any hashing) and the
bounded hashing pool (hashing.py). Sign-in takes JSON only, and from this server's own pages only (login CSRF).
"""

from __future__ import annotations

import secrets as pysecrets
from datetime import timedelta

from aiohttp import web
from sqlalchemy import or_, select, update

from signaling_server import errors
from signaling_server.api import body
from signaling_server.api.representations import user_json
from signaling_server.appkeys import CLOCK, DB, SETTINGS
from signaling_server.audit.middleware import note as audit_note
from signaling_server.auth import accounts, secrets, totp
from signaling_server.auth.hashing import HASHING
from signaling_server.auth.identity import COOKIE, PASSWORD_CHANGE, Caller, caller, check_origin, restriction_of
from signaling_server.auth.passwords import hash_password, verify_password
from signaling_server.auth.throttle import THROTTLE, Attempt, client_address
from signaling_server.db.models import User, WebSession
from signaling_server.events.hub import CHANGES
from signaling_server.localization.catalogs import LANGUAGES
from signaling_server.signaling.rooms import ROOMS

routes = web.RouteTableDef()


def _me(request: web.Request, user: User, csrf_token: str | None) -> dict[str, object]:
    restriction = restriction_of(user, request.app[SETTINGS])
    return {"user": user_json(user), "csrf_token": csrf_token, "restriction": restriction}


@routes.post("/api/v1/auth/login")
async def login(request: web.Request) -> web.Response:
    """`{"username", "password", "totp"?}` → `{"user", "csrf_token", "restriction"}` and the session cookie."""
    check_origin(request, required=False)
    if request.content_type != "application/json":
        raise errors.UnsupportedMediaType("sign in with a JSON body (Content-Type: application/json)")
    data = await body.json_body(request)
    username = body.text(data, "username", max_len=64)
    password = body.text(data, "password", max_len=accounts.MAX_PASSWORD)
    code = body.text(data, "totp", max_len=16, required=False)
    app = request.app
    async with app[THROTTLE].attempt(username, client_address(request)) as attempt:
        async with app[DB]() as db:
            user = (await db.scalars(select(User).where(User.username == username))).first()
        ok = await app[HASHING].run(verify_password, user.password_hash if user else None, password)
        if user is None or not ok:
            await attempt.failed()
            raise errors.BadCredentials("wrong username or password")
        if not user.active:
            raise errors.AccountDisabled("this account is disabled: ask an administrator")
        if user.totp_secret is not None:
            await _second_factor(request, user, user.totp_secret, code, attempt)
        await attempt.succeeded()
    return await _new_session(request, user)


async def _second_factor(request: web.Request, user: User, secret: str, code: str, attempt: Attempt) -> None:
    if not code:
        raise errors.TotpRequired("enter the 6-digit code of your authenticator app")
    step = totp.accepted_step(secret, code, request.app[CLOCK](), user.totp_last_step)
    if step is not None:
        async with request.app[DB]() as db:  # guarded: two sign-ins racing with one code cannot both use it
            used = or_(User.totp_last_step.is_(None), User.totp_last_step < step)
            result = await db.execute(update(User).where(User.id == user.id, used).values(totp_last_step=step))
            await db.commit()
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return
    await attempt.failed()
    raise errors.TotpInvalid("the code is wrong, or was used already: wait for the next one")


async def _new_session(request: web.Request, user: User) -> web.Response:
    settings, now = request.app[SETTINGS], request.app[CLOCK]()
    secret = secrets.new_secret()
    async with request.app[DB]() as db:
        session = WebSession(
            user_id=user.id,
            secret_hash=secrets.hash_secret(secret),
            csrf_token=pysecrets.token_urlsafe(24),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=settings.session_hours),
            address=client_address(request),
            user_agent=request.headers.get("User-Agent", "")[:200] or None,
        )
        db.add(session)
        await db.commit()
    response = web.json_response(_me(request, user, session.csrf_token))
    response.set_cookie(
        COOKIE,
        str(secrets.Credential(secrets.SESSION, session.id, secret)),
        httponly=True,
        samesite="Strict",
        secure=settings.secure_cookies,
        path="/",
        max_age=int(settings.session_hours * 3600),
    )
    return response


@routes.post("/api/v1/auth/logout")
async def logout(request: web.Request) -> web.Response:
    """Ends this session, and closes every signaling socket it opened (close code 4003)."""
    who = await caller(request, allow_restricted=True)
    if who.session_id:
        async with request.app[DB]() as db:
            await accounts.revoke_session(db, who.session_id)
        request.app[ROOMS].end_sessions([who.session_id], "signed out")
        request.app[CHANGES].end("session", [who.session_id])
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response


@routes.get("/api/v1/auth/me")
async def me(request: web.Request) -> web.Response:
    who = await caller(request, allow_restricted=True)
    return web.json_response(_me(request, who.require_user(), who.csrf_token))


@routes.patch("/api/v1/auth/me")
async def update_me(request: web.Request) -> web.Response:
    """`{"language": "zh-CN"|"en"|null}` → `{"user", "csrf_token", "restriction"}`: the console's language the
    person chose, kept with their account so that every browser they sign in on starts in it (null: follow the
    browser). Audited as a change to the user (audit/coverage.py)."""
    who = await caller(request, allow_restricted=True)
    user = who.require_user()
    data = await body.json_body(request)
    if set(data) - {"language"}:
        raise errors.InvalidRequest("only 'language' may be changed here")
    language = None if data.get("language") is None else body.choice(data, "language", LANGUAGES)
    audit_note(request, object_id=user.id, language=language)
    async with request.app[DB]() as db:
        stored = await accounts.get_user(db, user.id)
        stored.language = language
        await db.commit()
    return web.json_response(_me(request, stored, who.csrf_token))


async def _check_own_password(request: web.Request, user: User, password: str) -> None:
    """The signed-in person's password again (throttled like a sign-in): before changing credentials."""
    app = request.app
    async with app[THROTTLE].attempt(user.username, client_address(request)) as attempt:
        if not await app[HASHING].run(verify_password, user.password_hash, password):
            await attempt.failed()
            raise errors.BadCredentials("the password is wrong")
        await attempt.succeeded()


@routes.post("/api/v1/auth/password")
async def change_password(request: web.Request) -> web.Response:
    """`{"current_password", "new_password"}` → `{"user", "csrf_token", "restriction"}`; the person's other
    sessions end (and their sockets close). Allowed, and needed, while a password change is required."""
    who = await caller(request, allow_restricted=True)
    user = who.require_session()
    data = await body.json_body(request)
    current = body.text(data, "current_password", max_len=accounts.MAX_PASSWORD)
    new = body.text(data, "new_password", max_len=accounts.MAX_PASSWORD)
    if new == current:
        raise errors.InvalidRequest("the new password must differ from the current one")
    accounts.check_new_password(new)
    await _check_own_password(request, user, current)
    app = request.app

    async def hasher(password: str) -> str:
        return await app[HASHING].run(hash_password, password)

    async with app[DB]() as db:
        ended = await accounts.change_password(db, user.id, new, hasher, app[CLOCK](), keep_session=who.session_id)
        user = await accounts.get_user(db, user.id)
    app[ROOMS].end_sessions(ended, "password changed")
    app[CHANGES].end("session", ended)
    return web.json_response(_me(request, user, who.csrf_token))


def _own_totp_caller(who: Caller) -> User:
    user = who.require_session()
    if who.restriction == PASSWORD_CHANGE:
        raise errors.PasswordChangeRequired("set a new password first (POST /api/v1/auth/password)")
    return user


@routes.post("/api/v1/auth/totp")
async def begin_totp(request: web.Request) -> web.Response:
    """`{"password"}` → `{"secret", "uri", "qr_svg"}`: a new secret, pending until a code of it is confirmed."""
    user = _own_totp_caller(await caller(request, allow_restricted=True))
    data = await body.json_body(request)
    await _check_own_password(request, user, body.text(data, "password", max_len=accounts.MAX_PASSWORD))
    enrolment = totp.new_enrolment(user.username)
    async with request.app[DB]() as db:
        stored = await accounts.get_user(db, user.id)
        stored.totp_pending_secret = enrolment.secret
        await db.commit()
    return web.json_response({"secret": enrolment.secret, "uri": enrolment.uri, "qr_svg": enrolment.qr_svg})


@routes.post("/api/v1/auth/totp/confirm")
async def confirm_totp(request: web.Request) -> web.Response:
    """`{"code"}`: the first code from the app makes the pending secret the account's second factor."""
    who = await caller(request, allow_restricted=True)
    user = _own_totp_caller(who)
    code = body.text(await body.json_body(request), "code", max_len=16)
    app = request.app
    async with app[THROTTLE].attempt(user.username, client_address(request)) as attempt:
        async with app[DB]() as db:
            stored = await accounts.get_user(db, user.id)
            pending = stored.totp_pending_secret
            if pending is None:
                raise errors.InvalidRequest("start the enrolment first (POST /api/v1/auth/totp)")
            step = totp.accepted_step(pending, code, app[CLOCK](), None)
            if step is None:
                await attempt.failed()
                raise errors.TotpInvalid("the code does not match: check the phone's clock and try the next one")
            stored.totp_secret, stored.totp_pending_secret, stored.totp_last_step = pending, None, step
            await db.commit()
        await attempt.succeeded()
    return web.json_response(_me(request, stored, who.csrf_token))


@routes.post("/api/v1/auth/totp/remove")
async def remove_totp(request: web.Request) -> web.Response:
    """`{"password"}`: forget the account's second factor."""
    who = await caller(request, allow_restricted=True)
    user = _own_totp_caller(who)
    await _check_own_password(request, user, body.text(await body.json_body(request), "password", max_len=256))
    async with request.app[DB]() as db:
        user = await accounts.remove_totp(db, user.id)
    return web.json_response(_me(request, user, who.csrf_token))
