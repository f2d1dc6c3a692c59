"""The critical finding's state machine, declared once and computed from the finding's own columns::

    flagged ──no acknowledgement within finding_escalation_minutes──▶ escalated ──▶ escalated (one level more)
       │                                                                  │
       └──────────────── someone at the referring centre acknowledges ────┴──▶ acknowledged (final)

No column stores the state: :func:`state_of` reads it from ``acknowledged_at`` and ``escalation_level``, which the
two moves (:func:`acknowledge`, :func:`escalate`) are the only code to set; :func:`is_open` is the same rule in
SQL. Each move writes the study's event
(``critical_acknowledged``, ``critical_escalated`` with the new level); flagging writes ``critical_finding``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement

from signaling_server import errors
from signaling_server.db.models import CriticalFinding, StudyEvent
from signaling_server.states import IllegalMove, Machine, move

log = logging.getLogger(__name__)


class FindingState(StrEnum):
    FLAGGED = "flagged"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"


OPEN_STATES = (FindingState.FLAGGED, FindingState.ESCALATED)  # `GET /api/v1/findings?state=open`

MACHINE = Machine(
    "critical finding",
    {
        FindingState.FLAGGED: {FindingState.ESCALATED, FindingState.ACKNOWLEDGED},
        FindingState.ESCALATED: {FindingState.ESCALATED, FindingState.ACKNOWLEDGED},
    },
    final={FindingState.ACKNOWLEDGED},
    idempotent=False,  # a second acknowledgement is refused
    context="study",
    log=log,
)


def state_of(finding: CriticalFinding) -> FindingState:
    """The finding's state, from its columns (the one place that reads them as a state)."""
    if finding.acknowledged_at is not None:
        return FindingState.ACKNOWLEDGED
    return FindingState.ESCALATED if finding.escalation_level > 0 else FindingState.FLAGGED


def is_open() -> ColumnElement[bool]:
    """``state_of(finding) in OPEN_STATES`` as a SQL condition, for queries."""
    return CriticalFinding.acknowledged_at.is_(None)


def acknowledge(finding: CriticalFinding, by: str, at: datetime, record: Callable[[StudyEvent], object]) -> None:
    """User `by` acknowledges the finding (raises InvalidTransition if it already is); `record`s the event."""

    def event(old: FindingState, new: FindingState) -> None:
        detail = {"id": finding.id}
        record(StudyEvent(study_id=finding.study_id, at=at, kind="critical_acknowledged", user_id=by, detail=detail))

    try:
        _move(finding, FindingState.ACKNOWLEDGED, event)
    except IllegalMove as refused:
        raise errors.InvalidTransition("this critical finding is already acknowledged") from refused
    finding.acknowledged_by_id = by
    finding.acknowledged_at = at
    finding.next_escalation_at = None


def escalate(
    finding: CriticalFinding, at: datetime, escalate_after: timedelta, record: Callable[[StudyEvent], object]
) -> None:
    """The finding went unacknowledged past its escalation time: one level more; `record`s the event."""
    level = finding.escalation_level + 1

    def event(old: FindingState, new: FindingState) -> None:
        detail = {"id": finding.id, "level": level}
        record(StudyEvent(study_id=finding.study_id, at=at, kind="critical_escalated", detail=detail))

    try:
        _move(finding, FindingState.ESCALATED, event)
    except IllegalMove as refused:
        raise errors.InvalidTransition(refused.message) from refused
    finding.escalation_level = level
    finding.next_escalation_at = at + escalate_after
    log.warning("critical finding %s unacknowledged: escalated to level %d", finding.id, level)


def _move(
    finding: CriticalFinding, new: FindingState, event: Callable[[FindingState, FindingState], object]
) -> FindingState:
    return move(MACHINE, state_of(finding), new, entity_id=finding.id, context_id=finding.study_id, on_event=event)
