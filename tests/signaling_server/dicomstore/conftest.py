"""The real app for the DICOM store's tests, on SQLite and PostgreSQL, with settings a test may change."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from signaling_server.app import create_app
from signaling_server.dicomstore.ingest import DICOM_STORE, StoredInstance, store_instance
from signaling_server.settings import Settings
from tests.conftest import Api, World, seed
from tests.signaling_server.dicomstore.objects import multipart


@dataclass
class Running:
    """One started app: its test client, the seeded world and helpers to call it as someone."""

    client: TestClient
    world: World
    opened: list[Api | aiohttp.ClientSession] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def app(self) -> web.Application:
        return self.client.app

    @property
    def base(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    async def api(self, username: str | None = None, bearer: str | None = None) -> Api:
        api = Api(self.client, bearer)
        self.opened.append(api)
        if username:
            await api.login(username)
        return api

    async def token(self, username: str) -> str:
        """A `tok_` bearer token of a seeded user (for scripts and dicomweb-client); one per user and app."""
        if username not in self.tokens:
            api = await self.api(username)  # a login costs an Argon2 verification: do it once
            status, data = await api.post("/api/v1/auth/tokens", {"label": "tests", "scope": "write"})
            assert status == 201, data
            self.tokens[username] = str(data["token"])
        return self.tokens[username]

    async def bearer(self, username: str) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {await self.token(username)}"})
        self.opened.append(session)
        return session

    def device(self, site: str = "a") -> aiohttp.ClientSession:
        credential = self.world.device_a_credential if site == "a" else self.world.device_b_credential
        session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {credential}"})
        self.opened.append(session)
        return session

    async def store(self, raw: bytes, site: str = "a", via: str = "test") -> StoredInstance:
        site_id = self.world.site_a if site == "a" else self.world.site_b
        return await store_instance(self.app[DICOM_STORE], raw, site_id=site_id, received_via=via)

    async def stow(
        self, session: aiohttp.ClientSession, parts: list[Any], path: str = "/dicomweb/studies", **headers: str
    ) -> tuple[int, Any]:
        content_type, body = multipart(parts)
        wanted = {"Content-Type": content_type, "Accept": "application/dicom+json", **headers}
        async with session.post(self.base + path, data=io.BytesIO(body), headers=wanted) as response:
            return response.status, await response.json(content_type=None)


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start(db_url: str, aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Start]:
    """`await start(**settings)`: the real app on each database, seeded; settings default to the tests' bare ones.
    The database is asked for first, so it is dropped only after the app has stopped."""
    running: list[Running] = []

    async def _start(**overrides: Any) -> Running:
        settings = Settings(data_dir=tmp_path, database_url=db_url).with_overrides(**overrides)
        app = create_app(settings)
        client = await aiohttp_client(app)
        one = Running(client, await seed(app))
        running.append(one)
        return one

    yield _start
    for one in running:
        for api in one.opened:
            await api.close()


@pytest.fixture
async def server(start: Start) -> Running:
    return await start()
