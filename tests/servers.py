"""Several server processes in tests: a Redis key prefix of one's own, and two apps sharing PostgreSQL and Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from signaling_server.app import create_app
from signaling_server.settings import Settings
from tests.databases import postgres_database

REDIS_URL = os.environ.get("TELEUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@asynccontextmanager
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix no other test uses (parallel workers share one Redis); its keys are deleted afterwards."""
    prefix = f"teleus-t-{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        redis = Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            keys = [key async for key in redis.scan_iter(match=prefix + "*")]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()


@asynccontextmanager
async def two_apps(aiohttp_client: Any, tmp_path: Path, **settings: Any) -> AsyncIterator[list[TestClient]]:
    """Servers A and B: two real apps on one PostgreSQL database and one Redis prefix (one data folder)."""
    async with postgres_database() as url, redis_prefix() as prefix:
        clients: list[TestClient] = []
        try:
            for _ in range(2):  # one after the other: the first migrates the database
                app: web.Application = create_app(
                    Settings(data_dir=tmp_path, database_url=url, redis_url=REDIS_URL, redis_prefix=prefix, **settings)
                )
                clients.append(await aiohttp_client(app))
            yield clients
        finally:
            for client in clients:  # before the database and the keys go
                await client.close()
