"""The consultation state machine: requested → live → ended, or requested → cancelled."""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum

from signaling_server import errors
from signaling_server.db.models import Consultation

log = logging.getLogger(__name__)


class ConsultationState(StrEnum):
    REQUESTED = "requested"
    LIVE = "live"
    ENDED = "ended"
    CANCELLED = "cancelled"


OPEN_STATES = (ConsultationState.REQUESTED, ConsultationState.LIVE)

_ALLOWED: dict[ConsultationState, frozenset[ConsultationState]] = {
    ConsultationState.REQUESTED: frozenset({ConsultationState.LIVE, ConsultationState.CANCELLED}),
    ConsultationState.LIVE: frozenset({ConsultationState.ENDED}),
    ConsultationState.ENDED: frozenset(),
    ConsultationState.CANCELLED: frozenset(),
}


def transition(consultation: Consultation, new: ConsultationState, now: datetime) -> ConsultationState:
    """Move `consultation` to `new` or raise InvalidTransition; returns the old state."""
    old = ConsultationState(consultation.state)
    if new not in _ALLOWED[old]:
        raise errors.InvalidTransition(f"a consultation that is {old} cannot become {new}")
    consultation.state = new
    if new is ConsultationState.LIVE:
        consultation.started_at = now
    elif new in (ConsultationState.ENDED, ConsultationState.CANCELLED):
        consultation.ended_at = now
    log.info("consultation %s: %s -> %s", consultation.id, old, new)
    return old
