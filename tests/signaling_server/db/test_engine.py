"""The PostgreSQL pool (db/engine.py): a connection that sat idle is pinged before use, and one that died while
idle is replaced, not handed to a request."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text

from signaling_server.db import engine as engine_module
from tests.databases import postgres_database


@pytest.mark.postgres
async def test_a_pooled_connection_that_died_while_idle_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    async with postgres_database() as url:
        engine = engine_module.make_engine(url)
        try:
            async with engine.connect() as conn:
                first = await conn.scalar(text("SELECT pg_backend_pid()"))
            # the server ends that backend while the connection sits in the pool (a restart, an idle timeout)
            dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
            admin = await asyncpg.connect(dsn)
            try:
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
            finally:
                await admin.close()
            monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 0.0)  # it has been idle long enough
            async with engine.connect() as conn:
                second = await conn.scalar(text("SELECT pg_backend_pid()"))
            assert second != first
        finally:
            await engine.dispose()
