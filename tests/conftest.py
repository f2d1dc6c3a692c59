"""Shared fixtures: the real app on SQLite and PostgreSQL, seeded people, and HTTP clients per person."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import hypothesis
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from signaling_server import admin
from signaling_server.app import create_app
from signaling_server.appkeys import DB
from signaling_server.auth.passwords import hash_password
from signaling_server.db.models import SiteAssignment, User
from signaling_server.dicomstore import peers
from signaling_server.settings import Settings
from tests.databases import database

PASSWORD = "correct horse battery"

# Property tests (hypothesis): few examples and no deadline by default, so the suite stays fast and a busy machine
# does not fail a test for being slow; HYPOTHESIS_PROFILE=fuzz runs many more (make fuzz does).
hypothesis.settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.register_profile(
    "fuzz", max_examples=2000, deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@functools.cache
def _password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database with no schema at all, for the tests of the migrations themselves (`db_url` is at head)."""
    async with database(request.param, tmp_path, empty=True) as url:
        yield url


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> AsyncIterator[str]:
    async with database("sqlite", tmp_path) as url:
        yield url


@dataclass
class World:
    """What the seed made: two sites, one person per role (two sonographers, two experts), one edge device.

    Both experts serve both sites (a site assignment each); the admin, the trainer and the registrar serve none."""

    site_a: str
    site_b: str
    device_a: str
    device_a_credential: str
    device_b_credential: str
    users: dict[str, str]  # username -> id


async def seed(app: web.Application) -> World:
    async with app[DB]() as db:
        a = await admin.create_site(db, "north", "North Community Health Centre")
        b = await admin.create_site(db, "river", "Riverside Community Health Centre")
        await peers.create_peer(db, "NORTH_CR", a.id, ["127.0.0.1/32"])  # north's modality, on this machine only
        users = {}
        hashed = _password_hash()
        for username, role, site in [
            ("sono_a", "sonographer", a.id),
            ("sono_a2", "sonographer", a.id),
            ("sono_b", "sonographer", b.id),
            ("expert", "expert", None),
            ("expert2", "expert", None),
            ("trainer", "trainer", None),
            ("admin", "admin", None),
            ("registrar", "registrar", None),
        ]:
            # Inserted directly with one shared hash: Argon2 is deliberately slow (admin.create_user is tested apart).
            user = User(username=username, name=username.replace("_", " ").title(), role=role, site_id=site)
            user.password_hash = hashed
            db.add(user)
            await db.commit()
            users[username] = user.id
        for expert in ("expert", "expert2"):
            for site in (a.id, b.id):
                db.add(SiteAssignment(user_id=users[expert], site_id=site))
        await db.commit()
        device, credential = await admin.register_device(db, a.id, "north-us-1")
        _, credential_b = await admin.register_device(db, b.id, "river-us-1")
    return World(a.id, b.id, device.id, credential, credential_b, users)


async def make_app(url: str, tmp_path: Path, **settings: Any) -> web.Application:
    return create_app(Settings(data_dir=tmp_path, database_url=url, **settings))


class Api:
    """One person's HTTP session against the test server: cookie + CSRF like the console, or a bearer token."""

    def __init__(self, client: TestClient, bearer: str | None = None) -> None:
        self.client = client
        self.base = str(client.make_url("")).rstrip("/")
        jar = aiohttp.CookieJar(unsafe=True)
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        self.session = aiohttp.ClientSession(cookie_jar=jar, headers=headers)
        self.csrf: str | None = None

    async def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        status, data = await self.post("/api/v1/auth/login", {"username": username, "password": password})
        assert status == 200, data
        self.csrf = data["csrf_token"]
        return data

    def _headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf} if self.csrf else {}

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.base + path) as r:
            return r.status, await r.json()

    async def post(self, path: str, body: Any = None, *, csrf: bool = True) -> tuple[int, Any]:
        headers = self._headers() if csrf else {}
        async with self.session.post(self.base + path, json=body, headers=headers) as r:
            return r.status, (await r.json() if r.status != 204 else None)

    async def ws(self, path: str, **kwargs: Any) -> aiohttp.ClientWebSocketResponse:
        headers = {"Origin": self.base}
        return await self.session.ws_connect(self.base + path, headers=headers, **kwargs)

    async def close(self) -> None:
        await self.session.close()


@pytest.fixture
async def people(aiohttp_client: Any, db_url: str, tmp_path: Path) -> AsyncIterator[tuple[TestClient, World, Any]]:
    """The real app on each database, seeded; `open_api(username|None, bearer=None)` gives a signed-in Api."""
    app = await make_app(db_url, tmp_path)
    client = await aiohttp_client(app)
    world = await seed(app)
    opened: list[Api] = []

    async def open_api(username: str | None = None, bearer: str | None = None) -> Api:
        api = Api(client, bearer)
        opened.append(api)
        if username:
            await api.login(username)
        return api

    yield client, world, open_api
    for api in opened:
        await api.close()


THYROID_REQUEST = {
    "exam_type": "thyroid",
    "patient": {"id": "P-0001", "name": "张^三", "sex": "F", "birth_date": "1970-05-01"},
    "accession": "ACC1",
}
