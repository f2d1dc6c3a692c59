"""Sessions and API tokens: a person lists and ends their own; an admin lists and ends anyone's.

A token has a scope ("read": GET only; "write": whatever its user may do) and always an expiry. Its secret is
shown once, when it is made; lists show label, scope, created, last used and expiry.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from signaling_server import errors
from signaling_server.api import body
from signaling_server.api.representations import session_json, token_json
from signaling_server.appkeys import CLOCK, DB, SETTINGS
from signaling_server.auth import accounts, secrets
from signaling_server.auth.identity import READ, SCOPES, caller
from signaling_server.db.models import ApiToken, User, WebSession
from signaling_server.events.hub import CHANGES
from signaling_server.signaling.rooms import ROOMS

routes = web.RouteTableDef()

MAX_TOKEN_DAYS = 366


@routes.get("/api/v1/auth/tokens")
async def my_tokens(request: web.Request) -> web.Response:
    user = (await caller(request)).require_user()
    async with request.app[DB]() as db:
        tokens = await accounts.tokens_of(db, user.id)
    now = request.app[CLOCK]()
    return web.json_response({"tokens": [token_json(t, now) for t in tokens]})


@routes.post("/api/v1/auth/tokens")
async def create_token(request: web.Request) -> web.Response:
    """`{"label", "scope"?: "read"|"write" (default read), "days"?}` → 201 `{"token", "api_token"}`."""
    user = (await caller(request)).require_session()
    data = await body.json_body(request)
    label = body.text(data, "label", max_len=200, required=False, default="script")
    scope = body.choice(data, "scope", SCOPES, required=False) or READ
    days = data.get("days", request.app[SETTINGS].token_days)
    if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= MAX_TOKEN_DAYS:
        raise errors.InvalidRequest(f"'days' must be a number of days from 1 to {MAX_TOKEN_DAYS}")
    now = request.app[CLOCK]()
    secret = secrets.new_secret()
    async with request.app[DB]() as db:
        token = ApiToken(
            user_id=user.id,
            label=label,
            scope=scope,
            secret_hash=secrets.hash_secret(secret),
            created_at=now,
            expires_at=now + timedelta(days=float(days)),
        )
        db.add(token)
        await db.commit()
    credential = str(secrets.Credential(secrets.TOKEN, token.id, secret))
    return web.json_response({"token": credential, "api_token": token_json(token, now)}, status=201)


@routes.post("/api/v1/tokens/{id}/revoke")
async def revoke_token(request: web.Request) -> web.Response:
    """The token's owner or an admin; its sockets close at once."""
    who = (await caller(request)).require_user()
    async with request.app[DB]() as db:
        token = await db.get(ApiToken, request.match_info["id"])
        if token is None or (token.user_id != who.id and who.role != "admin"):
            raise errors.NotFound("no such token")
        token = await accounts.revoke_token(db, token.id)
    request.app[ROOMS].end_token(token.id, "token revoked")
    request.app[CHANGES].end("token", [token.id])
    return web.json_response(token_json(token, request.app[CLOCK]()))


@routes.get("/api/v1/auth/sessions")
async def my_sessions(request: web.Request) -> web.Response:
    who = await caller(request)
    user = who.require_user()
    async with request.app[DB]() as db:
        sessions = await accounts.live_sessions(db, user.id, request.app[CLOCK]())
    return web.json_response({"sessions": [session_json(s, who.session_id) for s in sessions]})


@routes.post("/api/v1/sessions/{id}/revoke")
async def revoke_session(request: web.Request) -> web.Response:
    """The session's owner or an admin; the session's sockets close at once."""
    who = await caller(request)
    user = who.require_user()
    async with request.app[DB]() as db:
        session = await db.get(WebSession, request.match_info["id"])
        if session is None or (session.user_id != user.id and user.role != "admin"):
            raise errors.NotFound("no such session")
        session = await accounts.revoke_session(db, session.id)
    request.app[ROOMS].end_sessions([session.id], "session revoked")
    request.app[CHANGES].end("session", [session.id])
    return web.json_response(session_json(session, who.session_id))


@routes.get("/api/v1/users/{id}/tokens")
async def user_tokens(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    async with request.app[DB]() as db:
        user = await accounts.get_user(db, request.match_info["id"])
        tokens = await accounts.tokens_of(db, user.id)
    now = request.app[CLOCK]()
    return web.json_response({"tokens": [token_json(t, now) for t in tokens]})


@routes.get("/api/v1/users/{id}/sessions")
async def user_sessions(request: web.Request) -> web.Response:
    who = await caller(request)
    who.require_user("admin")
    async with request.app[DB]() as db:
        user: User = await accounts.get_user(db, request.match_info["id"])
        sessions = await accounts.live_sessions(db, user.id, request.app[CLOCK]())
    return web.json_response({"sessions": [session_json(s, who.session_id) for s in sessions]})
