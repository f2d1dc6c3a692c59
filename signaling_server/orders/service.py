"""Named actions and queries on orders: place one, list, read, cancel.

Who: the doctors and sonographers of a community site place and cancel their site's orders; everyone whose scope
holds the ordering site (that site's people, the experts who serve it) lists and reads them
(`access.policy.order_sight`). Anyone else is told 404, as if the order did not exist.

An order names its patient as the site knows them (its own patient ID, name, birth date, sex): the regional
identity is found or made by the same rules as for arriving images (`dicomstore.identity.resolve_patient`). Its
accession number is generated (`RC` + the local date + 6 digits) or supplied; either way it is unique among all
orders for ever, cancelled ones included (`duplicate_accession`).
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from pydicom.uid import generate_uid
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.access import policy
from signaling_server.access.policy import Sight
from signaling_server.auth.identity import SITE_ROLES, Caller
from signaling_server.db.models import DicomPeer, Order, OrderEvent, Site, User
from signaling_server.dicomstore import identity
from signaling_server.dicomstore.parsing import Demographics
from signaling_server.orders import names
from signaling_server.orders.state import OrderState, transition
from signaling_server.reading.service import MODALITIES
from signaling_server.reading.state import Priority

log = logging.getLogger(__name__)

ORDERING_ROLES = SITE_ROLES  # community doctors and sonographers order for their own site
LIST_LIMIT = 500
_ACCESSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,15}$")
_BODY_PART = re.compile(r"^[A-Z0-9_ ]{0,16}$")  # a DICOM CS value (BodyPartExamined)
_AE = re.compile(r"^[ -\[\]-~]{1,16}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_GENERATE_ATTEMPTS = 5
_HORIZON = timedelta(days=366)  # an order is scheduled within a year of now, either way


@dataclass(frozen=True)
class OrderView:
    order: Order
    site: Site
    ordered_by: User | None
    cancelled_by: User | None
    events: tuple[OrderEvent, ...] = ()


def now() -> datetime:
    return datetime.now(UTC)


def _field(name: str, message: str) -> errors.InvalidOrder:
    return errors.InvalidOrder(name, message)


def _text(
    data: dict[str, Any], key: str, *, max_len: int, required: bool, lines: bool = False, within: str = ""
) -> str:
    name = f"{within}.{key}" if within else key
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _field(name, "is required")
        return ""
    if not isinstance(value, str):
        raise _field(name, "must be a string")
    value = value.strip()
    if len(value) > max_len:
        raise _field(name, f"is longer than {max_len} characters")
    if any(ord(c) < 32 and not (lines and c in "\n\t") for c in value):
        raise _field(name, "contains control characters")
    return value


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise _field(key, "must be an object")
    return value


@dataclass(frozen=True)
class Placing:
    """A checked order form."""

    patient: Demographics
    modality: str
    body_part: str
    description: str
    reason: str
    clinical_info: str
    priority: Priority
    accession: str  # "": generate one
    scheduled_at: datetime
    station_ae: str | None

    @classmethod
    def parse(cls, data: dict[str, Any], at: datetime) -> Placing:
        patient = _object(data, "patient")
        local_id = _text(patient, "id", max_len=64, required=True, within="patient")
        if "\\" in local_id:
            raise _field("patient.id", "must not contain '\\'")
        try:
            name = names.person_name(_text(patient, "name", max_len=200, required=True, within="patient"))
        except ValueError as exc:
            raise _field("patient.name", str(exc)) from None
        birth = _text(patient, "birth_date", max_len=10, required=False, within="patient")
        if birth:
            try:
                if not _DATE.match(birth):
                    raise ValueError
                datetime.strptime(birth, "%Y-%m-%d")
            except ValueError:
                raise _field("patient.birth_date", "must be a date YYYY-MM-DD") from None
        sex = _text(patient, "sex", max_len=1, required=False, within="patient")
        if sex not in ("", "M", "F", "O"):
            raise _field("patient.sex", "must be M, F or O")
        exam = _object(data, "exam")
        modality = _text(exam, "modality", max_len=16, required=True, within="exam").upper()
        if modality not in MODALITIES:
            raise _field("exam.modality", f"must be one of {', '.join(MODALITIES)}")
        body_part = _text(exam, "body_part", max_len=16, required=False, within="exam").upper()
        if not _BODY_PART.match(body_part):
            raise _field("exam.body_part", "is a DICOM body part code: capitals, digits, '_' (e.g. THYROID)")
        description = _text(exam, "description", max_len=64, required=False, within="exam")
        description = description or f"{modality} {body_part}".strip()
        if "\\" in description:
            raise _field("exam.description", "must not contain '\\'")
        priority = _text(data, "priority", max_len=8, required=False) or Priority.ROUTINE
        if priority not in {p.value for p in Priority}:
            raise _field("priority", "must be routine, urgent or stat")
        accession = _text(data, "accession", max_len=16, required=False)
        if accession and not _ACCESSION.match(accession):
            raise _field("accession", "1-16 letters, digits, '.', '_' or '-', starting with a letter or digit")
        station = _text(data, "station_ae", max_len=16, required=False)
        if station and not _AE.match(station):
            raise _field("station_ae", "an AE title is 1-16 printable ASCII characters without '\\'")
        return cls(
            patient=Demographics(local_id, name, birth.replace("-", ""), sex),
            modality=modality,
            body_part=body_part,
            description=description,
            reason=_text(data, "reason", max_len=2000, required=True, lines=True),
            clinical_info=_text(data, "clinical_info", max_len=4000, required=False, lines=True),
            priority=Priority(priority),
            accession=accession,
            scheduled_at=_scheduled(data, at),
            station_ae=station or None,
        )


def _scheduled(data: dict[str, Any], at: datetime) -> datetime:
    text = _text(data, "scheduled_at", max_len=40, required=False)
    if not text:
        return at
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _field("scheduled_at", "must be a date and time with its zone (ISO 8601)") from None
    if when.tzinfo is None:
        raise _field("scheduled_at", "must say its time zone (e.g. 2026-12-08T09:30+08:00)")
    if abs(when - at) > _HORIZON:
        raise _field("scheduled_at", "must be within a year of now")
    return when.astimezone(UTC)


def generate_accession(at: datetime, zone: tzinfo) -> str:
    """RC + the local date (YYMMDD) + 6 random digits: 14 characters, fits SH (16)."""
    return f"RC{at.astimezone(zone):%y%m%d}{secrets.randbelow(10**6):06d}"


async def place(
    db: AsyncSession, caller: Caller, data: dict[str, Any], at: datetime, *, issuer: str, zone: tzinfo
) -> Order:
    """A doctor or sonographer orders an exam for their own site: the order is scheduled (on the worklist)."""
    user = caller.require_user(*ORDERING_ROLES)
    if user.site_id is None:
        raise errors.Forbidden("you belong to no site: an order is placed by the site that performs the exam")
    form = Placing.parse(data, at)
    if form.station_ae is not None:
        peer = await db.scalar(select(DicomPeer).where(DicomPeer.ae_title == form.station_ae))
        if peer is None or peer.site_id != user.site_id:
            raise _field("station_ae", "no DICOM peer of your site has this AE title")
    if form.accession and await _taken(db, form.accession):
        raise errors.DuplicateAccession(f"accession number {form.accession} is used by another order")
    for attempt in range(1, _GENERATE_ATTEMPTS + 1):
        accession = form.accession or generate_accession(at, zone)
        try:
            order = await _insert(db, user, form, accession, at, issuer)
        except IntegrityError:  # the number taken meanwhile, or the patient's first identity made meanwhile
            await db.rollback()
            if form.accession and await _taken(db, accession):
                raise errors.DuplicateAccession(f"accession number {accession} is used by another order") from None
            if attempt == _GENERATE_ATTEMPTS:
                raise
            continue
        log.info(
            "site %s: order %s (%s %s, %s) placed by %s", order.site_id, order.accession, order.modality,
            order.body_part, order.priority, user.username,
        )  # fmt: skip
        return order
    raise AssertionError("unreachable")


async def _taken(db: AsyncSession, accession: str) -> bool:
    return await db.scalar(select(Order.id).where(Order.accession == accession)) is not None


async def _insert(
    db: AsyncSession, user: User, form: Placing, accession: str, at: datetime, issuer: str
) -> Order:
    assert user.site_id is not None
    patient_id = await identity.resolve_patient(db, user.site_id, form.patient, issuer=issuer, now=at)
    order = Order(
        accession=accession,
        site_id=user.site_id,
        ordered_by_id=user.id,
        patient_id=patient_id,
        local_patient_id=form.patient.local_id,
        patient_name=form.patient.name,
        patient_birth_date=form.patient.birth_date,
        patient_sex=form.patient.sex,
        modality=form.modality,
        body_part=form.body_part,
        description=form.description,
        reason=form.reason,
        clinical_info=form.clinical_info,
        priority=form.priority,
        station_ae=form.station_ae,
        scheduled_at=form.scheduled_at,
        study_uid=generate_uid(),
        state=OrderState.SCHEDULED,
        created_at=at,
        cancel_reason="",
    )
    db.add(order)
    await db.flush()
    db.add(OrderEvent(order_id=order.id, at=at, kind="placed", user_id=user.id, detail={"priority": order.priority}))
    await db.commit()
    return order


async def list_visible(db: AsyncSession, caller: Caller, query: dict[str, str]) -> list[OrderView]:
    """The orders the caller sees, newest first; `state` (comma-separated) and `site` (id or code) narrow it."""
    caller.require_user()
    scope = await policy.scope_of(db, caller)
    stmt = select(Order).where(policy.order_clause(scope))
    states = [s.strip() for s in query.get("state", "").split(",") if s.strip()]
    bad = [s for s in states if s not in {v.value for v in OrderState}]
    if bad:
        raise errors.InvalidRequest(f"state: unknown value(s) {', '.join(bad)}")
    if states:
        stmt = stmt.where(Order.state.in_(states))
    if query.get("site"):
        site = query["site"][:64]
        stmt = stmt.where(Order.site_id.in_(select(Site.id).where(or_(Site.id == site, Site.code == site))))
    rows = await db.scalars(stmt.order_by(Order.created_at.desc(), Order.id).limit(LIST_LIMIT))
    return [await _view(db, order) for order in rows]


async def get_visible(db: AsyncSession, caller: Caller, order_id: str, *, events: bool = False) -> OrderView:
    caller.require_user()
    scope = await policy.scope_of(db, caller)
    order = await db.get(Order, order_id)
    if order is None or policy.order_sight(scope, order) < Sight.FULL:
        raise errors.NotFound("no such order")
    return await _view(db, order, events=events)


async def cancel(db: AsyncSession, caller: Caller, order_id: str, data: dict[str, Any], at: datetime) -> Order:
    """The ordering side withdraws a scheduled order, with a reason; refused once images arrived."""
    order = (await get_visible(db, caller, order_id)).order
    user = caller.require_user()
    if user.role not in ORDERING_ROLES or user.site_id != order.site_id:
        raise errors.Forbidden("an order is cancelled by the site that placed it")
    reason = _text(data, "reason", max_len=2000, required=True, lines=True)
    old = transition(order, OrderState.CANCELLED, at, user.id, db.add, reason=reason)
    with db.no_autoflush:  # images arriving at the same moment: the guarded UPDATE lets one win
        result = await db.execute(
            update(Order)
            .where(Order.id == order.id, Order.state == old)
            .values(state=order.state, cancelled_at=at, cancelled_by_id=user.id, cancel_reason=reason)
            .execution_options(synchronize_session=False)
        )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await db.rollback()
        raise errors.InvalidTransition("images of this order arrived meanwhile: it can no longer be cancelled")
    order.cancel_reason = reason
    await db.commit()
    return order


async def _view(db: AsyncSession, order: Order, *, events: bool = False) -> OrderView:
    site = await db.get(Site, order.site_id)
    assert site is not None
    trail: tuple[OrderEvent, ...] = ()
    if events:
        query = select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
        trail = tuple(await db.scalars(query))
    return OrderView(
        order,
        site,
        await db.get(User, order.ordered_by_id),
        await db.get(User, order.cancelled_by_id) if order.cancelled_by_id else None,
        trail,
    )
