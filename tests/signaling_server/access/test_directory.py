"""The people lookup a grant's maker uses (`GET /api/v1/users/lookup`, access/directory.py) through the real app on
SQLite and PostgreSQL: registrars and admins only, 2 characters at least, at most 20 answers, only the fields a
grantee is chosen by, and every lookup in the audit trail with the words typed."""

from __future__ import annotations

from urllib.parse import quote

from signaling_server.access import directory
from signaling_server.appkeys import DB
from signaling_server.db.models import User

from .conftest import District

LOOKUP = "/api/v1/users/lookup?q="


async def test_registrars_and_admins_look_people_up_by_name_and_nobody_else(district: District) -> None:
    world = district.world
    for who in ("registrar", "admin"):
        status, found = await (await district.api(who)).get(LOOKUP + "EXPERT")  # case does not matter
        assert status == 200 and not found["truncated"]
        assert [(u["username"], u["role"]) for u in found["users"]] == [("expert", "expert"), ("expert2", "expert")]
        first = found["users"][0]
        assert first == {
            "id": world.users["expert"], "username": "expert", "name": "Expert", "role": "expert", "site_id": None,
            "serves": sorted([world.site_a, world.site_b]),
        }  # fmt: skip: nothing of the account (active, second factor, password state)
    registrar = await district.api("registrar")
    _, by_name = await registrar.get(LOOKUP + quote(" sono "))  # display names too, trimmed
    assert {u["username"] for u in by_name["users"]} == {"sono_a", "sono_a2", "sono_b"}
    assert {u["site_id"] for u in by_name["users"]} == {world.site_a, world.site_b}
    _, wild = await registrar.get(LOOKUP + quote("%_"))  # LIKE's wildcards are text, not patterns
    assert wild["users"] == []

    for who in ("expert", "sono_a", "trainer"):
        status, error = await (await district.api(who)).get(LOOKUP + "expert")
        assert (status, error["error"]) == (403, "forbidden"), who
    device = await district.api(bearer=world.device_a_credential)
    assert (await device.get(LOOKUP + "expert"))[0] == 403
    assert (await (await district.api()).get(LOOKUP + "expert"))[0] == 401
    for short in ("", "e", "%20e%20", "x" * 65):
        status, error = await registrar.get(LOOKUP + short)
        assert (status, error["error"]) == (400, "invalid_request"), short


async def test_a_lookup_is_capped_skips_disabled_accounts_and_is_audited(district: District) -> None:
    async with district.app[DB]() as db:
        for n in range(directory.LIMIT + 5):
            db.add(User(username=f"reader_{n:02d}", name=f"Reader {n}", role="expert", password_hash="x"))
        db.add(User(username="reader_gone", name="Reader Gone", role="expert", password_hash="x", active=False))
        await db.commit()
    registrar = await district.api("registrar")
    status, found = await registrar.get(LOOKUP + "reader")
    assert status == 200 and found["truncated"]
    assert [u["username"] for u in found["users"]] == [f"reader_{n:02d}" for n in range(directory.LIMIT)]
    _, gone = await registrar.get(LOOKUP + "gone")
    assert gone == {"users": [], "truncated": False}
    await (await district.api("expert")).get(LOOKUP + "reader")  # refused, and audited as such

    _, trail = await (await district.api("admin")).get("/api/v1/audit?kind=user&action=search")
    rows = [(e["actor_name"], e["detail"].get("query"), e["status"], e["outcome"]) for e in trail["events"]]
    assert rows == [
        ("expert", {"q": "reader"}, 403, "forbidden"),
        ("registrar", {"q": "gone"}, 200, "ok"),
        ("registrar", {"q": "reader"}, 200, "ok"),
    ]
