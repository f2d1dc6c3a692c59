"""Login, cookie sessions with CSRF, bearer tokens, device credentials: what is accepted and what is refused."""

from __future__ import annotations

import io
from typing import Any

from yarl import URL

from tests.conftest import PASSWORD


async def test_login_sets_httponly_strict_cookie_and_me_answers(people: Any) -> None:
    client, world, open_api = people
    api = await open_api()
    async with api.session.post(
        api.base + "/api/v1/auth/login", json={"username": "expert", "password": PASSWORD}
    ) as r:
        assert r.status == 200
        cookie = r.headers["Set-Cookie"]
        data = await r.json()
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert data["user"]["role"] == "expert" and data["csrf_token"]
    status, me = await api.get("/api/v1/auth/me")
    assert status == 200 and me["user"]["username"] == "expert"


async def test_wrong_password_and_unknown_user_get_bad_credentials(people: Any) -> None:
    _, _, open_api = people
    api = await open_api()
    for username, password in [("expert", "wrong password!"), ("nobody", PASSWORD)]:
        status, data = await api.post("/api/v1/auth/login", {"username": username, "password": password})
        assert (status, data["error"]) == (401, "bad_credentials")
        assert data["message"] == "wrong username or password"
    status, data = await api.get("/api/v1/auth/me")
    assert (status, data["error"]) == (401, "unauthenticated")


async def test_cookie_post_without_csrf_token_is_refused(people: Any) -> None:
    _, _, open_api = people
    api = await open_api("sono_a")
    from tests.conftest import THYROID_REQUEST

    status, data = await api.post("/api/v1/consultations", THYROID_REQUEST, csrf=False)
    assert (status, data["error"]) == (403, "csrf_failed")
    status, data = await api.get("/api/v1/consultations")
    assert status == 200 and data["consultations"] == []  # nothing was created


async def test_logout_revokes_the_session(people: Any) -> None:
    _, _, open_api = people
    api = await open_api("expert")
    cookie = api.session.cookie_jar.filter_cookies(URL(api.base))["teleus_session"].value
    status, _ = await api.post("/api/v1/auth/logout")
    assert status == 204
    replay = await open_api()
    replay.session.cookie_jar.update_cookies({"teleus_session": cookie})
    status, data = await replay.get("/api/v1/auth/me")
    assert (status, data["error"]) == (401, "unauthenticated")


async def test_api_token_works_without_csrf_and_bad_tokens_are_refused(people: Any) -> None:
    _, _, open_api = people
    api = await open_api("admin")
    status, data = await api.post("/api/v1/auth/tokens", {"label": "backup script", "scope": "write"})
    assert status == 201 and data["token"].startswith("tok_")
    script = await open_api(bearer=data["token"])
    status, data = await script.post("/api/v1/sites", {"code": "hill", "name": "Hill CHC"}, csrf=False)
    assert status == 201 and data["code"] == "hill"
    for bad in ["tok_nope_nope", "garbage", data["id"]]:
        forged = await open_api(bearer=bad)
        status, err = await forged.get("/api/v1/sites")
        assert (status, err["error"]) == (401, "unauthenticated")


async def test_revoked_and_rotated_device_credentials_are_refused(people: Any) -> None:
    _, world, open_api = people
    device = await open_api(bearer=world.device_a_credential)
    status, data = await device.get("/api/v1/devices/me")
    assert status == 200 and data["device"]["id"] == world.device_a and data["site"]["code"] == "north"
    admin = await open_api("admin")
    status, rotated = await admin.post(f"/api/v1/devices/{world.device_a}/rotate")
    assert status == 200
    status, err = await device.get("/api/v1/devices/me")
    assert (status, err["error"]) == (401, "device_revoked")
    fresh = await open_api(bearer=rotated["credential"])
    assert (await fresh.get("/api/v1/devices/me"))[0] == 200
    status, _ = await admin.post(f"/api/v1/devices/{world.device_a}/revoke")
    assert status == 200
    status, err = await fresh.get("/api/v1/devices/me/consultations")
    assert (status, err["error"]) == (401, "device_revoked")


async def test_roles_are_enforced_on_administration(people: Any) -> None:
    _, world, open_api = people
    expert = await open_api("expert")
    status, err = await expert.post(
        "/api/v1/users", {"username": "x", "name": "X", "role": "admin", "password": "p" * 9}
    )
    assert (status, err["error"]) == (403, "forbidden")
    admin = await open_api("admin")
    status, err = await admin.post(
        "/api/v1/users", {"username": "new_sono", "name": "New", "role": "sonographer", "password": "p" * 9}
    )
    assert (status, err["error"]) == (400, "invalid_request") and "site" in err["message"]
    status, err = await admin.post(
        "/api/v1/users", {"username": "expert", "name": "Dup", "role": "expert", "password": "p" * 9}
    )
    assert (status, err["error"]) == (409, "conflict")
    status, created = await admin.post(
        "/api/v1/users",
        {"username": "new_sono", "name": "New", "role": "sonographer", "password": "p" * 9, "site_id": world.site_b},
    )
    assert status == 201 and created["site_id"] == world.site_b
    newcomer = await open_api()
    await newcomer.login("new_sono", "p" * 9)


async def test_malformed_bodies_get_invalid_request(people: Any) -> None:
    _, _, open_api = people
    api = await open_api()
    json_type = {"Content-Type": "application/json"}
    async with api.session.post(api.base + "/api/v1/auth/login", data=b"{not json", headers=json_type) as r:
        assert r.status == 400 and (await r.json())["error"] == "invalid_request"
    async with api.session.post(api.base + "/api/v1/auth/login", json=["a"]) as r:
        assert r.status == 400 and (await r.json())["error"] == "invalid_request"
    big = io.BytesIO(b"x" * (2 << 20))
    async with api.session.post(api.base + "/api/v1/auth/login", data=big, headers=json_type) as r:
        assert r.status == 413 and (await r.json())["error"] == "too_large"
