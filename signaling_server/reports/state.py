"""The report state machine, declared once (the one move is :func:`transition`)::

    draft ──the author signs──▶ preliminary ──a different expert approves──▶ final

A final report is never overwritten: a correction is an addendum, a new version whose `amends_id` points at it.
Each move writes the study's event (``report_signed``, ``report_approved``, with the version), which is also the
event of the study's move to ``reported`` or ``approved``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

from signaling_server import errors
from signaling_server.db.models import Report, StudyEvent
from signaling_server.states import IllegalMove, Machine, move

log = logging.getLogger(__name__)


class ReportState(StrEnum):
    DRAFT = "draft"
    PRELIMINARY = "preliminary"
    FINAL = "final"


class ReportKind(StrEnum):
    FREE_TEXT = "free_text"
    THYROID = "thyroid"
    CAROTID = "carotid"


MACHINE = Machine(
    "report",
    {ReportState.DRAFT: {ReportState.PRELIMINARY}, ReportState.PRELIMINARY: {ReportState.FINAL}},
    final={ReportState.FINAL},
    idempotent=False,  # approving a final report is refused
    context="study",
    log=log,
)
_EVENTS = {ReportState.PRELIMINARY: "report_signed", ReportState.FINAL: "report_approved"}


def transition(
    report: Report, new: ReportState, now: datetime, by: str, record: Callable[[StudyEvent], object]
) -> ReportState:
    """Move `report` to `new` or raise InvalidTransition; stamps signed/approved times and `record`s the study's
    event of the move, made by user `by`; returns the old state."""
    old = ReportState(report.state)

    def event(old: ReportState, new: ReportState) -> None:
        detail = {"version": report.version}
        record(StudyEvent(study_id=report.study_id, at=now, kind=_EVENTS[new], user_id=by, detail=detail))

    try:
        report.state = move(
            MACHINE, old, new, entity_id=f"v{report.version}", context_id=report.study_id, on_event=event
        )
    except IllegalMove as refused:
        raise errors.InvalidTransition(refused.message) from refused
    if new is ReportState.PRELIMINARY:
        report.signed_at = now
    elif new is ReportState.FINAL:
        report.approved_at = now
    return old
