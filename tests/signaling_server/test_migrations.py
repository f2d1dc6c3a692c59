"""Schema migrations: the Alembic history builds exactly the models' schema, and upgrading keeps data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from signaling_server import admin
from signaling_server.app import create_app
from signaling_server.appkeys import DB
from signaling_server.db.engine import make_engine, make_sessionmaker
from signaling_server.db.migrate import upgrade
from signaling_server.db.models import ApiToken, Base, Site, User
from signaling_server.settings import Settings


def _diff(conn: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


async def test_migrations_match_the_models(empty_db_url: str) -> None:
    await upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
    finally:
        await engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


async def test_restarting_the_server_upgrades_in_place_without_loss(
    empty_db_url: str, tmp_path: Path, aiohttp_client: Any
) -> None:
    await upgrade(empty_db_url)
    await upgrade(empty_db_url)  # idempotent: already at head
    engine = make_engine(empty_db_url)
    async with make_sessionmaker(engine)() as db:
        await admin.create_site(db, "kept", "A site created before the restart")
    await engine.dispose()
    app = create_app(Settings(data_dir=tmp_path, database_url=empty_db_url))
    client = await aiohttp_client(app)  # starts the app: its cleanup context runs the migrations again
    async with app[DB]() as db:
        codes = (await db.scalars(select(Site.code))).all()
    assert codes == ["kept"]
    await client.close()


async def test_tokens_made_before_accounts_keep_working_and_now_expire(empty_db_url: str) -> None:
    """0005: a token made before it gets an expiry (90 days after the upgrade) and keeps its power ("write")."""
    await upgrade(empty_db_url, "0004")
    engine = make_engine(empty_db_url)
    try:
        async with engine.begin() as conn:
            now = datetime.now(UTC)
            await conn.execute(
                text(
                    "INSERT INTO users (id, username, name, role, password_hash, active, created_at)"
                    " VALUES ('u1', 'old', 'Old', 'expert', 'x', true, :now)"
                ),
                {"now": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO api_tokens (id, user_id, label, secret_hash, revoked, created_at)"
                    " VALUES ('t1', 'u1', 'old script', 'h', false, :now)"
                ),
                {"now": now},
            )
        await upgrade(empty_db_url)
        async with make_sessionmaker(engine)() as db:
            token = await db.get(ApiToken, "t1")
            user = await db.get(User, "u1")
    finally:
        await engine.dispose()
    assert token is not None and token.scope == "write" and token.last_used_at is None
    assert timedelta(days=89) < token.expires_at - now < timedelta(days=91)
    assert user is not None and user.must_change_password is False and user.totp_secret is None
