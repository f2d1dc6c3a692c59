"""The server's data folder is its account's only (docs/SECURITY.md §9): the folder 0700; the SQLite database with
its WAL and shared-memory files, the DICOM blobs, the recordings and the teaching exports 0600 files in 0700
folders, made through the real paths on SQLite and PostgreSQL, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from signaling_server.app import create_app
from signaling_server.appkeys import SETTINGS
from signaling_server.db.engine import private_sqlite_file
from signaling_server.dicomstore.blobs import BLOBS
from signaling_server.dicomstore.ingest import DICOM_STORE, store_instance
from signaling_server.settings import Settings
from signaling_server.training.teaching_exports import TEACHING_EXPORTS
from tests.signaling_server.dicomstore.objects import real_file
from tests.signaling_server.session_recordings.test_routes import live_consultation, timeline_bytes, upload


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """The loosest umask: every mode below is the code's doing, not the environment's."""
    before = os.umask(0)
    try:
        yield
    finally:
        os.umask(before)


async def test_what_the_server_stores_is_readable_by_its_account_only(people: Any, tmp_path: Path) -> None:
    client, world, open_api = people
    app = client.app
    data_dir = app[SETTINGS].data_dir
    assert data_dir == tmp_path and mode_of(data_dir) == 0o700

    stored = await store_instance(app[DICOM_STORE], real_file("US1_UNCR.dcm"), site_id=world.site_a,
                                  received_via="test")  # fmt: skip
    blob = app[BLOBS].path_for(stored.sha256)
    assert mode_of(blob) == 0o600
    assert [mode_of(p) for p in (blob.parent, blob.parent.parent, app[BLOBS].root, app[BLOBS].tmp)] == [0o700] * 4

    cid = await live_consultation(open_api)
    edge = await open_api(bearer=world.device_a_credential)
    _, recording = await edge.post("/api/v1/recordings", {"consultation_id": cid})
    await upload(edge, recording["id"], "timeline.jsonl", timeline_bytes(cid))
    folder = data_dir / "recordings" / recording["id"]
    assert mode_of(folder / "timeline.jsonl") == 0o600 and mode_of(folder) == mode_of(folder.parent) == 0o700

    job = app[TEACHING_EXPORTS].start(recording["id"], tmp_path / "no-such-recording")  # fails, its folder stays
    assert mode_of(data_dir / "teaching" / job.id) == mode_of(data_dir / "teaching") == 0o700

    database = data_dir / "teleus.sqlite3"
    if database.exists():  # the SQLite run (PostgreSQL keeps its files in its own cluster)
        companions = [database, database.with_name("teleus.sqlite3-wal"), database.with_name("teleus.sqlite3-shm")]
        assert {p.name: mode_of(p) for p in companions} == {p.name: 0o600 for p in companions}


async def test_an_older_open_data_folder_and_database_are_tightened_at_start(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    database = data_dir / "teleus.sqlite3"
    url = f"sqlite+aiosqlite:///{database}"
    private_sqlite_file(url)
    os.chmod(database, 0o644)  # as an earlier version left it
    for name in ("teleus.sqlite3-wal", "teleus.sqlite3-shm"):
        (data_dir / name).write_bytes(b"")
        os.chmod(data_dir / name, 0o644)
    await aiohttp_client(create_app(Settings(data_dir=data_dir, database_url=url)))
    assert mode_of(data_dir) == 0o700
    assert {p.name: mode_of(p) for p in data_dir.glob("teleus.sqlite3*")} == {
        "teleus.sqlite3": 0o600, "teleus.sqlite3-wal": 0o600, "teleus.sqlite3-shm": 0o600
    }


def test_a_new_database_in_a_new_folder_is_private_before_sqlite_opens_it(tmp_path: Path) -> None:
    database = tmp_path / "new" / "deeper" / "teleus.sqlite3"
    private_sqlite_file(f"sqlite+aiosqlite:///{database}")
    assert mode_of(database) == 0o600 and database.stat().st_size == 0
    assert mode_of(database.parent) == mode_of(database.parent.parent) == 0o700
    private_sqlite_file("postgresql+asyncpg://127.0.0.1/teleus")  # nothing to do, no error
    private_sqlite_file("sqlite+aiosqlite:///:memory:")
