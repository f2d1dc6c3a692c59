"""The async engine and session factory for one database URL."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from recordings.private_files import FILE_MODE, make_private_dirs, tighten

SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


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
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
