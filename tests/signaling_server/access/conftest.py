"""The real app for the access tests, on SQLite and PostgreSQL, on a clock the test sets (a grant's validity)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from signaling_server.appkeys import CLOCK, DB
from signaling_server.db.models import Report, Study, User
from signaling_server.dicomstore.ingest import DICOM_STORE, StoredInstance, store_instance
from signaling_server.reports import content
from signaling_server.reports.state import ReportKind
from tests.conftest import Api, World, make_app, seed

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
NEW_PASSWORD = "p" * 12  # of the users a test makes


@dataclass
class Clock:
    """What time the server thinks it is for access decisions; moves only when the test says."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, delta: timedelta) -> None:
        self.now = T0 + delta


@dataclass
class District:
    client: TestClient
    world: World
    clock: Clock
    opened: list[Api] = field(default_factory=list)

    @property
    def app(self) -> web.Application:
        return self.client.app

    def site(self, which: str) -> str:
        return self.world.site_a if which == "a" else self.world.site_b

    async def api(self, username: str | None = None, bearer: str | None = None, password: str = "") -> Api:
        api = Api(self.client, bearer)
        self.opened.append(api)
        if username:
            await (api.login(username, password) if password else api.login(username))
        return api

    async def store(self, raw: bytes, site: str = "a") -> StoredInstance:
        return await store_instance(self.app[DICOM_STORE], raw, site_id=self.site(site), received_via="test")

    async def final_report(self, study_id: str, impression: str = "No focal lesion.") -> str:
        """A final free-text report on the study, written straight into the database."""
        async with self.app[DB]() as db:
            author = await db.get(User, self.world.users["expert"])
            assert author is not None and await db.get(Study, study_id) is not None
            evaluated = content.evaluate(ReportKind.FREE_TEXT, {"findings": "", "impression": impression}, final=True)
            report = Report(study_id=study_id, version=1, kind="free_text", state="final", content=evaluated,
                            author_id=author.id, created_at=T0, signed_at=T0, approved_at=T0,
                            approver_id=self.world.users["expert2"])  # fmt: skip
            db.add(report)
            await db.commit()
            return report.id

    async def new_user(self, username: str, role: str) -> str:
        admin = await self.api("admin")
        status, made = await admin.post(
            "/api/v1/users",
            {  # a password the person chose: no forced change at the first sign-in (docs/SECURITY.md §4)
                "username": username, "name": username.title(), "role": role, "password": NEW_PASSWORD,
                "must_change_password": False,
            },
        )  # fmt: skip
        assert status == 201, made
        return str(made["id"])


@pytest.fixture
async def district(aiohttp_client: Any, db_url: str, tmp_path: Path) -> AsyncIterator[District]:
    app = await make_app(db_url, tmp_path)
    clock = Clock()
    app[CLOCK] = clock  # before the app starts
    client = await aiohttp_client(app)
    place = District(client, await seed(app), clock)
    yield place
    for api in place.opened:
        await api.close()
