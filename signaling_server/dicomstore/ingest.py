"""Storing one arriving DICOM object: the single entry point for STOW-RS, C-STORE and the server's own objects.

    size over TELEUS_MAX_DICOM_BYTES                → TooLarge, before anything reads it
    parse (refuse non-DICOM, truncated, UID-less)   → InvalidDicom / MissingAttribute / StudyMismatch
    the header's pixel claims over the caps         → ImageTooLarge; a native length that contradicts them,
                                                      an unknown transfer syntax → InvalidDicom (`limits.py`)
    same SOP Instance UID stored already?           → same bytes: answer "already stored"; else InstanceConflict
    write the blob (content-addressed, atomic)
    one transaction: regional identity, Series, Instance, reading-queue intake (`images_arrived`), the order it
                     matches (`orders.matching`), ForwardJob
    commit, or on any failure remove the blob this call wrote: nothing is ever half-stored

Which site an object may be stored into is decided at the edge (`access.storing_site`) and passed in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from signaling_server import errors
from signaling_server.appkeys import DB, SETTINGS
from signaling_server.db.models import ForwardJob, Instance, Order, Series, Site, Study
from signaling_server.dicomstore import identity
from signaling_server.dicomstore.blobs import BLOBS, BlobStore
from signaling_server.dicomstore.forward import FORWARDER
from signaling_server.dicomstore.limits import ImageLimits
from signaling_server.dicomstore.parsing import ParsedInstance, parse_instance
from signaling_server.events.changes import QUEUE, Change, of_order_keys
from signaling_server.events.hub import CHANGES, Hub
from signaling_server.orders import matching as order_matching
from signaling_server.reading.intake import ArrivingStudy, images_arrived
from signaling_server.reading.targets import TARGETS, Targets

log = logging.getLogger(__name__)

_ATTEMPTS = 3  # a concurrent first object of the same patient or study makes the loser retry, once or twice


@dataclass
class DicomStore:
    """What ingest needs, without the web app: sessions, blobs, queue targets, identity and forward settings."""

    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore
    targets: Targets
    regional_id_issuer: str
    forward_to: str = ""  # "AET@host:port", or "" for no forwarding
    on_forward: Callable[[], None] | None = None  # wakes the forwarder after a commit that added jobs
    on_stored: Callable[[StoredInstance], None] | None = None  # tells the consoles after a commit that added one
    limits: ImageLimits = field(default_factory=ImageLimits)  # what one arriving object may cost (limits.py)

    def __post_init__(self) -> None:
        self._in_flight: dict[str, tuple[asyncio.Lock, int]] = {}

    @classmethod
    def from_app(cls, app: web.Application) -> DicomStore:
        """The app's one store (made by the `dicom_store` cleanup context)."""
        return app[DICOM_STORE]

    @asynccontextmanager
    async def one_at_a_time(self, study_uid: str) -> AsyncIterator[None]:
        """Serialise the stores into one study in this process.

        Two objects of one study (or a re-send racing its first copy) would otherwise update the same Study row
        from two transactions, and the queue's instance count is a read-modify-write.
        """
        lock, users = self._in_flight.get(study_uid, (asyncio.Lock(), 0))
        self._in_flight[study_uid] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._in_flight[study_uid]
            if users == 1:
                del self._in_flight[study_uid]
            else:
                self._in_flight[study_uid] = (lock, users - 1)


DICOM_STORE = web.AppKey("dicom_store", DicomStore)  # what ingest needs


async def dicom_store(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after the database, the blob store and the forwarder): the ingest entry point's resources."""
    forwarder = app.get(FORWARDER)
    changes_hub = app[CHANGES]
    app[DICOM_STORE] = DicomStore(
        sessions=app[DB],
        blobs=app[BLOBS],
        targets=app[TARGETS],
        regional_id_issuer=app[SETTINGS].regional_id_issuer,
        forward_to=str(forwarder.destination) if forwarder is not None else "",
        on_forward=forwarder.wake if forwarder is not None else None,
        on_stored=lambda stored: _tell(changes_hub, stored),
        limits=ImageLimits.from_settings(app[SETTINGS]),
    )
    yield


def _tell(hub: Hub, stored: StoredInstance) -> None:
    hub.changed(Change(QUEUE, stored.site_id, study_id=stored.study_id, patient_id=stored.patient_id))
    if stored.order_id is not None:  # the images matched an order: it is in progress now
        hub.changed(of_order_keys(stored.site_id, stored.patient_id))


@dataclass(frozen=True)
class StoredInstance:
    """The outcome of one store: where the object now lives in the index."""

    sop_uid: str
    sop_class_uid: str
    study_uid: str
    series_uid: str
    instance_id: str
    study_id: str
    patient_id: str | None
    site_id: str
    sha256: str
    already_stored: bool  # True: the very same object was stored before; nothing changed
    order_id: str | None = None  # the order these images matched by this store (orders/matching.py)


async def store_instance(
    target: web.Application | DicomStore,
    raw: bytes,
    *,
    site_id: str,
    received_via: str,
    calling_ae: str | None = None,
    study_uid: str | None = None,
    now: datetime | None = None,
) -> StoredInstance:
    """Store one Part 10 object for `site_id` (received_via: "stow", "c-store", "report", ...).

    `study_uid`, when given, is the study the sender addressed (STOW-RS /studies/{study}): another study in the
    object is refused with StudyMismatch. Idempotent per SOP Instance UID. Raises TooLarge or ImageTooLarge (over
    the store's limits), InvalidDicom (and its subclasses), InstanceConflict, Forbidden (the study belongs to another
    site) or InvalidRequest (no such site).
    """
    store = target if isinstance(target, DicomStore) else DicomStore.from_app(target)
    store.limits.check_size(len(raw))
    parsed = await asyncio.to_thread(parse_instance, raw, store.limits)
    if study_uid is not None and parsed.study_uid != study_uid:
        raise errors.StudyMismatch(f"the object belongs to study {parsed.study_uid}, not {study_uid}")
    at = now or datetime.now(UTC)
    async with store.one_at_a_time(parsed.study_uid):
        async with store.sessions() as db:
            earlier = await _earlier_copy(db, parsed, site_id)
        if earlier is not None:
            return earlier
        _, created = await store.blobs.put(raw, parsed.sha256)
        try:
            stored, forwarded = await _index_with_retries(store, parsed, site_id, received_via, calling_ae, at)
        except BaseException:
            if created:
                await store.blobs.discard(parsed.sha256)
            raise
    if forwarded and store.on_forward is not None:
        store.on_forward()
    if not stored.already_stored and store.on_stored is not None:
        store.on_stored(stored)
    if not stored.already_stored:
        log.info(
            "stored %s (study %s, site %s, via %s%s)",
            parsed.sop_uid,
            parsed.study_uid,
            site_id,
            received_via,
            f" from {calling_ae}" if calling_ae else "",
        )
    return stored


async def _index_with_retries(
    store: DicomStore, parsed: ParsedInstance, site_id: str, via: str, calling_ae: str | None, at: datetime
) -> tuple[StoredInstance, bool]:
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            async with store.sessions() as db:
                earlier = await _earlier_copy(db, parsed, site_id)
                if earlier is not None:
                    return earlier, False
                stored, forwarded = await _index(db, store, parsed, site_id, via, calling_ae, at)
                await db.commit()
                return stored, forwarded
        except IntegrityError:
            if attempt == _ATTEMPTS:
                raise
            log.info("store of %s raced another writer; retrying (%d)", parsed.sop_uid, attempt)
    raise AssertionError("unreachable")


async def _earlier_copy(db: AsyncSession, parsed: ParsedInstance, site_id: str) -> StoredInstance | None:
    """The stored instance with this SOP Instance UID: identical → returned; different content → conflict."""
    instance = await db.scalar(select(Instance).where(Instance.sop_uid == parsed.sop_uid))
    if instance is None:
        return None
    study = await db.get(Study, instance.study_id)
    series = await db.get(Series, instance.series_id)
    assert study is not None and series is not None
    if study.site_id != site_id:
        raise errors.Forbidden(f"SOP Instance {parsed.sop_uid} belongs to another site")
    if instance.sha256 != parsed.sha256:
        raise errors.InstanceConflict(
            f"SOP Instance {parsed.sop_uid} is stored already with different content; the stored one is kept"
        )
    return StoredInstance(
        parsed.sop_uid,
        instance.sop_class_uid,
        study.study_uid,
        series.series_uid,
        instance.id,
        study.id,
        study.patient_id,
        study.site_id,
        instance.sha256,
        already_stored=True,
    )


async def _index(
    db: AsyncSession,
    store: DicomStore,
    parsed: ParsedInstance,
    site_id: str,
    via: str,
    calling_ae: str | None,
    at: datetime,
) -> tuple[StoredInstance, bool]:
    if await db.get(Site, site_id) is None:
        raise errors.InvalidRequest("no such site")
    study = await db.scalar(select(Study).where(Study.study_uid == parsed.study_uid))
    if study is not None and study.site_id != site_id:
        raise errors.Forbidden(f"study {parsed.study_uid} belongs to another site")
    patient_id = await identity.resolve_patient(
        db,
        site_id,
        parsed.patient,
        issuer=store.regional_id_issuer,
        now=at,
        study_patient_id=study.patient_id if study is not None else None,
    )
    waiting = await order_matching.waiting_order(db, site_id, parsed.accession, parsed.study_uid)
    study = await images_arrived(db, _arriving(parsed, site_id, patient_id, waiting), store.targets, at)
    order = await order_matching.images_arrived(db, study, waiting, store.targets, at)
    series = await _series(db, parsed, study.id)
    instance = Instance(
        sop_uid=parsed.sop_uid,
        sop_class_uid=parsed.sop_class_uid,
        series_id=series.id,
        study_id=study.id,
        number=parsed.instance_number,
        frames=parsed.frames,
        rows=parsed.rows,
        columns=parsed.columns,
        sha256=parsed.sha256,
        size=parsed.size,
        transfer_syntax_uid=parsed.transfer_syntax_uid,
        received_via=via[:16],
        calling_ae=calling_ae[:16] if calling_ae else None,
        received_at=at,
    )
    db.add(instance)
    await db.flush()
    forwarded = bool(store.forward_to)
    if forwarded:
        db.add(ForwardJob(instance_id=instance.id, destination=store.forward_to, state="pending", next_attempt_at=at))
    stored = StoredInstance(
        parsed.sop_uid,
        parsed.sop_class_uid,
        parsed.study_uid,
        parsed.series_uid,
        instance.id,
        study.id,
        study.patient_id,
        site_id,
        parsed.sha256,
        already_stored=False,
        order_id=order.id if order is not None else None,
    )
    return stored, forwarded


def _arriving(parsed: ParsedInstance, site_id: str, patient_id: str, order: Order | None) -> ArrivingStudy:
    """The study as the queue's intake sees it; with its order's priority when it fills one."""
    return ArrivingStudy(
        site_id=site_id,
        study_uid=parsed.study_uid,
        patient_id=patient_id,
        local_patient_id=parsed.patient.local_id,
        patient_name=parsed.patient.name,
        accession=parsed.accession,
        modality=parsed.modality,
        description=parsed.study_description,
        study_date=parsed.study_date,
        study_time=parsed.study_time,
        dicom_priority=order_matching.dicom_priority(order) if order is not None else parsed.priority,
    )


async def _series(db: AsyncSession, parsed: ParsedInstance, study_id: str) -> Series:
    series = await db.scalar(select(Series).where(Series.series_uid == parsed.series_uid))
    if series is None:
        series = Series(
            series_uid=parsed.series_uid,
            study_id=study_id,
            modality=parsed.modality,
            number=parsed.series_number,
            description=parsed.series_description,
        )
        db.add(series)
        await db.flush()
    elif series.study_id != study_id:
        raise errors.InvalidDicom(f"series {parsed.series_uid} is stored already under another study")
    return series
