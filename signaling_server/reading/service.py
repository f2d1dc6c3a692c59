"""Named actions and queries on the reading queue: list with filters, read one study, register an order,
claim, renew and release the reader's lock.

The lock follows DICOM UPS semantics: only the holder may report on or release the study. A claim is one guarded
UPDATE (free, expired, or already ours), so two readers claiming at the same instant on PostgreSQL cannot both
win; a claim lapses after `Settings.lock_minutes` unless renewed, so a closed browser never strands a study.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydicom.uid import generate_uid
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.access import policy
from signaling_server.access.policy import Scope, Sight
from signaling_server.api import body
from signaling_server.auth.identity import Caller
from signaling_server.db.models import Consultation, Patient, PatientIdentifier, Site, Study, StudyEvent, User
from signaling_server.reading.state import PRIORITY_RANK, Priority, StudyState
from signaling_server.reading.targets import Targets, targets_of

log = logging.getLogger(__name__)

READER_ROLES = ("expert",)
# The turnaround clock runs from examined until approved (CLINICAL.md §4).
UNAPPROVED_WITH_CLOCK = (StudyState.EXAMINED, StudyState.MATCHED, StudyState.REPORTED)
MODALITIES = ("CR", "DX", "CT", "US", "MR", "MG", "XA", "RF", "NM", "OT")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StudyView:
    study: Study
    site: Site
    lock_holder: User | None
    exam_type: str | None = None  # thyroid | carotid for a study made in a live consultation
    sight: Sight = Sight.FULL  # DEIDENTIFIED: shown without the patient's name and IDs (trainers)

    def lock_active(self, at: datetime) -> bool:
        return (
            self.lock_holder is not None and self.study.lock_expires_at is not None and self.study.lock_expires_at > at
        )


@dataclass(frozen=True)
class QueueFilter:
    site: str = ""
    modality: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    priority: tuple[str, ...] = ()
    patient: str = ""  # regional patient id
    overdue: bool = False

    @classmethod
    def from_query(cls, query: dict[str, str]) -> QueueFilter:
        def split(key: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
            values = tuple(v.strip() for v in query.get(key, "").split(",") if v.strip())
            bad = [v for v in values if v not in allowed]
            if bad:
                raise errors.InvalidRequest(f"{key}: unknown value(s) {', '.join(bad)}; allowed: {', '.join(allowed)}")
            return values

        overdue = query.get("overdue", "")
        if overdue not in ("", "0", "1", "true", "false"):
            raise errors.InvalidRequest("overdue: use 1 or 0")
        return cls(
            site=query.get("site", ""),
            modality=split("modality", MODALITIES),
            state=split("state", tuple(s.value for s in StudyState)),
            priority=split("priority", tuple(p.value for p in Priority)),
            patient=query.get("patient", ""),
            overdue=overdue in ("1", "true"),
        )


async def _scope(db: AsyncSession, caller: Caller) -> Scope:
    """The reader's scope (signaling_server/access/policy.py); devices do not read the queue."""
    caller.require_user()
    return await policy.scope_of(db, caller)


async def list_queue(db: AsyncSession, caller: Caller, filt: QueueFilter, at: datetime) -> list[StudyView]:
    scope = await _scope(db, caller)
    query = select(Study).where(policy.study_clause(scope))
    if filt.site:
        site_ids = select(Site.id).where(or_(Site.id == filt.site, Site.code == filt.site))
        query = query.where(Study.site_id.in_(site_ids))
    if filt.modality:
        query = query.where(Study.modality.in_(filt.modality))
    if filt.state:
        query = query.where(Study.state.in_(filt.state))
    else:
        query = query.where(Study.state != StudyState.APPROVED)
    if filt.priority:
        query = query.where(Study.priority.in_(filt.priority))
    if filt.patient:
        query = query.where(Study.patient_id == filt.patient)
    if filt.overdue:
        query = query.where(Study.due_at < at, Study.state.in_(UNAPPROVED_WITH_CLOCK))
    rows = list((await db.scalars(query.limit(1000))).all())
    far = datetime.max.replace(tzinfo=UTC)
    rows.sort(key=lambda s: (PRIORITY_RANK[Priority(s.priority)], s.due_at or far, s.registered_at))
    return [await _view(db, s, policy.study_sight(scope, s)) for s in rows]


async def get_visible(db: AsyncSession, caller: Caller, study_id: str, *, least: Sight = Sight.FULL) -> StudyView:
    """The study if the caller sees it with at least `least` sight (reading: DEIDENTIFIED; acting on it: FULL)."""
    scope = await _scope(db, caller)
    study = await db.get(Study, study_id)
    sight = policy.study_sight(scope, study) if study is not None else Sight.NONE
    if study is None or sight < least:
        raise errors.NotFound("no such study")
    return await _view(db, study, sight)


async def priors(db: AsyncSession, caller: Caller, view: StudyView) -> list[StudyView]:
    """Every other study of the same regional patient that the caller sees in full, from any site, newest first.

    A link between identities shows nobody anything new: a prior from another site appears only when the caller
    serves that site or holds a grant on it. De-identified readers get no priors (they would tie studies together).
    """
    study = view.study
    if study.patient_id is None or view.sight < Sight.FULL:
        return []
    scope = await _scope(db, caller)
    query = select(Study).where(
        Study.patient_id == study.patient_id, Study.id != study.id, policy.study_clause(scope, least=Sight.FULL)
    )
    rows = (await db.scalars(query.order_by(Study.registered_at.desc()).limit(100))).all()
    return [await _view(db, s, Sight.FULL) for s in rows]


async def _view(db: AsyncSession, study: Study, sight: Sight = Sight.FULL) -> StudyView:
    site = await db.get(Site, study.site_id)
    holder = await db.get(User, study.lock_holder_id) if study.lock_holder_id else None
    consultation = await db.get(Consultation, study.consultation_id) if study.consultation_id else None
    assert site is not None
    return StudyView(study, site, holder, consultation.exam_type if consultation else None, sight)


async def register_order(db: AsyncSession, caller: Caller, data: dict[str, Any], at: datetime) -> Study:
    """A community centre announces a study before its images arrive (state registered, no clock yet)."""
    user = caller.require_user("sonographer", "admin")
    site_id = user.site_id if user.role == "sonographer" else body.text(data, "site_id", max_len=32)
    if await db.get(Site, site_id) is None:
        raise errors.InvalidRequest("site_id: no such site")
    if site_id not in (await _scope(db, caller)).sites:
        raise errors.Forbidden("you register orders for the sites you serve only")
    patient = body.obj(data, "patient")
    local_id = body.text(patient, "id", max_len=64)
    accession = body.text(data, "accession", max_len=16)
    modality = body.choice(data, "modality", MODALITIES)
    priority = body.choice(data, "priority", [p.value for p in Priority], required=False) or Priority.ROUTINE
    study_uid = body.text(data, "study_uid", max_len=64, required=False) or generate_uid()
    if await db.scalar(select(Study.id).where(Study.study_uid == study_uid)):
        raise errors.Conflict("a study with this Study Instance UID already exists")
    identifier = await db.scalar(
        select(PatientIdentifier).where(PatientIdentifier.site_id == site_id, PatientIdentifier.local_id == local_id)
    )
    if identifier is None:
        regional = Patient(
            name=body.text(patient, "name", max_len=200),
            birth_date=body.date(patient, "birth_date").replace("-", ""),
            sex=body.choice(patient, "sex", ("M", "F", "O"), required=False),
        )
        db.add(regional)
        await db.flush()
        db.add(
            PatientIdentifier(
                patient_id=regional.id,
                site_id=site_id,
                local_id=local_id,
                name=regional.name,
                birth_date=regional.birth_date,
                sex=regional.sex,
            )
        )
        patient_id = regional.id
    else:
        patient_id = identifier.patient_id
    study = Study(
        study_uid=study_uid,
        site_id=site_id,
        patient_id=patient_id,
        local_patient_id=local_id,
        patient_name=body.text(patient, "name", max_len=200),
        accession=accession,
        modality=modality,
        description=body.text(data, "description", max_len=200, required=False),
        state=StudyState.REGISTERED,
        priority=priority,
        registered_at=at,
        instance_count=0,
    )
    db.add(study)
    await db.flush()
    db.add(StudyEvent(study_id=study.id, at=at, kind="registered", user_id=user.id, detail={"by": "order"}))
    await db.commit()
    return study


async def set_priority(db: AsyncSession, caller: Caller, study_id: str, data: dict[str, Any], targets: Targets) -> None:
    user = caller.require_user(*READER_ROLES, "admin")
    study = (await get_visible(db, caller, study_id)).study
    priority = Priority(body.choice(data, "priority", [p.value for p in Priority]))
    old = study.priority
    study.priority = priority
    if study.examined_at is not None:
        site_targets = await targets_of(db, targets, study.site_id)
        study.due_at = site_targets.due(study.modality, priority, study.examined_at)
    db.add(StudyEvent(study_id=study.id, kind="priority", user_id=user.id, detail={"from": old, "to": priority}))
    await db.commit()


async def claim(db: AsyncSession, caller: Caller, study_id: str, lock_minutes: float, at: datetime) -> Study:
    """Take (or renew) the reader's lock; raises StudyLocked when someone else holds a live lock."""
    user = caller.require_user(*READER_ROLES)
    study = (await get_visible(db, caller, study_id)).study
    if study.state not in (StudyState.MATCHED, StudyState.REPORTED, StudyState.APPROVED, StudyState.EXAMINED):
        raise errors.InvalidTransition(f"a study that is {study.state} has no images to read yet")
    expires = at + timedelta(minutes=lock_minutes)
    renewing = study.lock_holder_id == user.id
    result = await db.execute(
        update(Study)
        .where(
            Study.id == study.id,
            or_(Study.lock_holder_id.is_(None), Study.lock_expires_at <= at, Study.lock_holder_id == user.id),
        )
        .values(lock_holder_id=user.id, lock_expires_at=expires)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await db.rollback()
        holder = await db.scalar(
            select(User.name).join(Study, Study.lock_holder_id == User.id).where(Study.id == study_id)
        )
        raise errors.StudyLocked(f"the study is being read by {holder or 'another reader'}")
    if not renewing:
        db.add(StudyEvent(study_id=study.id, at=at, kind="claimed", user_id=user.id, detail={}))
        log.info("study %s: claimed by %s until %s", study.study_uid, user.username, expires.isoformat())
    await db.commit()
    await db.refresh(study)
    return study


def require_lock(study: Study, user: User, at: datetime) -> None:
    """Only the holder of a live lock may report on the study."""
    if study.lock_holder_id != user.id or study.lock_expires_at is None or study.lock_expires_at <= at:
        raise errors.NotLockHolder("claim the study first: only the reader holding its lock may do this")


async def release(db: AsyncSession, caller: Caller, study_id: str, at: datetime, *, reason: str = "released") -> None:
    user = caller.require_user(*READER_ROLES, "admin")
    study = (await get_visible(db, caller, study_id)).study
    if user.role != "admin":
        require_lock(study, user, at)
    await _drop_lock(db, study, user, at, reason)
    await db.commit()


async def _drop_lock(db: AsyncSession, study: Study, user: User, at: datetime, reason: str) -> None:
    study.lock_holder_id = None
    study.lock_expires_at = None
    db.add(StudyEvent(study_id=study.id, at=at, kind=reason, user_id=user.id, detail={}))


async def counts(db: AsyncSession, caller: Caller, at: datetime) -> dict[str, int]:
    """Open studies and overdue studies, for the queue's header."""
    scope = await _scope(db, caller)
    base = select(func.count(Study.id)).where(Study.state != StudyState.APPROVED, policy.study_clause(scope))
    open_count = await db.scalar(base) or 0
    overdue = await db.scalar(base.where(Study.due_at < at, Study.state.in_(UNAPPROVED_WITH_CLOCK))) or 0
    return {"open": int(open_count), "overdue": int(overdue)}
