"""Named actions and queries on session recordings. Each takes an open AsyncSession and commits its own work.

The edge device that owns a consultation creates its recording and uploads the files chunk by chunk; the
database row of each file (``received``) is the one truth about how far the server has it, advanced by a
guarded UPDATE (compare-and-set on the offset) that holds the row while the chunk is written to disk, so two
writers can never interleave. The recording's state is recomputed by :mod:`.state` after each change, in one
place (:func:`_settle`), which also tells the caller's ``on_complete`` (the offline QC scorer) when a recording has
just become complete.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from recordings.store import RecordingStore, StoreBehind, parse_name
from signaling_server import errors
from signaling_server.access import policy
from signaling_server.access.policy import Sight
from signaling_server.auth.identity import Caller
from signaling_server.db.models import Consultation, Device, Recording, RecordingFile, Site, User
from signaling_server.session_recordings.state import FINAL_STATES, RecordingState, after_upload, trail, transition

MAX_CHUNK_BYTES = 4 << 20
MAX_FILE_BYTES = 64 << 30  # a day of 1080p; the columns are 64-bit (migration 0004)
MAX_FILES = 200
RECORDABLE_STATES = ("live", "ended")
_SHA256 = re.compile(r"[0-9a-f]{64}")
OnComplete = Callable[[str], None]  # told the recording id once the recording is complete (and committed)


def nobody(recording_id: str) -> None:
    """An ``on_complete`` that nobody listens to."""


@dataclass(frozen=True)
class RecordingView:
    recording: Recording
    consultation: Consultation
    site: Site
    sonographer: User | None
    expert: User | None
    files: list[RecordingFile]


def now() -> datetime:
    return datetime.now(UTC)


def check_sha256(value: object, name: str) -> str:
    text = value.lower() if isinstance(value, str) else ""
    if not _SHA256.fullmatch(text):
        raise errors.InvalidRequest(f"{name} must be 64 hexadecimal digits (SHA-256)")
    return text


def check_name(name: str) -> str:
    if parse_name(name) is None:
        raise errors.InvalidRequest("a recording file is media[.k].mp4 or timeline[.k].jsonl")
    return name


# ---- the edge's side ------------------------------------------------------------------------------------------


async def create(db: AsyncSession, device: Device, consultation_id: str) -> tuple[Recording, bool]:
    """The consultation's recording, made now unless it exists (idempotent): (recording, created)."""
    consultation = await db.get(Consultation, consultation_id)
    if consultation is None or consultation.device_id != device.id:
        raise errors.NotFound("no such consultation for this device")
    site = await db.get(Site, consultation.site_id)
    assert site is not None
    if not site.recording_enabled:
        raise errors.RecordingDisabled(f"{site.name} does not record its consultations")
    existing = await _by_consultation(db, consultation_id)
    if existing is not None:
        return existing, False
    if consultation.state not in RECORDABLE_STATES:
        raise errors.InvalidTransition(f"a {consultation.state} consultation is not recorded")
    recording = Recording(
        consultation_id=consultation.id,
        site_id=consultation.site_id,
        sonographer_id=consultation.requested_by_id,
        state=RecordingState.RECORDING,
        started_at=now(),
    )
    db.add(recording)
    try:
        await db.flush()
    except IntegrityError:  # the same edge asked twice at once: one row won
        await db.rollback()
        found = await _by_consultation(db, consultation_id)
        assert found is not None
        return found, False
    db.add(trail(recording, None, RecordingState.RECORDING))
    await db.commit()
    return recording, True


async def _by_consultation(db: AsyncSession, consultation_id: str) -> Recording | None:
    query = select(Recording).where(Recording.consultation_id == consultation_id)
    return (await db.scalars(query)).first()


async def owned(db: AsyncSession, device: Device, recording_id: str) -> Recording:
    recording = await db.get(Recording, recording_id)
    consultation = await db.get(Consultation, recording.consultation_id) if recording else None
    if recording is None or consultation is None or consultation.device_id != device.id:
        raise errors.NotFound("no such recording for this device")
    return recording


async def file_row(db: AsyncSession, recording_id: str, name: str) -> RecordingFile | None:
    query = select(RecordingFile).where(RecordingFile.recording_id == recording_id, RecordingFile.name == name)
    return (await db.scalars(query)).first()


async def _new_file_row(db: AsyncSession, recording: Recording, name: str) -> RecordingFile:
    if recording.ended_at is not None:
        raise errors.InvalidTransition(f"the recording has ended without {name}")
    count = len((await db.scalars(select(RecordingFile.id).where(RecordingFile.recording_id == recording.id))).all())
    if count >= MAX_FILES:
        raise errors.TooLarge(f"a recording has at most {MAX_FILES} files")
    row = RecordingFile(recording_id=recording.id, name=name, size=0, sha256="", received=0, complete=False, chunks=0)
    db.add(row)
    try:
        await db.commit()
    except IntegrityError:  # made by a concurrent first chunk
        await db.rollback()
        found = await file_row(db, recording.id, name)
        assert found is not None
        return found
    return row


async def append_chunk(
    db: AsyncSession,
    store: RecordingStore,
    device: Device,
    recording_id: str,
    name: str,
    offset: int,
    data: bytes,
    sha256: str,
) -> int:
    """Append one chunk at ``offset``; returns the new offset. Nothing is appended unless every check passes."""
    recording = await owned(db, device, recording_id)
    check_name(name)
    if recording.state in FINAL_STATES:
        raise errors.InvalidTransition(f"the recording is {recording.state}")
    if await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest()) != sha256:
        raise errors.ChunkChecksumMismatch("the chunk's bytes do not match X-Chunk-SHA256; nothing was appended")
    row = await file_row(db, recording.id, name) or await _new_file_row(db, recording, name)
    if row.complete:
        raise errors.FileComplete(f"{name} is already whole on the server")
    if offset != row.received:
        raise errors.WrongOffset(f"{name}: the server has {row.received} bytes, not {offset}", row.received)
    end = offset + len(data)
    if end > MAX_FILE_BYTES:
        raise errors.TooLarge(f"a recording file holds at most {MAX_FILE_BYTES} bytes")
    row_id = row.id
    claimed = await db.execute(  # holds the row (PostgreSQL) or the database (SQLite) until the commit below
        update(RecordingFile)
        .where(RecordingFile.id == row_id, RecordingFile.received == offset, RecordingFile.complete.is_(False))
        .values(received=end, chunks=RecordingFile.chunks + 1)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        await db.rollback()
        await db.refresh(row)
        raise errors.WrongOffset(f"{name}: the server has {row.received} bytes, not {offset}", row.received)
    try:
        await asyncio.to_thread(store.write_at, recording.id, name, offset, data)
    except StoreBehind as behind:
        await db.rollback()
        await db.execute(update(RecordingFile).where(RecordingFile.id == row_id).values(received=behind.size))
        await db.commit()
        raise errors.WrongOffset(f"{name}: the server has {behind.size} bytes, not {offset}", behind.size) from None
    except BaseException:
        await db.rollback()
        raise
    await db.commit()
    return end


async def complete_file(
    db: AsyncSession,
    store: RecordingStore,
    device: Device,
    recording_id: str,
    name: str,
    size: int,
    sha256: str,
    on_complete: OnComplete = nobody,
) -> RecordingFile:
    """Check the whole file against the edge's size and SHA-256; a mismatch empties it (the edge resends)."""
    recording = await owned(db, device, recording_id)
    row = await file_row(db, recording.id, check_name(name))
    if row is None:
        raise errors.WrongOffset(f"{name}: the server has none of it", 0)
    if row.complete:
        if (row.size, row.sha256) != (size, sha256):
            raise errors.FileComplete(f"{name} is already whole on the server, with another size or SHA-256")
        return row
    if row.received < size:
        raise errors.WrongOffset(f"{name}: the server has {row.received} of {size} bytes", row.received)
    stored_size, digest = await asyncio.to_thread(store.sha256, recording.id, name)
    if row.received != size or stored_size != size or digest != sha256:
        await db.execute(update(RecordingFile).where(RecordingFile.id == row.id).values(received=0, chunks=0))
        await asyncio.to_thread(store.reset, recording.id, name)
        await db.commit()
        raise errors.ChecksumMismatch(
            f"{name}: the server's {stored_size} bytes hash to {digest[:12]}…, not {sha256[:12]}…; send it again", 0
        )
    row.complete, row.size, row.sha256 = True, size, digest
    await _settle(db, recording, on_complete)
    return row


async def end(
    db: AsyncSession,
    store: RecordingStore,
    device: Device,
    recording_id: str,
    names: list[str],
    duration_seconds: float | None,
    on_complete: OnComplete = nobody,
) -> Recording:
    """The edge stopped recording for good; ``names`` are every file of the recording (others are dropped)."""
    recording = await owned(db, device, recording_id)
    wanted = {check_name(n) for n in names}
    rows = list((await db.scalars(select(RecordingFile).where(RecordingFile.recording_id == recording.id))).all())
    if recording.state in FINAL_STATES:
        if recording.state == RecordingState.COMPLETE and wanted == {r.name for r in rows}:
            return recording  # the edge did not hear the first answer
        raise errors.InvalidTransition(f"the recording is already {recording.state}")
    for row in rows:
        if row.name not in wanted:
            await db.execute(delete(RecordingFile).where(RecordingFile.id == row.id))
            await asyncio.to_thread(store.reset, recording.id, row.name)
    for name in wanted - {r.name for r in rows}:
        db.add(RecordingFile(recording_id=recording.id, name=name, size=0, sha256="", received=0, complete=False))
    recording.ended_at = recording.ended_at or now()
    recording.duration_seconds = duration_seconds
    await db.flush()
    await _settle(db, recording, on_complete)
    return recording


async def fail(db: AsyncSession, device: Device, recording_id: str, reason: str) -> Recording:
    recording = await owned(db, device, recording_id)
    transition(recording, RecordingState.FAILED, db.add, reason=reason)
    await db.commit()
    return recording


async def _settle(db: AsyncSession, recording: Recording, on_complete: OnComplete) -> None:
    """Recompute the recording's state from its files and commit (the one place that does); a recording that has
    just become complete is handed to ``on_complete`` after the commit."""
    if recording.state in FINAL_STATES:
        await db.commit()
        return
    files = (await db.scalars(select(RecordingFile.complete).where(RecordingFile.recording_id == recording.id))).all()
    new = transition(recording, after_upload(recording.ended_at is not None, bool(files) and all(files)), db.add)
    if new == RecordingState.COMPLETE:
        recording.completed_at = now()
    await db.commit()
    if new == RecordingState.COMPLETE:  # a final state returned above: this is the move into complete
        on_complete(recording.id)


# ---- readers --------------------------------------------------------------------------------------------------


async def get_visible(db: AsyncSession, caller: Caller, recording_id: str, *, uploader: bool = False) -> RecordingView:
    """The recording if the caller may see it (signaling_server/access/policy.py); with `uploader`, the edge
    device that uploads it may too (its state and files' offsets: nothing of the media)."""
    recording = await db.get(Recording, recording_id)
    consultation = await db.get(Consultation, recording.consultation_id) if recording else None
    if recording is None or consultation is None:
        raise errors.NotFound("no such recording")
    if caller.device is not None:
        if not (uploader and policy.device_owns(caller, consultation)):
            raise errors.NotFound("no such recording")
    elif policy.recording_sight(await policy.scope_of(db, caller), recording, consultation) == Sight.NONE:
        raise errors.NotFound("no such recording")
    return await _view(db, recording, consultation)


async def list_visible(db: AsyncSession, caller: Caller, filters: dict[str, str]) -> list[RecordingView]:
    caller.require_user()
    scope = await policy.scope_of(db, caller)
    query = select(Recording, Consultation).join(Consultation, Consultation.id == Recording.consultation_id)
    query = query.where(policy.recording_clause(scope))
    if filters.get("site"):
        site = filters["site"]
        query = query.join(Site, Site.id == Recording.site_id).where((Site.id == site) | (Site.code == site))
    if filters.get("sonographer"):
        query = query.where(Recording.sonographer_id == filters["sonographer"])
    if filters.get("state"):
        query = query.where(Recording.state.in_(filters["state"].split(",")))
    rows = (await db.execute(query.order_by(Recording.started_at.desc()).limit(500))).all()
    return [await _view(db, recording, consultation) for recording, consultation in rows]


async def _view(db: AsyncSession, recording: Recording, consultation: Consultation) -> RecordingView:
    site = await db.get(Site, recording.site_id)
    assert site is not None
    sonographer = await db.get(User, recording.sonographer_id) if recording.sonographer_id else None
    expert = await db.get(User, consultation.expert_id) if consultation.expert_id else None
    files = (await db.scalars(select(RecordingFile).where(RecordingFile.recording_id == recording.id))).all()
    ordered = sorted(files, key=lambda f: (parse_name(f.name) or (f.name, 0))[::-1])  # segment by segment
    return RecordingView(recording, consultation, site, sonographer, expert, ordered)
