"""Named actions and queries on consultations. Each takes an open AsyncSession and commits its own work."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydicom.uid import generate_uid
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.access import grants, policy
from signaling_server.access.policy import Sight
from signaling_server.api import body
from signaling_server.auth.identity import Caller
from signaling_server.consultations.state import OPEN_STATES, ConsultationState, trail, transition
from signaling_server.db.models import (
    ChatMessage,
    Consultation,
    ConsultationEvent,
    Device,
    Site,
    User,
)

EXAM_TYPES = ("thyroid", "carotid")
SEXES = ("F", "M", "O", "")
INVITABLE_ROLES = ("expert", "trainer", "admin", "registrar")


@dataclass(frozen=True)
class ConsultationView:
    """A consultation with the rows a client needs to show it."""

    consultation: Consultation
    site: Site
    requested_by: User
    expert: User | None


def now() -> datetime:
    return datetime.now(UTC)


async def create(db: AsyncSession, user: User, data: dict[str, Any]) -> Consultation:
    if user.role != "sonographer" or user.site_id is None:
        raise errors.Forbidden("only a sonographer of a site requests a consultation")
    exam_type = body.choice(data, "exam_type", EXAM_TYPES)
    patient = body.obj(data, "patient")
    device_id = body.text(data, "device_id", max_len=32, required=False)
    device = await _device_for(db, user.site_id, device_id)
    consultation = Consultation(
        state=ConsultationState.REQUESTED,
        exam_type=exam_type,
        site_id=user.site_id,
        device_id=device.id,
        patient_id=body.text(patient, "id", max_len=64),
        patient_name=body.text(patient, "name", max_len=200),
        patient_sex=body.choice(patient, "sex", SEXES, required=False),
        patient_birth_date=body.date(patient, "birth_date"),
        accession=body.text(data, "accession", max_len=16, required=False),
        study_uid=generate_uid(),
        requested_by_id=user.id,
        requested_at=now(),
    )
    db.add(consultation)
    await db.flush()
    db.add(trail(consultation, None, ConsultationState.REQUESTED))
    await db.commit()
    return consultation


async def _device_for(db: AsyncSession, site_id: str, device_id: str) -> Device:
    query = select(Device).where(Device.site_id == site_id, Device.revoked.is_(False))
    if device_id:
        query = query.where(Device.id == device_id)
    device = (await db.scalars(query.order_by(Device.created_at).limit(1))).first()
    if device is None:
        raise errors.InvalidRequest("the site has no such active edge device")
    return device


async def list_visible(
    db: AsyncSession, caller: Caller, states: tuple[str, ...], ids: tuple[str, ...] | None = None
) -> list[ConsultationView]:
    """The consultations of the sites the caller serves (their own, for a sonographer), those their grants open,
    and for a device its own (signaling_server/access/policy.py); with `ids`, only those of them."""
    scope = await policy.scope_of(db, caller)
    query = select(Consultation).where(Consultation.state.in_(states), policy.consultation_clause(scope))
    if ids is not None:
        query = query.where(Consultation.id.in_(ids))
    rows = list((await db.scalars(query.order_by(Consultation.requested_at).limit(500))).all())
    return await _views(db, rows)


async def _views(db: AsyncSession, rows: list[Consultation]) -> list[ConsultationView]:
    """The views of many consultations with two queries in all (sites, people), not three per consultation."""
    site_ids = {c.site_id for c in rows}
    user_ids = {c.requested_by_id for c in rows} | {c.expert_id for c in rows if c.expert_id}
    sites = {s.id: s for s in (await db.scalars(select(Site).where(Site.id.in_(site_ids)))).all()} if rows else {}
    users = {u.id: u for u in (await db.scalars(select(User).where(User.id.in_(user_ids)))).all()} if rows else {}
    return [ConsultationView(c, sites[c.site_id], users[c.requested_by_id], users.get(c.expert_id or "")) for c in rows]


def list_version(views: list[ConsultationView]) -> str:
    """A short digest of which consultations are open and in which state: what a waiting edge compares."""
    seen = sorted(f"{v.consultation.id}:{v.consultation.state}" for v in views)
    return hashlib.sha256(",".join(seen).encode()).hexdigest()[:16]


async def same_secret(db: AsyncSession, device: Device) -> bool:
    """Whether the device's credential is still the one it called with (not rotated, not revoked, not removed)."""
    now = await db.get(Device, device.id, populate_existing=True)
    return now is not None and not now.revoked and now.secret_hash == device.secret_hash


async def get_visible(db: AsyncSession, caller: Caller, consultation_id: str) -> ConsultationView:
    return await _view(db, await _visible(db, caller, consultation_id))


async def _visible(db: AsyncSession, caller: Caller, consultation_id: str) -> Consultation:
    consultation = await db.get(Consultation, consultation_id)
    if consultation is None or policy.consultation_sight(await policy.scope_of(db, caller), consultation) < Sight.FULL:
        raise errors.NotFound("no such consultation")
    return consultation


async def chat_readable(db: AsyncSession, caller: Caller, consultation_id: str) -> ConsultationView:
    """The consultation, if the caller may read its chat history: its people, never the device that streams it."""
    consultation = await db.get(Consultation, consultation_id)
    if consultation is None or not policy.may_read_chat(await policy.scope_of(db, caller), consultation):
        if caller.device is not None and consultation is not None and policy.device_owns(caller, consultation):
            raise errors.Forbidden("an edge device streams the consultation; it does not read its chat history")
        raise errors.NotFound("no such consultation")
    return await _view(db, consultation)


async def _view(db: AsyncSession, consultation: Consultation) -> ConsultationView:
    site = await db.get(Site, consultation.site_id)
    requester = await db.get(User, consultation.requested_by_id)
    expert = await db.get(User, consultation.expert_id) if consultation.expert_id else None
    assert site is not None and requester is not None
    return ConsultationView(consultation, site, requester, expert)


async def _compare_and_set(
    db: AsyncSession, consultation: Consultation, new: ConsultationState, at: datetime | None = None, **values: Any
) -> None:
    """Persist a transition only if nobody moved the consultation meanwhile (portable optimistic lock)."""
    old = transition(consultation, new, now(), db.add)  # its event is written only if the update below wins
    with db.no_autoflush:  # the guarded UPDATE must see the row as it is, not our pending change
        result = await db.execute(
            update(Consultation)
            .where(Consultation.id == consultation.id, Consultation.state == old)
            .values(
                state=consultation.state,
                started_at=consultation.started_at,
                ended_at=consultation.ended_at,
                **values,
            )
            .execution_options(synchronize_session=False)
        )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await db.rollback()
        raise errors.InvalidTransition("the consultation changed meanwhile; reload it")
    for key, value in values.items():
        setattr(consultation, key, value)
    if new in (ConsultationState.ENDED, ConsultationState.CANCELLED):
        await grants.close_for_consultation(db, consultation.id, at or now())  # `at`: the access clock
    await db.commit()


async def end(db: AsyncSession, caller: Caller, consultation_id: str) -> ConsultationView:
    view = await get_visible(db, caller, consultation_id)
    user = caller.require_user()
    c = view.consultation
    if user.id not in (c.expert_id, c.requested_by_id):
        raise errors.NotParticipant("only the consultation's expert or sonographer ends it")
    await _compare_and_set(db, c, ConsultationState.ENDED, caller.at)
    return await _view(db, c)


async def cancel(db: AsyncSession, caller: Caller, consultation_id: str) -> ConsultationView:
    view = await get_visible(db, caller, consultation_id)
    user = caller.require_user()
    if user.id != view.consultation.requested_by_id and user.role != "admin":
        raise errors.NotParticipant("only the requesting sonographer or an admin cancels")
    await _compare_and_set(db, view.consultation, ConsultationState.CANCELLED, caller.at)
    return await _view(db, view.consultation)


async def admissible(db: AsyncSession, caller: Caller, consultation_id: str) -> None:
    """Refuse, before a WebSocket upgrade, anyone who may not be in the consultation's room at all."""
    consultation = await _visible(db, caller, consultation_id)
    if consultation.state not in OPEN_STATES:
        raise errors.InvalidTransition(f"the consultation is {consultation.state}")
    user = caller.user
    if user is not None and user.role == "sonographer" and user.id != consultation.requested_by_id:
        raise errors.NotParticipant("this consultation was requested by another sonographer")


async def admit(db: AsyncSession, caller: Caller, consultation_id: str, observe: bool) -> tuple[str, ConsultationView]:
    """Decide who `caller` is in the consultation's room; the first expert makes it live (and is granted its
    patient's studies until it closes). Anyone else who sees it in full observes."""
    consultation = await _visible(db, caller, consultation_id)
    if consultation.state not in OPEN_STATES:
        raise errors.InvalidTransition(f"the consultation is {consultation.state}")
    if caller.device is not None:
        return "edge", await _view(db, consultation)
    user = caller.require_user()
    if user.role == "sonographer":
        if user.id != consultation.requested_by_id:
            raise errors.NotParticipant("this consultation was requested by another sonographer")
        return "sonographer", await _view(db, consultation)
    if user.role == "expert" and not observe:
        if consultation.expert_id in (None, user.id):
            if consultation.state != ConsultationState.REQUESTED:
                return "expert", await _view(db, consultation)
            try:
                await _compare_and_set(db, consultation, ConsultationState.LIVE, expert_id=user.id)
                await grants.open_for_consultation(
                    db, consultation, user.id, by=user.id, at=caller.at, reason="took the consultation"
                )
                await db.commit()
                return "expert", await _view(db, consultation)
            except errors.InvalidTransition:
                await db.refresh(consultation)  # another expert took it a moment ago: observe
                if consultation.state not in OPEN_STATES:
                    raise
    if user.role in INVITABLE_ROLES:
        return "observer", await _view(db, consultation)
    raise errors.NotParticipant("not part of this consultation")


async def invite(db: AsyncSession, caller: Caller, consultation_id: str, user_id: str) -> str:
    """The consultation's expert or sonographer invites someone to observe it: a grant of the consultation and its
    patient's studies until it closes. Returns the grant's id."""
    view = await get_visible(db, caller, consultation_id)
    user = caller.require_user()
    c = view.consultation
    if user.id not in (c.expert_id, c.requested_by_id):
        raise errors.NotParticipant("only the consultation's expert or sonographer invites observers")
    if c.state not in OPEN_STATES:
        raise errors.InvalidTransition(f"the consultation is {c.state}")
    guest = await db.get(User, user_id)
    if guest is None or not guest.active or guest.role not in INVITABLE_ROLES:
        raise errors.InvalidRequest(f"user_id: no active {', '.join(INVITABLE_ROLES)} with this id")
    grant = await grants.open_for_consultation(db, c, guest.id, by=user.id, at=caller.at, reason="invited to observe")
    await db.commit()
    return grant.id


async def record_event(db: AsyncSession, consultation_id: str, kind: str, detail: dict[str, Any]) -> None:
    db.add(ConsultationEvent(consultation_id=consultation_id, kind=kind, detail=detail))
    await db.commit()


async def add_chat(
    db: AsyncSession, consultation_id: str, role: str, user_id: str | None, name: str, text: str
) -> ChatMessage:
    message = ChatMessage(
        consultation_id=consultation_id,
        sender_role=role,
        sender_user_id=user_id,
        sender_name=name,
        text=text,
        at=now(),
    )
    db.add(message)
    await db.commit()
    return message


async def chat_page(
    db: AsyncSession, consultation_id: str, *, before: int | None, limit: int
) -> tuple[list[ChatMessage], int | None]:
    """The newest `limit` chat lines older than line `before` (None: the newest), oldest first, and the cursor of
    the page before them (None when there is none)."""
    query = select(ChatMessage).where(ChatMessage.consultation_id == consultation_id)
    if before is not None:
        query = query.where(ChatMessage.id < before)
    newest_first = list((await db.scalars(query.order_by(ChatMessage.id.desc()).limit(limit + 1))).all())
    page = newest_first[:limit][::-1]
    return page, (page[0].id if len(newest_first) > limit else None)
