"""The real app for the orders' tests (SQLite and PostgreSQL), with a community doctor at each seeded site."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from signaling_server.appkeys import DB
from signaling_server.db.models import User
from tests.conftest import World, _password_hash
from tests.signaling_server.dicomstore.conftest import Running, Start
from tests.signaling_server.dicomstore.conftest import start as start  # the fixture, found here by pytest

ORDER = {
    "patient": {"id": "MZ-0001", "name": "张^三", "birth_date": "1970-05-01", "sex": "F"},
    "exam": {"modality": "US", "body_part": "THYROID", "description": "甲状腺超声"},
    "reason": "甲状腺结节复查",
    "clinical_info": "2025-06 外院超声: 右叶结节 8 mm",
    "priority": "routine",
}


def order_body(**changes: Any) -> dict[str, Any]:
    return {**ORDER, **changes}


async def add_doctors(app: web.Application, world: World) -> None:
    """doc_a (north) and doc_b (river): community doctors, inserted directly like the seed's people."""
    async with app[DB]() as db:
        for username, site in (("doc_a", world.site_a), ("doc_b", world.site_b)):
            user = User(username=username, name="李医生" if username == "doc_a" else "Dr Wang", role="doctor",
                        site_id=site, password_hash=_password_hash())
            db.add(user)
            await db.commit()
            world.users[username] = user.id


@pytest.fixture
async def ordering(start: Start) -> Running:
    """The real app with its DICOM listener on a free port, seeded, with the two doctors."""
    server = await start(dicom_port=0)
    await add_doctors(server.app, server.world)
    return server
