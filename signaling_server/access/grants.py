"""Access grants: the only way a user sees patient data beyond their own site and the sites they serve.

A grant has a kind, a grantee (one user, or one site: the users of that site and those who serve it), the objects
it opens and a validity window ``[valid_from, valid_until)``:

    consultation    opens a consultation (to observe it) and its patient's studies. Made by the server for the
                    expert who takes a consultation and for each observer invited to it; open-ended while the
                    consultation is open, closed when it ends or is cancelled.
    referral        opens a patient (every study of theirs, identified) or single studies, e.g. for a hospital
                    that receives the patient.
    shared_report   opens single reports (read and print), for mutual recognition of a result.

Registrars and admins make and revoke grants (`routes.py`); a revoked or expired grant opens nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.db.models import (
    AccessGrant,
    AccessGrantObject,
    Consultation,
    Patient,
    PatientIdentifier,
    Report,
    Site,
    Study,
    User,
)

log = logging.getLogger(__name__)

KINDS = ("consultation", "referral", "shared_report")
OBJECT_KINDS = ("patient", "study", "report", "consultation")
OPENS: dict[str, frozenset[str]] = {
    "consultation": frozenset({"consultation", "patient", "study"}),
    "referral": frozenset({"patient", "study"}),
    "shared_report": frozenset({"report"}),
}
_MODELS: dict[str, Any] = {"patient": Patient, "study": Study, "report": Report, "consultation": Consultation}
MAX_OBJECTS = 100


@dataclass(frozen=True)
class Opened:
    """What a caller's grants open right now, by kind of object."""

    patients: frozenset[str] = frozenset()
    studies: frozenset[str] = frozenset()
    reports: frozenset[str] = frozenset()
    consultations: frozenset[str] = frozenset()


def active(at: datetime) -> ColumnElement[bool]:
    return and_(
        AccessGrant.revoked_at.is_(None),
        AccessGrant.valid_from <= at,
        or_(AccessGrant.valid_until.is_(None), AccessGrant.valid_until > at),
    )


async def opened_to(db: AsyncSession, user_id: str, site_ids: Iterable[str], at: datetime) -> Opened:
    """The objects opened to a user (directly, or to one of `site_ids`) by the grants valid at `at`."""
    grantee = or_(AccessGrant.grantee_user_id == user_id, AccessGrant.grantee_site_id.in_(list(site_ids)))
    query = (
        select(AccessGrantObject.kind, AccessGrantObject.object_id)
        .join(AccessGrant, AccessGrant.id == AccessGrantObject.grant_id)
        .where(grantee, active(at))
    )
    found: dict[str, set[str]] = defaultdict(set)
    for kind, object_id in (await db.execute(query)).all():
        found[kind].add(object_id)
    if found["patient"]:  # a grant follows its patient into the identity they were linked into
        merged = select(Patient.merged_into_id).where(
            Patient.id.in_(found["patient"]), Patient.merged_into_id.is_not(None)
        )
        found["patient"] |= {p for p in await db.scalars(merged) if p}
    return Opened(
        frozenset(found["patient"]),
        frozenset(found["study"]),
        frozenset(found["report"]),
        frozenset(found["consultation"]),
    )


async def create(
    db: AsyncSession,
    *,
    kind: str,
    grantee_user_id: str | None,
    grantee_site_id: str | None,
    objects: list[tuple[str, str]],
    valid_from: datetime,
    valid_until: datetime | None,
    reason: str,
    by: str | None,
    at: datetime,
) -> AccessGrant:
    """Check and store a grant. Does not commit."""
    if kind not in KINDS:
        raise errors.InvalidRequest(f"kind must be one of {', '.join(KINDS)}")
    if (grantee_user_id is None) == (grantee_site_id is None):
        raise errors.InvalidRequest("a grant names one grantee: a user_id or a site_id")
    if grantee_user_id is not None and await db.get(User, grantee_user_id) is None:
        raise errors.InvalidRequest("grantee: no such user")
    if grantee_site_id is not None and await db.get(Site, grantee_site_id) is None:
        raise errors.InvalidRequest("grantee: no such site")
    if valid_until is None and (kind != "consultation" or not any(k == "consultation" for k, _ in objects)):
        raise errors.InvalidRequest(
            "valid_until: say until when the grant holds (only a consultation's grant runs until it closes)"
        )
    if valid_until is not None and valid_until <= valid_from:
        raise errors.InvalidRequest("valid_until must be after valid_from")
    if not objects or len(objects) > MAX_OBJECTS:
        raise errors.InvalidRequest(f"objects: name 1 to {MAX_OBJECTS} objects the grant opens")
    for object_kind, object_id in objects:
        if object_kind not in OPENS[kind]:
            raise errors.InvalidRequest(f"a {kind} grant opens {', '.join(sorted(OPENS[kind]))}, not a {object_kind}")
        found = await db.get(_MODELS[object_kind], object_id)
        if found is None or (isinstance(found, Patient) and found.merged_into_id is not None):
            raise errors.InvalidRequest(f"objects: no {object_kind} {object_id[:40]!r}")
    grant = AccessGrant(
        kind=kind,
        grantee_user_id=grantee_user_id,
        grantee_site_id=grantee_site_id,
        valid_from=valid_from,
        valid_until=valid_until,
        reason=reason,
        created_by_id=by,
        created_at=at,
    )
    db.add(grant)
    await db.flush()
    for object_kind, object_id in dict.fromkeys(objects):
        db.add(AccessGrantObject(grant_id=grant.id, kind=object_kind, object_id=object_id))
    await db.flush()
    log.info("grant %s: %s to %s opens %d objects (by %s)", grant.id, kind, grantee_user_id or grantee_site_id,
             len(objects), by)  # fmt: skip
    return grant


async def revoke(db: AsyncSession, grant_id: str, *, by: str, at: datetime) -> AccessGrant:
    """Revoke a grant now (a second revocation changes nothing). Does not commit."""
    grant = await db.get(AccessGrant, grant_id)
    if grant is None:
        raise errors.NotFound("no such grant")
    if grant.revoked_at is None:
        grant.revoked_at, grant.revoked_by_id = at, by
        log.info("grant %s revoked by %s", grant.id, by)
    return grant


async def objects_of(db: AsyncSession, grant_ids: list[str]) -> dict[str, list[AccessGrantObject]]:
    found: dict[str, list[AccessGrantObject]] = defaultdict(list)
    if grant_ids:
        query = select(AccessGrantObject).where(AccessGrantObject.grant_id.in_(grant_ids))
        for row in await db.scalars(query.order_by(AccessGrantObject.id)):
            found[row.grant_id].append(row)
    return found


async def listing(
    db: AsyncSession, *, grantee_user_id: str | None = None, at: datetime | None = None
) -> list[AccessGrant]:
    """Grants, newest first: all, or one user's; with `at`, only those valid then."""
    query = select(AccessGrant).order_by(AccessGrant.created_at.desc()).limit(1000)
    if grantee_user_id is not None:
        query = query.where(AccessGrant.grantee_user_id == grantee_user_id)
    if at is not None:
        query = query.where(active(at))
    return list(await db.scalars(query))


# --- the grants a consultation makes ------------------------------------------------------------------------------


async def open_for_consultation(
    db: AsyncSession, consultation: Consultation, user_id: str, *, by: str | None, at: datetime, reason: str
) -> AccessGrant:
    """A grant to `user_id` of the consultation and its patient's studies, until the consultation closes."""
    objects = [("consultation", consultation.id)]
    patient_id = await db.scalar(
        select(PatientIdentifier.patient_id).where(
            PatientIdentifier.site_id == consultation.site_id, PatientIdentifier.local_id == consultation.patient_id
        )
    )
    if patient_id is not None:
        objects.append(("patient", patient_id))
    return await create(
        db, kind="consultation", grantee_user_id=user_id, grantee_site_id=None, objects=objects,
        valid_from=at, valid_until=None, reason=reason, by=by, at=at,
    )  # fmt: skip


async def close_for_consultation(db: AsyncSession, consultation_id: str, at: datetime) -> None:
    """The consultation ended or was cancelled: its open-ended grants end now. Does not commit."""
    theirs = select(AccessGrantObject.grant_id).where(
        AccessGrantObject.kind == "consultation", AccessGrantObject.object_id == consultation_id
    )
    query = (
        update(AccessGrant)
        .where(AccessGrant.id.in_(theirs), AccessGrant.kind == "consultation", AccessGrant.valid_until.is_(None))
        .values(valid_until=at)
        .execution_options(synchronize_session=False)
    )
    await db.execute(query)
