"""Migration 0008: each site's AE title becomes a DICOM peer of that site, and comes back on downgrade."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import text

from signaling_server.db.engine import make_engine
from signaling_server.db.migrate import alembic_config, upgrade


async def _rows(url: str, query: str) -> list[tuple[object, ...]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(text(query))).all()]
    finally:
        await engine.dispose()


async def _execute(url: str, *statements: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def test_site_ae_titles_become_peers_open_to_anywhere_and_come_back(empty_db_url: str) -> None:
    await upgrade(empty_db_url, "0007")
    await _execute(
        empty_db_url,
        "INSERT INTO sites (id, code, name, ae_title, recording_enabled, created_at)"
        " VALUES ('s1', 'north', 'North', 'NORTH_CR', true, '2025-01-01 00:00:00+00')",
        "INSERT INTO sites (id, code, name, ae_title, recording_enabled, created_at)"
        " VALUES ('s2', 'river', 'River', NULL, true, '2025-01-01 00:00:00+00')",
    )
    await upgrade(empty_db_url, "0008")
    peers = await _rows(
        empty_db_url, "SELECT ae_title, site_id, max_dataset_bytes, max_associations, enabled, tls_client_sha256"
        " FROM dicom_peers",
    )  # fmt: skip
    assert [p[:2] for p in peers] == [("NORTH_CR", "s1")]
    assert peers[0][2:] in {(256 << 20, 4, True, None), (256 << 20, 4, 1, None)}  # SQLite answers 1 for true
    [(networks,)] = await _rows(empty_db_url, "SELECT networks FROM dicom_peers")
    assert networks in (["0.0.0.0/0", "::/0"], '["0.0.0.0/0", "::/0"]')
    await asyncio.to_thread(command.downgrade, alembic_config(empty_db_url), "0007")
    assert sorted(await _rows(empty_db_url, "SELECT id, ae_title FROM sites")) == [("s1", "NORTH_CR"), ("s2", None)]
