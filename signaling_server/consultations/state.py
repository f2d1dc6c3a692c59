"""The consultation state machine, declared once (the one move is :func:`transition`)::

    requested ──the first expert joins──▶ live ──end──▶ ended
        └──────────────cancel──────────────▶ cancelled

``ended`` and ``cancelled`` are final. Every move, and the request itself, writes a ``ConsultationEvent`` of kind
``state`` (:func:`trail`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

from signaling_server import errors
from signaling_server.db.models import Consultation, ConsultationEvent
from signaling_server.states import IllegalMove, Machine, move

log = logging.getLogger(__name__)


class ConsultationState(StrEnum):
    REQUESTED = "requested"
    LIVE = "live"
    ENDED = "ended"
    CANCELLED = "cancelled"


OPEN_STATES = (ConsultationState.REQUESTED, ConsultationState.LIVE)

MACHINE = Machine(
    "consultation",
    {
        ConsultationState.REQUESTED: {ConsultationState.LIVE, ConsultationState.CANCELLED},
        ConsultationState.LIVE: {ConsultationState.ENDED},
    },
    final={ConsultationState.ENDED, ConsultationState.CANCELLED},
    idempotent=False,  # ending an ended consultation is refused, not ignored
    log=log,
)


def trail(consultation: Consultation, old: ConsultationState | None, new: ConsultationState) -> ConsultationEvent:
    """The consultation's ``state`` event for a move (``old`` None: it was requested)."""
    detail = {"to": new} if old is None else {"from": old, "to": new}
    return ConsultationEvent(consultation_id=consultation.id, kind="state", detail=detail)


def transition(
    consultation: Consultation, new: ConsultationState, now: datetime, record: Callable[[ConsultationEvent], object]
) -> ConsultationState:
    """Move `consultation` to `new` (stamping its clock) and `record` the event, or raise InvalidTransition;
    returns the old state."""
    old = ConsultationState(consultation.state)

    def event(old: ConsultationState, new: ConsultationState) -> None:
        record(trail(consultation, old, new))

    try:
        consultation.state = move(MACHINE, old, new, entity_id=consultation.id, on_event=event)
    except IllegalMove as refused:
        raise errors.InvalidTransition(refused.message) from refused
    if new is ConsultationState.LIVE:
        consultation.started_at = now
    elif new in (ConsultationState.ENDED, ConsultationState.CANCELLED):
        consultation.ended_at = now
    return old
