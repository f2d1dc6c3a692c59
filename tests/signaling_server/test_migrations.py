"""Schema migrations: the Alembic history builds exactly the models' schema, and upgrading keeps data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.engine import Connection

from signaling_server import admin
from signaling_server.app import create_app
from signaling_server.appkeys import DB
from signaling_server.db.engine import make_engine, make_sessionmaker
from signaling_server.db.migrate import upgrade
from signaling_server.db.models import Base, Site
from signaling_server.settings import Settings


def _diff(conn: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


async def test_migrations_match_the_models(db_url: str) -> None:
    await upgrade(db_url)
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
    finally:
        await engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


async def test_restarting_the_server_upgrades_in_place_without_loss(
    db_url: str, tmp_path: Path, aiohttp_client: Any
) -> None:
    await upgrade(db_url)
    await upgrade(db_url)  # idempotent: already at head
    engine = make_engine(db_url)
    async with make_sessionmaker(engine)() as db:
        await admin.create_site(db, "kept", "A site created before the restart")
    await engine.dispose()
    app = create_app(Settings(data_dir=tmp_path, database_url=db_url))
    client = await aiohttp_client(app)  # starts the app: its cleanup context runs the migrations again
    async with app[DB]() as db:
        codes = (await db.scalars(select(Site.code))).all()
    assert codes == ["kept"]
    await client.close()
