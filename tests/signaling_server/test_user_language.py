"""The console's language kept with each person's account: set on their own account, returned with who they are,
validated, and audited like the other account changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import AuditEvent
from tests.signaling_server.accounts_world import accounts_world, patch


async def test_a_person_keeps_their_language_across_sign_ins_and_the_change_is_audited(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path) as w:
        sono = await w.api("sono_a")
        status, me = await sono.get("/api/v1/auth/me")
        assert status == 200 and me["user"]["language"] is None  # not chosen yet: the browser decides
        status, me = await patch(sono, "/api/v1/auth/me", {"language": "en"})
        assert status == 200 and me["user"]["language"] == "en" and me["csrf_token"]
        status, me = await patch(sono, "/api/v1/auth/me", {"language": "zh-CN"})
        assert status == 200 and me["user"]["language"] == "zh-CN"
        again = await w.api("sono_a")  # another browser
        status, me = await again.get("/api/v1/auth/me")
        assert me["user"]["language"] == "zh-CN"
        other = await w.api("expert")
        assert (await other.get("/api/v1/auth/me"))[1]["user"]["language"] is None  # one person's choice only
        status, me = await patch(sono, "/api/v1/auth/me", {"language": None})
        assert status == 200 and me["user"]["language"] is None

        async with w.app[DB]() as db:
            rows = list(
                await db.scalars(
                    select(AuditEvent).where(AuditEvent.route == "/api/v1/auth/me", AuditEvent.method == "PATCH")
                )
            )
        assert [(r.action, r.object_kind, r.object_id, r.detail.get("language")) for r in rows] == [
            ("write", "user", w.user_id("sono_a"), "en"),
            ("write", "user", w.user_id("sono_a"), "zh-CN"),
            ("write", "user", w.user_id("sono_a"), None),
        ]


async def test_an_unknown_language_or_another_field_is_refused(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path) as w:
        sono = await w.api("sono_a")
        for wrong in ({"language": "fr"}, {"language": 7}, {"role": "admin"}, {"language": "en", "name": "x"}):
            status, err = await patch(sono, "/api/v1/auth/me", wrong)
            assert (status, err["error"]) == (400, "invalid_request"), wrong
        assert (await sono.get("/api/v1/auth/me"))[1]["user"]["role"] == "sonographer"
        assert (await sono.get("/api/v1/auth/me"))[1]["user"]["language"] is None
        anonymous = await w.api()
        status, err = await patch(anonymous, "/api/v1/auth/me", {"language": "en"})
        assert (status, err["error"]) == (401, "unauthenticated")
