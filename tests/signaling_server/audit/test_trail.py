"""The audit trail in SQLite and PostgreSQL: concurrent writers (two "processes" included) make one unforked chain,
the database refuses to change a row, and whoever changes one anyway (an owner who drops the guard) is found by
`verify` and by `teleus audit verify`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from signaling_server.audit.trail import Actor, AuditTrail, Entry, verify
from signaling_server.db.engine import make_engine, make_sessionmaker
from signaling_server.db.migrate import upgrade
from signaling_server.db.models import AuditEvent

TELEUS = str(Path(sys.executable).parent / "teleus")


def entry(n: int, who: str = "u1") -> Entry:
    return Entry(
        actor=Actor("user", who, who, "expert"),
        client="127.0.0.1",
        action="read",
        method="GET",
        route="/api/v1/studies/{id}",
        status=200,
        outcome="ok",
        object_kind="study",
        object_id=f"s{n}",
        detail={"query": {"PatientName": "张^三"}},
    )


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade(db_url)
    made = make_engine(db_url)
    yield made
    await made.dispose()


@pytest.fixture
async def trail(engine: AsyncEngine) -> AsyncIterator[AuditTrail]:
    writer = AuditTrail(make_sessionmaker(engine), batch=7)
    writer.start()
    yield writer
    await writer.close()


async def rows(sessions: async_sessionmaker[AsyncSession]) -> list[AuditEvent]:
    async with sessions() as db:
        return list(await db.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


async def test_concurrent_appends_make_one_chain_in_call_order(engine: AsyncEngine, trail: AuditTrail) -> None:
    seqs = await asyncio.gather(*(trail.append(entry(n)) for n in range(40)))
    assert seqs == list(range(1, 41))  # numbered in the order they were handed over, across batches of 7
    stored = await rows(make_sessionmaker(engine))
    assert [r.object_id for r in stored] == [f"s{n}" for n in range(40)]
    assert stored[0].detail == {"query": {"PatientName": "张^三"}} and stored[0].at.tzinfo is not None
    verdict = await verify(make_sessionmaker(engine))
    assert verdict.intact and verdict.rows == 40 and verdict.head_hash == stored[-1].row_hash


async def test_two_processes_on_one_database_never_fork_the_chain(db_url: str, engine: AsyncEngine) -> None:
    """Two writers with engines of their own (as two server processes have) appending at once."""
    other_engine = make_engine(db_url)
    first, second = AuditTrail(make_sessionmaker(engine), batch=3), AuditTrail(make_sessionmaker(other_engine), batch=3)
    first.start()
    second.start()
    try:
        await asyncio.gather(*(w.append(entry(n, who)) for n in range(30) for w, who in ((first, "a"), (second, "b"))))
    finally:
        await first.close()
        await second.close()
        await other_engine.dispose()
    stored = await rows(make_sessionmaker(engine))
    assert [r.seq for r in stored] == list(range(1, 61))
    assert sorted((r.actor_id, r.object_id) for r in stored) == sorted(
        (who, f"s{n}") for n in range(30) for who in ("a", "b")
    )
    assert (await verify(make_sessionmaker(engine))).intact


async def test_the_database_refuses_to_change_or_delete_a_row(engine: AsyncEngine, trail: AuditTrail) -> None:
    await trail.append(entry(1))
    for statement in ("UPDATE audit_events SET outcome = 'forbidden'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))
    if engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text("TRUNCATE audit_events"))
    stored = await rows(make_sessionmaker(engine))
    assert [(r.seq, r.outcome) for r in stored] == [(1, "ok")]


async def _without_guard(engine: AsyncEngine, *statements: str) -> None:
    """What someone with the database owner's rights can do: drop the guard, then change rows by hand."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            await conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
            await conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
        for statement in statements:
            await conn.execute(text(statement))


TAMPERING: dict[str, tuple[list[str], int, int, str]] = {
    # how: (the statements, the first row found broken, the rows that still hold before it, the reason given)
    "edited": (["UPDATE audit_events SET actor_id = 'someone-else' WHERE seq = 3"], 3, 2, "edited"),
    "deleted": (["DELETE FROM audit_events WHERE seq = 3"], 4, 2, "deleted"),
    "reordered": (
        [
            "UPDATE audit_events SET seq = -1 WHERE seq = 2",
            "UPDATE audit_events SET seq = 2 WHERE seq = 3",
            "UPDATE audit_events SET seq = 3 WHERE seq = -1",
        ],
        2,
        1,
        "moved",
    ),
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
async def test_tampering_in_sql_is_found_at_the_first_row_it_touches(
    how: str, engine: AsyncEngine, trail: AuditTrail
) -> None:
    for n in range(5):
        await trail.append(entry(n))
    statements, first_broken, holding, reason = TAMPERING[how]
    await _without_guard(engine, *statements)
    verdict = await verify(make_sessionmaker(engine))
    assert verdict.broken is not None, how
    assert (verdict.broken.seq, verdict.rows) == (first_broken, holding)
    assert reason in verdict.broken.reason


def _teleus_audit_verify(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEUS_")}
    command = [TELEUS, "audit", "verify", "--database-url", url, *extra]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


async def test_teleus_audit_verify_reports_the_first_broken_row_and_exits_non_zero(
    db_url: str, engine: AsyncEngine, trail: AuditTrail
) -> None:
    for n in range(4):
        await trail.append(entry(n))
    intact = await asyncio.to_thread(_teleus_audit_verify, db_url)
    assert intact.returncode == 0, intact.stderr
    head = (await verify(make_sessionmaker(engine))).head_hash
    assert intact.stdout.strip() == f"audit trail intact: 4 rows; head 4:{head}"

    await _without_guard(engine, "DELETE FROM audit_events WHERE seq = 4")  # the newest row cut off
    cut = await asyncio.to_thread(_teleus_audit_verify, db_url)
    assert cut.returncode == 0  # the chain alone cannot see a cut tail…
    anchored = await asyncio.to_thread(_teleus_audit_verify, db_url, "--anchor", f"4:{head}")
    assert anchored.returncode == 1 and "BROKEN at row 4" in anchored.stdout  # …the head noted earlier can

    await _without_guard(engine, "UPDATE audit_events SET status = 403 WHERE seq = 2")
    broken = await asyncio.to_thread(_teleus_audit_verify, db_url)
    assert broken.returncode == 1
    assert broken.stdout.splitlines() == [
        "audit trail BROKEN at row 2: its fields do not hash to its row_hash (the row was edited)",
        "1 row(s) before it verified",
    ]
    refused = await asyncio.to_thread(_teleus_audit_verify, db_url, "--anchor", "four")
    assert refused.returncode == 2 and "SEQ:SHA256" in refused.stderr
