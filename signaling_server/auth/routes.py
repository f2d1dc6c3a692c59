"""Login, logout, who-am-I, and API tokens for scripts."""

from __future__ import annotations

import asyncio
import secrets as pysecrets
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy import select

from signaling_server import errors
from signaling_server.api import body
from signaling_server.api.representations import user_json
from signaling_server.appkeys import DB, SETTINGS
from signaling_server.auth import secrets
from signaling_server.auth.identity import COOKIE, caller
from signaling_server.auth.passwords import verify_password
from signaling_server.db.models import ApiToken, User, WebSession

routes = web.RouteTableDef()


@routes.post("/api/v1/auth/login")
async def login(request: web.Request) -> web.Response:
    data = await body.json_body(request)
    username = body.text(data, "username", max_len=64)
    password = body.text(data, "password", max_len=256)
    settings = request.app[SETTINGS]
    async with request.app[DB]() as db:
        user = (await db.scalars(select(User).where(User.username == username))).first()
        # Argon2 is deliberately slow and memory-hard: keep it off the event loop.
        ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, password)
        if user is None or not ok or not user.active:
            raise errors.BadCredentials("wrong username or password")
        secret = secrets.new_secret()
        session = WebSession(
            user_id=user.id,
            secret_hash=secrets.hash_secret(secret),
            csrf_token=pysecrets.token_urlsafe(24),
            expires_at=datetime.now(UTC) + timedelta(hours=settings.session_hours),
        )
        db.add(session)
        await db.commit()
    response = web.json_response({"user": user_json(user), "csrf_token": session.csrf_token})
    response.set_cookie(
        COOKIE,
        str(secrets.Credential(secrets.SESSION, session.id, secret)),
        httponly=True,
        samesite="Strict",
        secure=settings.cookie_secure,
        path="/",
        max_age=int(settings.session_hours * 3600),
    )
    return response


@routes.post("/api/v1/auth/logout")
async def logout(request: web.Request) -> web.Response:
    who = await caller(request)
    if who.session_id:
        async with request.app[DB]() as db:
            session = await db.get(WebSession, who.session_id)
            if session is not None:
                session.revoked = True
                await db.commit()
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response


@routes.get("/api/v1/auth/me")
async def me(request: web.Request) -> web.Response:
    who = await caller(request)
    user = who.require_user()
    return web.json_response({"user": user_json(user), "csrf_token": who.csrf_token})


@routes.post("/api/v1/auth/tokens")
async def create_token(request: web.Request) -> web.Response:
    user = (await caller(request)).require_user()
    data = await body.json_body(request)
    label = body.text(data, "label", max_len=200, required=False, default="script")
    secret = secrets.new_secret()
    async with request.app[DB]() as db:
        token = ApiToken(user_id=user.id, label=label, secret_hash=secrets.hash_secret(secret))
        db.add(token)
        await db.commit()
    return web.json_response({"token": str(secrets.Credential(secrets.TOKEN, token.id, secret))}, status=201)
