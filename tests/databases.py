"""Real databases for tests: a fresh SQLite file, or a fresh database on the local PostgreSQL server."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

PG_ADMIN_DSN = os.environ.get("TELEUS_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


async def _pg_connect() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError):
        # The machine starts PostgreSQL before a session; start it again if it stopped.
        proc = await asyncio.create_subprocess_shell(
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.wait()
        await asyncio.sleep(2)
        return await asyncpg.connect(PG_ADMIN_DSN, timeout=5)


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database; dropped afterwards. Yields its SQLAlchemy URL."""
    name = "teleus_t_" + uuid.uuid4().hex[:12]
    conn = await _pg_connect()
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        conn = await _pg_connect()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@asynccontextmanager
async def database(kind: str, folder: Path) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'teleus.sqlite3'}"
    else:
        async with postgres_database() as url:
            yield url
