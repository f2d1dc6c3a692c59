"""Signing in on the two-site world: throttling (429 + Retry-After, no Argon2 while throttled), the bounded hashing
pool, HTTPS defaults (Secure cookie, HSTS), login CSRF (JSON only, own origin only), the TOTP second factor, and
API tokens that expire and keep to their scope."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest

from signaling_server import errors
from signaling_server.auth.hashing import HASHING
from signaling_server.auth.throttle import THROTTLE, LoginThrottle, Policy
from signaling_server.settings import Settings
from tests.conftest import PASSWORD, THYROID_REQUEST, Api, seed
from tests.servers import two_apps
from tests.signaling_server.accounts_world import Accounts, UtcClock, accounts_world
from tests.waiting import eventually

LOGIN = "/api/v1/auth/login"


async def _login(api: Any, username: str, password: str, **extra: Any) -> tuple[int, Any, dict[str, str]]:
    async with api.session.post(api.base + LOGIN, json={"username": username, "password": password, **extra}) as r:
        return r.status, await r.json(), dict(r.headers)


async def test_failed_sign_ins_back_off_per_account_with_retry_after_and_no_hashing(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path) as w:
        pool = w.app[HASHING]
        api = await w.api()
        for _ in range(3):  # three mistakes are free
            status, err, _ = await _login(api, "admin", "wrong password")
            assert (status, err["error"]) == (401, "bad_credentials")
        status, err, headers = await _login(api, "admin", "wrong again")  # the 4th failure starts the backoff
        assert status == 401
        status, err, headers = await _login(api, "admin", PASSWORD)  # even the right password waits
        assert (status, err["error"], err["retry_after"], headers["Retry-After"]) == (429, "too_many_attempts", 1, "1")
        w.clock.advance(seconds=1)
        assert (await _login(api, "admin", "and again"))[0] == 401  # the 5th: 2 s
        hashed = pool.calls
        status, err, headers = await _login(api, "admin", PASSWORD)
        assert (status, headers["Retry-After"]) == (429, "2")
        assert pool.calls == hashed  # refused before any Argon2
        assert "teleus_session" not in headers.get("Set-Cookie", "")
        assert (await _login(api, "expert", PASSWORD))[0] == 200  # another account is not held up

        w.clock.advance(seconds=2)
        status, data, _ = await _login(api, "admin", PASSWORD)
        assert status == 200 and data["user"]["username"] == "admin"
        for _ in range(3):  # a success wipes the account's slate
            assert (await _login(api, "admin", "wrong password"))[0] == 401


async def test_thirty_parallel_guesses_check_at_most_four_passwords(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    """The finding: 30 parallel wrong passwords all got 401 (30 × 46 MiB of Argon2) and the right one was then
    accepted. Now one check runs at a time per account and the fourth failure blocks it."""
    async with accounts_world(aiohttp_client, db_url, tmp_path) as w:
        api = await w.api()
        answers = await asyncio.gather(*(_login(api, "admin", f"guess {i}") for i in range(30)))
        codes = [(status, err["error"]) for status, err, _ in answers]
        checked = codes.count((401, "bad_credentials"))
        assert 1 <= checked <= 4 and codes.count((429, "too_many_attempts")) == 30 - checked
        assert w.app[HASHING].calls == checked
        while (await _login(api, "admin", "one more guess"))[0] == 401:
            pass
        assert (await _login(api, "admin", PASSWORD))[0] == 429


async def test_failures_from_one_address_back_off_every_account_from_it(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path, trusted_proxies=("127.0.0.1",)) as w:
        w.app[THROTTLE].policy = Policy(address_free=4)
        api = await w.api()
        sprayer = {"X-Forwarded-For": "203.0.113.7"}
        for name in ("ann", "bob", "cai", "dan", "eve"):  # a spray of names, each tried once
            async with api.session.post(
                api.base + LOGIN, json={"username": name, "password": "x"}, headers=sprayer
            ) as r:
                assert r.status == 401
        async with api.session.post(
            api.base + LOGIN, json={"username": "expert", "password": PASSWORD}, headers=sprayer
        ) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "1"
        ward = {"X-Forwarded-For": "203.0.113.8"}  # another client behind the same proxy is not held up
        async with api.session.post(
            api.base + LOGIN, json={"username": "expert", "password": PASSWORD}, headers=ward
        ) as r:
            assert r.status == 200


async def _refusal(throttle: LoginThrottle, username: str) -> int:
    """The Retry-After an attempt gets now, 0 when it is let through (and then fails)."""
    try:
        async with throttle.attempt(username, "192.0.2.1") as attempt:
            await attempt.failed()
    except errors.TooManyAttempts as exc:
        return exc.retry_after
    return 0


async def test_the_throttle_doubles_the_wait_caps_it_and_forgets_after_a_quiet_hour() -> None:
    clock = UtcClock()
    throttle = LoginThrottle(clock, Policy(account_free=1, address_free=1000, max_delay=60.0))
    assert await _refusal(throttle, "Admin") == 0  # the free failure; names compare case-insensitively
    waits = []
    for _ in range(8):
        assert await _refusal(throttle, "admin") == 0  # let through once the wait is over, and failed
        waits.append(await _refusal(throttle, "admin"))
        clock.advance(seconds=waits[-1])
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    clock.advance(hours=1, seconds=1)
    assert [await _refusal(throttle, "admin") for _ in range(3)] == [0, 0, 1]  # one free failure again, then 1 s


async def test_the_hashing_pool_never_runs_more_than_its_workers(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path, hash_workers=1, hash_queue=1) as w:
        pool = w.app[HASHING]
        release = threading.Event()
        held = [asyncio.ensure_future(pool.run(release.wait)) for _ in range(2)]  # one running, one waiting
        await eventually(lambda: pool.running == 1, what="the pool's worker busy")
        api = await w.api()
        status, err, headers = await _login(api, "expert", PASSWORD)
        assert (status, err["error"], headers["Retry-After"]) == (503, "server_busy", "1")
        release.set()
        await asyncio.gather(*held)

        users = ["sono_a", "sono_a2", "sono_b", "expert", "expert2", "trainer", "admin"]
        apis = [await w.api() for _ in users]
        answers = await asyncio.gather(*(_login(a, u, PASSWORD) for a, u in zip(apis, users, strict=True)))
        assert {status for status, _, _ in answers} <= {200, 503}
        assert pool.peak_running == 1  # 7 parallel sign-ins, one Argon2 at a time (46 MiB)
        for (status, data, _), user in zip(answers, users, strict=True):
            if status == 503:
                assert data["error"] == "server_busy"
                assert (await _login(api, user, PASSWORD))[0] == 200


async def test_https_public_url_makes_the_cookie_secure_and_sends_hsts(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path, public_url="https://teleus.example.cn") as w:
        api = await w.api()
        status, _, headers = await _login(api, "expert", PASSWORD)
        assert status == 200
        assert "; Secure" in headers["Set-Cookie"] and "HttpOnly" in headers["Set-Cookie"]
        assert headers["Strict-Transport-Security"] == "max-age=31536000"
        async with api.session.get(api.base + "/api/v1/auth/me") as r:  # errors carry it too
            assert r.status == 401 and r.headers["Strict-Transport-Security"] == "max-age=31536000"


async def test_plain_http_keeps_the_cookie_usable_and_sends_no_hsts(people: Any) -> None:
    _, _, open_api = people
    status, _, headers = await _login(await open_api(), "expert", PASSWORD)
    assert status == 200 and "Secure" not in headers["Set-Cookie"]
    assert "Strict-Transport-Security" not in headers


def test_https_comes_from_the_public_url_or_the_servers_own_certificate() -> None:
    assert (
        Settings.from_env({"TELEUS_PUBLIC_URL": "https://teleus.example.cn/"}).public_url == "https://teleus.example.cn"
    )
    assert Settings.from_env({"TELEUS_PUBLIC_URL": "https://teleus.example.cn"}).secure_cookies
    assert not Settings.from_env({"TELEUS_PUBLIC_URL": "http://10.1.2.3:8600"}).https
    assert Settings(tls_cert="/etc/teleus/cert.pem").https
    with pytest.raises(ValueError, match="TELEUS_PUBLIC_URL"):
        Settings.from_env({"TELEUS_PUBLIC_URL": "teleus.example.cn"})


async def test_login_takes_json_from_its_own_origin_only(aiohttp_client: Any, db_url: str, tmp_path: Path) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path, public_url="https://teleus.example.cn") as w:
        api = await w.api()
        body = json.dumps({"username": "expert", "password": PASSWORD})
        refusals = [
            ({"Content-Type": "application/json", "Origin": "https://evil.example"}, 403, "bad_origin"),
            ({"Content-Type": "application/json", "Origin": "null"}, 403, "bad_origin"),
            ({"Content-Type": "text/plain"}, 415, "unsupported_media_type"),  # a cross-site form can send this
            ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        ]
        for headers, status, code in refusals:
            async with api.session.post(api.base + LOGIN, data=body, headers=headers) as r:
                assert (r.status, (await r.json())["error"]) == (status, code), headers
                assert "Set-Cookie" not in r.headers
        for origin in (api.base, "https://teleus.example.cn"):
            headers = {"Content-Type": "application/json", "Origin": origin}
            async with api.session.post(api.base + LOGIN, data=body, headers=headers) as r:
                assert r.status == 200, origin


async def _enrol(w: Accounts, api: Any, username: str) -> str:
    status, err = await api.post("/api/v1/auth/totp", {"password": "not the password"})
    assert (status, err["error"]) == (401, "bad_credentials")
    status, enrolment = await api.post("/api/v1/auth/totp", {"password": PASSWORD})
    assert status == 200 and enrolment["uri"].startswith(f"otpauth://totp/teleus:{username}?secret=")
    assert enrolment["qr_svg"].startswith("<svg")
    secret = str(enrolment["secret"])
    status, err = await api.post("/api/v1/auth/totp/confirm", {"code": "000000"})
    assert (status, err["error"]) == (401, "totp_invalid")
    status, me = await api.post("/api/v1/auth/totp/confirm", {"code": pyotp.TOTP(secret).at(w.clock())})
    assert status == 200 and me["user"]["totp"] is True
    return secret


async def test_totp_enrolment_then_sign_in_with_the_code(aiohttp_client: Any, db_url: str, tmp_path: Path) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path) as w:
        secret = await _enrol(w, await w.api("expert"), "expert")
        w.clock.advance(seconds=30)  # the enrolment used this step's code
        api = await w.api()
        status, err, headers = await _login(api, "expert", PASSWORD)
        assert (status, err["error"]) == (401, "totp_required") and "Set-Cookie" not in headers
        status, err, _ = await _login(api, "expert", "wrong password", totp=pyotp.TOTP(secret).at(w.clock()))
        assert (status, err["error"]) == (401, "bad_credentials")
        status, err, _ = await _login(api, "expert", PASSWORD, totp="123456")
        assert (status, err["error"]) == (401, "totp_invalid")
        code = pyotp.TOTP(secret).at(w.clock())
        status, data, _ = await _login(api, "expert", PASSWORD, totp=code)
        assert status == 200 and data["user"]["totp"] is True
        status, err, _ = await _login(await w.api(), "expert", PASSWORD, totp=code)  # the same code again
        assert (status, err["error"]) == (401, "totp_invalid")
        w.clock.advance(seconds=30)
        assert (await _login(api, "expert", PASSWORD, totp=pyotp.TOTP(secret).at(w.clock())))[0] == 200


async def test_admins_must_enrol_totp_when_the_setting_says_so(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path, admin_totp_required=True) as w:
        admin = await w.api("admin")
        status, me = await admin.get("/api/v1/auth/me")
        assert status == 200 and me["restriction"] == "totp_enrolment_required"
        status, err = await admin.get("/api/v1/users")
        assert (status, err["error"]) == (403, "totp_enrolment_required")
        status, err = await admin.post("/api/v1/sites", {"code": "hill", "name": "Hill"})
        assert (status, err["error"]) == (403, "totp_enrolment_required")
        expert = await w.api("expert")  # other roles are not asked
        assert (await expert.get("/api/v1/auth/me"))[1]["restriction"] is None
        await _enrol(w, admin, "admin")
        assert (await admin.get("/api/v1/users"))[0] == 200


async def test_tokens_expire_on_the_clock_and_keep_to_their_scope(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    async with accounts_world(aiohttp_client, db_url, tmp_path) as w:
        sono = await w.api("sono_a")
        status, made = await sono.post("/api/v1/auth/tokens", {"label": "reader"})
        assert status == 201 and made["api_token"]["scope"] == "read"  # read-only unless asked
        created = datetime.fromisoformat(made["api_token"]["created_at"])
        expires = datetime.fromisoformat(made["api_token"]["expires_at"])
        assert (expires - created).days == 90
        reader = await w.api(bearer=made["token"])
        assert (await reader.get("/api/v1/consultations"))[0] == 200
        status, err = await reader.post("/api/v1/consultations", THYROID_REQUEST, csrf=False)
        assert (status, err["error"]) == (403, "scope_forbidden")
        assert (await sono.get("/api/v1/consultations"))[1]["consultations"] == []  # nothing was made
        status, err = await reader.post("/api/v1/auth/tokens", {"label": "more"}, csrf=False)
        assert (status, err["error"]) == (403, "scope_forbidden")

        status, made = await sono.post("/api/v1/auth/tokens", {"label": "writer", "scope": "write", "days": 1})
        writer = await w.api(bearer=made["token"])
        status, c = await writer.post("/api/v1/consultations", THYROID_REQUEST, csrf=False)
        assert status == 201
        async with reader.session.get(reader.base + f"/api/v1/consultations/{c['id']}/signal") as r:
            assert (r.status, (await r.json())["error"]) == (403, "scope_forbidden")
        status, err = await writer.post("/api/v1/auth/tokens", {"label": "more"}, csrf=False)
        assert (status, err["error"]) == (403, "scope_forbidden")  # a token cannot outlive itself through another
        status, err = await sono.post("/api/v1/auth/tokens", {"label": "x", "days": 400})
        assert (status, err["error"]) == (400, "invalid_request")

        w.clock.advance(days=1)
        status, err = await writer.get("/api/v1/consultations")
        assert (status, err["error"]) == (401, "token_expired")
        assert (await reader.get("/api/v1/consultations"))[0] == 200
        sono = await w.api("sono_a")  # the first session ended after 12 h
        listed = (await sono.get("/api/v1/auth/tokens"))[1]["tokens"]
        assert {(t["label"], t["expired"]) for t in listed} == {("reader", False), ("writer", True)}


@pytest.mark.postgres
async def test_with_redis_the_throttle_counts_failures_on_every_server(aiohttp_client: Any, tmp_path: Path) -> None:
    async with two_apps(aiohttp_client, tmp_path) as (a, b):
        await seed(a.app)
        apis = [Api(a), Api(b)]
        try:
            for n in range(4):  # A, B, A, B: three free failures, the fourth starts the backoff
                status, err = await apis[n % 2].post(LOGIN, {"username": "expert", "password": "wrong"}, csrf=False)
                assert (status, err["error"]) == (401, "bad_credentials")
            for api in apis:  # both servers refuse the next attempt, even with the right password
                async with api.session.post(api.base + LOGIN, json={"username": "expert", "password": PASSWORD}) as r:
                    assert r.status == 429 and r.headers["Retry-After"] == "1"
        finally:
            for api in apis:
                await api.close()
