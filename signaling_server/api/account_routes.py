"""Administering people's accounts (admins): change role, site and name; disable and re-enable; reset the
password; remove the second factor. Ending an account's access closes its open signaling sockets at once."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from signaling_server import errors
from signaling_server.api import body
from signaling_server.api.representations import user_json
from signaling_server.appkeys import DB
from signaling_server.auth import accounts
from signaling_server.auth.hashing import HASHING
from signaling_server.auth.identity import ROLES, caller
from signaling_server.auth.passwords import hash_password
from signaling_server.events.hub import CHANGES
from signaling_server.signaling.rooms import CLOSE_GOING_AWAY, ROOMS

routes = web.RouteTableDef()


@routes.patch("/api/v1/users/{id}")
async def update_user(request: web.Request) -> web.Response:
    """`{"name"?, "role"?, "site_id"?: id|null}` → User. A changed role or site closes the person's sockets with
    4001: their pages join again under the new role."""
    (await caller(request)).require_user("admin")
    data = await body.json_body(request)
    site = "" if "site_id" not in data else ("-" if data["site_id"] is None else body.text(data, "site_id", max_len=32))
    async with request.app[DB]() as db:
        before = await accounts.get_user(db, request.match_info["id"])
        role_and_site = (before.role, before.site_id)
        user = await accounts.update_user(
            db,
            before.id,
            name=body.text(data, "name", required=False) or None,
            role=body.choice(data, "role", ROLES, required=False) or None,
            site_code_or_id=site,
        )
    if (user.role, user.site_id) != role_and_site:
        request.app[ROOMS].end_user(user.id, "role or site changed", CLOSE_GOING_AWAY)
        request.app[CHANGES].end("user", [user.id])  # their streams reopen with the new scope
    return web.json_response(user_json(user))


@routes.post("/api/v1/users/{id}/disable")
async def disable_user(request: web.Request) -> web.Response:
    """No more sign-ins; sessions end, tokens are refused, open sockets close (4003)."""
    (await caller(request)).require_user("admin")
    async with request.app[DB]() as db:
        user = await accounts.disable_user(db, request.match_info["id"])
    request.app[ROOMS].end_user(user.id, "account disabled")
    request.app[CHANGES].end("user", [user.id])
    return web.json_response(user_json(user))


@routes.post("/api/v1/users/{id}/enable")
async def enable_user(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    async with request.app[DB]() as db:
        user = await accounts.enable_user(db, request.match_info["id"])
    return web.json_response(user_json(user))


@routes.post("/api/v1/users/{id}/reset-password")
async def reset_password(request: web.Request) -> web.Response:
    """`{"password"?}` → `{"user", "password"}`: without a password the server makes one, shown this once. The
    person must change it at their next sign-in; their sessions end and their tokens are revoked."""
    (await caller(request)).require_user("admin")
    data = await body.json_body(request)
    given = body.text(data, "password", max_len=accounts.MAX_PASSWORD, required=False)
    password = given or accounts.temporary_password()
    app = request.app

    async def hasher(value: str) -> str:
        return await app[HASHING].run(hash_password, value)

    async with app[DB]() as db:
        user = await accounts.reset_password(db, request.match_info["id"], password, hasher)
    app[ROOMS].end_user(user.id, "password reset")
    app[CHANGES].end("user", [user.id])
    answer: dict[str, Any] = {"user": user_json(user), "password": None if given else password}
    return web.json_response(answer)


@routes.post("/api/v1/users/{id}/totp/remove")
async def remove_totp(request: web.Request) -> web.Response:
    """Forget a person's second factor (a lost phone): they sign in with the password and may enrol again."""
    (await caller(request)).require_user("admin")
    async with request.app[DB]() as db:
        user = await accounts.remove_totp(db, request.match_info["id"])
    return web.json_response(user_json(user))


def must_change(data: dict[str, Any]) -> bool:
    """`must_change_password` of a new account: true unless said otherwise (an admin chose the password)."""
    value = data.get("must_change_password", True)
    if not isinstance(value, bool):
        raise errors.InvalidRequest("'must_change_password' must be true or false")
    return value
