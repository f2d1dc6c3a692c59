"""The async engine and session factory for one database URL."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from recordings.private_files import FILE_MODE, make_private_dirs, tighten

SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
# A pooled PostgreSQL connection idle this long is pinged before it is handed out (a restarted or vanished
# server is found then, not by the request). SQLAlchemy's own `pool_pre_ping` pings at every checkout, and with
# asyncpg a ping is three round trips (BEGIN, ";", ROLLBACK): under load that was a fifth of the database traffic
# of a request (bench/load.py). A connection in steady use that breaks fails its request, and SQLAlchemy then
# drops every older connection of the pool (a disconnect invalidates the pool).
IDLE_PING_SECONDS = 10.0


def private_sqlite_file(url: str) -> None:
    """A SQLite database file (and its WAL, shared-memory and journal files, which SQLite creates with the
    database file's mode) readable by the server's account only: made 0600 before SQLite first opens it, and an
    older, looser file tightened. Other URLs: nothing to do."""
    if not url.startswith("sqlite"):
        return
    path = url.split("///", 1)[-1]
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    database = Path(path)
    make_private_dirs(database.parent)
    os.close(os.open(database, os.O_CREAT | os.O_WRONLY, FILE_MODE))  # an empty file is a new database to SQLite
    for companion in (database, *(database.with_name(database.name + s) for s in SQLITE_COMPANIONS)):
        tighten(companion, FILE_MODE)


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    engine = create_async_engine(url, pool_size=10, max_overflow=20)
    event.listen(engine.sync_engine, "checkin", _checked_in)
    event.listen(engine.sync_engine, "checkout", _ping_if_idle)
    return engine


def _checked_in(dbapi_conn: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_conn: Any, record: Any, proxy: Any) -> None:
    """The pool's checkout: ping a connection that sat idle `IDLE_PING_SECONDS`; a failed ping makes the pool
    throw it away and connect again (DisconnectionError)."""
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
        return
    try:
        dbapi_conn.ping()
    except Exception as exc:
        raise DisconnectionError(f"a pooled connection idle since {idle_since:.0f} did not answer") from exc


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
