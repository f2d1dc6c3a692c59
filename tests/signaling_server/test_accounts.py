"""The life of an account on the two-site world: disabling, password resets and changes, role and site changes,
sessions and tokens ended by their owner or an admin, and what each does to the person's open WebSockets."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from signaling_server.appkeys import DB
from signaling_server.auth import accounts
from signaling_server.signaling.rooms import CLOSE_CREDENTIALS_ENDED, CLOSE_GOING_AWAY
from tests.conftest import PASSWORD, THYROID_REQUEST
from tests.signaling_server.accounts_world import accounts_world, close_code, join, live_room, patch, recv_type


async def _token(api: Any, scope: str = "write", **extra: Any) -> str:
    status, data = await api.post("/api/v1/auth/tokens", {"label": "script", "scope": scope, **extra})
    assert status == 201, data
    return str(data["token"])


async def test_disabling_a_user_refuses_their_cookie_and_tokens_and_closes_their_socket_at_once(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path) as w:
        cid, sono, sono_ws, _, expert_ws = await live_room(w)
        script = await w.api(bearer=await _token(sono))
        admin = await w.api("admin")
        status, user = await admin.post(f"/api/v1/users/{w.user_id('sono_a')}/disable")
        assert status == 200 and user["active"] is False
        assert await close_code(sono_ws) == CLOSE_CREDENTIALS_ENDED
        assert (await recv_type(expert_ws, "peer-left"))["type"] == "peer-left"
        status, err = await sono.get("/api/v1/auth/me")
        assert (status, err["error"]) == (401, "unauthenticated")  # the session was ended
        status, err = await script.get("/api/v1/consultations")
        assert (status, err["error"]) == (401, "account_disabled")
        again = await w.api()
        status, err = await again.post("/api/v1/auth/login", {"username": "sono_a", "password": PASSWORD})
        assert (status, err["error"]) == (401, "account_disabled")

        status, user = await admin.post(f"/api/v1/users/{w.user_id('sono_a')}/enable")
        assert status == 200 and user["active"] is True
        assert (await script.get("/api/v1/consultations"))[0] == 200  # a token comes back; the session does not
        assert (await sono.get("/api/v1/auth/me"))[0] == 401
        await again.login("sono_a")
        assert (await again.get(f"/api/v1/consultations/{cid}"))[0] == 200


async def test_logout_closes_that_sessions_socket_and_a_chat_sent_on_it_is_not_broadcast(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path) as w:
        cid, sono, sono_ws, expert, expert_ws = await live_room(w)
        other_tab = await w.api("sono_a")  # another session of the same person keeps its socket
        other_ws = await join(other_tab, cid)
        status, _ = await sono.post("/api/v1/auth/logout")
        assert status == 204
        assert await close_code(sono_ws) == CLOSE_CREDENTIALS_ENDED
        with contextlib.suppress(ConnectionError, RuntimeError):
            await sono_ws.send_json({"type": "chat", "text": "sent after logout"})
        await expert_ws.send_json({"type": "chat", "text": "the expert's line"})
        line = await recv_type(expert_ws, "chat")
        assert line["text"] == "the expert's line"  # the first chat the room saw
        await other_ws.send_json({"type": "chat", "text": "from the other tab"})
        assert (await recv_type(expert_ws, "chat"))["text"] == "from the other tab"
        status, history = await expert.get(f"/api/v1/consultations/{cid}/chat")
        assert status == 200
        assert [m["text"] for m in history["messages"]] == ["the expert's line", "from the other tab"]


async def test_a_password_reset_ends_everything_and_forces_a_change_at_the_next_sign_in(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path) as w:
        cid, sono, sono_ws, _, _ = await live_room(w)
        script = await w.api(bearer=await _token(sono))
        admin = await w.api("admin")
        status, reset = await admin.post(f"/api/v1/users/{w.user_id('sono_a')}/reset-password", {})
        assert status == 200 and reset["user"]["must_change_password"] is True
        temporary = reset["password"]
        assert isinstance(temporary, str) and len(temporary) >= 12
        assert await close_code(sono_ws) == CLOSE_CREDENTIALS_ENDED
        assert (await sono.get("/api/v1/auth/me"))[0] == 401
        status, err = await script.get("/api/v1/consultations")
        assert (status, err["error"]) == (401, "unauthenticated")  # revoked, for good

        fresh = await w.api()
        status, err = await fresh.post("/api/v1/auth/login", {"username": "sono_a", "password": PASSWORD})
        assert (status, err["error"]) == (401, "bad_credentials")
        signed_in = await fresh.login("sono_a", temporary)
        assert signed_in["restriction"] == "password_change_required"
        status, err = await fresh.get("/api/v1/consultations")
        assert (status, err["error"]) == (403, "password_change_required")
        status, err = await fresh.post("/api/v1/consultations", THYROID_REQUEST)
        assert (status, err["error"]) == (403, "password_change_required")
        async with fresh.session.get(fresh.base + f"/api/v1/consultations/{cid}/signal") as r:
            assert r.status == 403 and (await r.json())["error"] == "password_change_required"
        status, me = await fresh.get("/api/v1/auth/me")
        assert status == 200 and me["restriction"] == "password_change_required"

        second = await w.api("sono_a", password=temporary)  # a second session, ended by the change below
        change = {"current_password": "not it at all", "new_password": "a brand new secret"}
        status, err = await fresh.post("/api/v1/auth/password", change)
        assert (status, err["error"]) == (401, "bad_credentials")
        status, err = await fresh.post(
            "/api/v1/auth/password", {"current_password": temporary, "new_password": "short"}
        )
        assert (status, err["error"]) == (400, "invalid_request")
        change["current_password"] = temporary
        status, changed = await fresh.post("/api/v1/auth/password", change)
        assert status == 200 and changed["restriction"] is None and changed["user"]["must_change_password"] is False
        assert (await fresh.get("/api/v1/consultations"))[0] == 200
        assert (await second.get("/api/v1/auth/me"))[0] == 401
        later = await w.api("sono_a", password="a brand new secret")
        assert (await later.get("/api/v1/auth/me"))[1]["restriction"] is None


async def test_accounts_made_by_an_admin_change_their_password_at_first_sign_in(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path) as w:
        admin = await w.api("admin")
        status, made = await admin.post(
            "/api/v1/users", {"username": "newcomer", "name": "New", "role": "expert", "password": "first password"}
        )
        assert status == 201 and made["must_change_password"] is True
        newcomer = await w.api("newcomer", password="first password")
        assert (await newcomer.get("/api/v1/studies"))[1]["error"] == "password_change_required"


async def test_role_and_site_changes_apply_at_once_and_the_last_admin_stays(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path) as w:
        _, sono, sono_ws, _, _ = await live_room(w)
        admin = await w.api("admin")
        sono_id = w.user_id("sono_a")
        status, err = await sono.post(f"/api/v1/users/{sono_id}/disable")
        assert (status, err["error"]) == (403, "forbidden")
        status, err = await patch(admin, f"/api/v1/users/{sono_id}", {"site_id": None})
        assert (status, err["error"]) == (400, "invalid_request") and "site" in err["message"]
        status, user = await patch(admin, f"/api/v1/users/{sono_id}", {"site_id": w.world.site_b})
        assert status == 200 and user["site_id"] == w.world.site_b and user["role"] == "sonographer"
        assert await close_code(sono_ws) == CLOSE_GOING_AWAY  # the page joins again, as what it now is
        status, data = await sono.get("/api/v1/consultations")
        assert status == 200 and data["consultations"] == []  # north's consultation is no longer theirs
        status, user = await patch(
            admin, f"/api/v1/users/{sono_id}", {"role": "expert", "site_id": None, "name": "Dr A"}
        )
        assert status == 200 and (user["role"], user["site_id"], user["name"]) == ("expert", None, "Dr A")

        admin_id = w.user_id("admin")
        for call in (patch(admin, f"/api/v1/users/{admin_id}", {"role": "expert"}),
                     admin.post(f"/api/v1/users/{admin_id}/disable")):  # fmt: skip
            status, err = await call
            assert (status, err["error"]) == (409, "last_admin")
        status, user = await patch(admin, f"/api/v1/users/{w.user_id('expert')}", {"role": "admin"})
        assert status == 200
        status, user = await admin.post(f"/api/v1/users/{admin_id}/disable")  # another admin exists now
        assert status == 200 and user["active"] is False


async def test_session_expiry_ends_the_socket_on_its_next_message(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path) as w:
        cid, sono, sono_ws, expert, expert_ws = await live_room(w)
        w.clock.advance(hours=12, seconds=1)  # the default session lasts 12 h (both sessions are over)
        await sono_ws.send_json({"type": "chat", "text": "after expiry"})
        assert await close_code(sono_ws) == CLOSE_CREDENTIALS_ENDED
        assert (await sono.get("/api/v1/auth/me"))[0] == 401
        fresh = await w.api("expert")
        status, history = await fresh.get(f"/api/v1/consultations/{cid}/chat")
        assert status == 200 and history["messages"] == []


async def test_the_credential_watch_closes_sockets_of_changes_made_elsewhere(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    """A `teleus user disable` is another process: the server's watch finds it (every 50 ms here)."""
    async with accounts_world(aiohttp_client, db_url, tmp_path, credential_check_seconds=0.05) as w:
        _, _, sono_ws, _, expert_ws = await live_room(w)
        async with w.app[DB]() as db:
            await accounts.disable_user(db, w.user_id("sono_a"))
        assert await close_code(sono_ws) == CLOSE_CREDENTIALS_ENDED
        w.clock.advance(hours=12, seconds=1)  # and a session that simply runs out, with no message sent
        assert await close_code(expert_ws) == CLOSE_CREDENTIALS_ENDED


async def test_owners_and_admins_list_and_end_sessions_and_tokens(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path) as w:
        cid, sono, sono_ws, expert, _ = await live_room(w)
        token = await _token(sono, label="nightly export")
        script = await w.api(bearer=token)
        assert (await script.get("/api/v1/consultations"))[0] == 200
        admin = await w.api("admin")
        status, listed = await admin.get(f"/api/v1/users/{w.user_id('sono_a')}/tokens")
        assert status == 200 and [t["label"] for t in listed["tokens"]] == ["nightly export"]
        shown = listed["tokens"][0]
        assert set(shown) == {"id", "label", "scope", "created_at", "last_used_at", "expires_at", "expired", "revoked"}
        assert shown["last_used_at"] is not None and token.split("_", 2)[2] not in str(listed)
        status, err = await expert.post(f"/api/v1/tokens/{shown['id']}/revoke")
        assert (status, err["error"]) == (404, "not_found")  # someone else's token is not there for an expert
        status, _ = await admin.post(f"/api/v1/tokens/{shown['id']}/revoke")
        assert status == 200
        assert (await script.get("/api/v1/consultations"))[0] == 401
        assert (await sono.get("/api/v1/auth/tokens"))[1]["tokens"] == []

        status, mine = await sono.get("/api/v1/auth/sessions")
        assert status == 200 and [s["current"] for s in mine["sessions"]] == [True]
        status, theirs = await admin.get(f"/api/v1/users/{w.user_id('sono_a')}/sessions")
        assert status == 200 and [s["id"] for s in theirs["sessions"]] == [mine["sessions"][0]["id"]]
        assert theirs["sessions"][0]["address"] == "127.0.0.1"
        status, _ = await admin.post(f"/api/v1/sessions/{mine['sessions'][0]['id']}/revoke")
        assert status == 200
        assert await close_code(sono_ws) == CLOSE_CREDENTIALS_ENDED
        assert (await sono.get("/api/v1/auth/me"))[0] == 401
        assert (await expert.get(f"/api/v1/consultations/{cid}"))[0] == 200


async def test_an_admin_removes_a_lost_second_factor(aiohttp_client: Any, db_url: str, tmp_path: Path) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path) as w:
        async with w.app[DB]() as db:
            user = await accounts.get_user(db, w.user_id("expert"))
            user.totp_secret = "JBSWY3DPEHPK3PXP"
            await db.commit()
        anyone = await w.api()
        status, err = await anyone.post("/api/v1/auth/login", {"username": "expert", "password": PASSWORD})
        assert (status, err["error"]) == (401, "totp_required")
        admin = await w.api("admin")
        status, user = await admin.post(f"/api/v1/users/{w.user_id('expert')}/totp/remove")
        assert status == 200 and user["totp"] is False
        await anyone.login("expert")
