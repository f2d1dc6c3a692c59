"""Real databases for tests: a fresh SQLite file, or a fresh database on the local PostgreSQL server.

A fresh database comes already at the newest schema: each test process runs the migrations once per kind, into a
template (a SQLite file it copies, a PostgreSQL database it clones with `CREATE DATABASE … TEMPLATE`), instead of
once per test; the server's start-up `upgrade` then finds the schema at head and does nothing. Running every
migration took about 0.65 CPU-seconds on SQLite and 2 s on PostgreSQL, for each of several hundred tests. The
migration tests ask for an empty database (`empty=True`) and run the migrations themselves."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from bench.netlab import pid_alive
from signaling_server.db.engine import SQLITE_COMPANIONS
from signaling_server.db.migrate import upgrade_sync

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


def _pg_base() -> str:
    return PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)


async def _pg_execute(*statements: str) -> None:
    conn = await _pg_connect()
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


_TEMPLATE_LOCK = threading.Lock()
_TEMPLATES: dict[str, str] = {}  # kind -> a migrated SQLite file's path, or a PostgreSQL template's name
TEMPLATE_PREFIX = "teleus_tpl_"


async def _drop_pg_template(name: str) -> None:
    await _pg_execute(
        f'ALTER DATABASE "{name}" IS_TEMPLATE false', f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    )


async def _make_pg_template() -> str:
    """A migrated database of this process's, closed to connections so that it can be cloned; templates left by
    test processes that died are dropped first."""
    conn = await _pg_connect()
    try:
        stale = [
            r["datname"]
            for r in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", TEMPLATE_PREFIX + "%")
        ]
    finally:
        await conn.close()
    for name in stale:
        pid = name.removeprefix(TEMPLATE_PREFIX).split("_", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            await _drop_pg_template(name)
    name = f"{TEMPLATE_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
    await _pg_execute(f'CREATE DATABASE "{name}"')
    await asyncio.to_thread(upgrade_sync, f"{_pg_base()}/{name}")
    await _pg_execute(f'ALTER DATABASE "{name}" IS_TEMPLATE true ALLOW_CONNECTIONS false')
    return name


def _template(kind: str) -> str:
    """This process's template for `kind`, made on first use (in a thread of its own: Alembic and asyncpg run
    their own event loops there, whatever loop the asking test runs on)."""
    with _TEMPLATE_LOCK:
        if kind in _TEMPLATES:
            return _TEMPLATES[kind]
        if kind == "sqlite":
            folder = Path(tempfile.mkdtemp(prefix="teleus-template-"))
            atexit.register(shutil.rmtree, folder, True)
            path = folder / "teleus.sqlite3"
            upgrade_sync(f"sqlite+aiosqlite:///{path}")
            leftovers = [c for c in SQLITE_COMPANIONS if path.with_name(path.name + c).exists()]
            assert not leftovers, f"the template's {leftovers} would not be copied with it"
            _TEMPLATES[kind] = str(path)
        else:
            name = asyncio.run(_make_pg_template())
            atexit.register(lambda: asyncio.run(_drop_pg_template(name)))
            _TEMPLATES[kind] = name
        return _TEMPLATES[kind]


def _copy_sqlite_template(path: Path) -> None:
    template = _template("sqlite")
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    path.chmod(0o600)  # as the server makes its database file (docs/SECURITY.md §9)


@asynccontextmanager
async def postgres_database(*, empty: bool = False) -> AsyncIterator[str]:
    """A new PostgreSQL database at the newest schema (or empty); dropped afterwards. Yields its SQLAlchemy URL."""
    template = "" if empty else await asyncio.to_thread(_template, "postgres")
    name = "teleus_t_" + uuid.uuid4().hex[:12]
    await _pg_execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield f"{_pg_base()}/{name}"
    finally:
        await _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def database(kind: str, folder: Path, *, empty: bool = False) -> AsyncIterator[str]:
    """A fresh database of `kind` ("sqlite": a file in `folder`; "postgres"), at the newest schema unless `empty`."""
    if kind == "sqlite":
        path = folder / "teleus.sqlite3"
        if not empty:
            await asyncio.to_thread(_copy_sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
    else:
        async with postgres_database(empty=empty) as url:
            yield url
