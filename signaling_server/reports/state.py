"""The report state machine, declared once (the one move is :func:`transition`)::

    draft ──the author signs──▶ preliminary ──a different expert approves──▶ archiving ──its SR is stored──▶ final

Approval is the expert's act: it stamps the approver and time, moves the study to ``approved`` and queues the
report's archive job in the same transaction; the report becomes final only once the archiver (archiver.py) has
stored its DICOM SR with the study, so a final report always has its SR. A final report is never overwritten: a
correction is an addendum, a new version whose `amends_id` points at it. Each move writes the study's event
(``report_signed``, ``report_approved``, ``report_archived``, with the version).
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
    ARCHIVING = "archiving"  # approved; its SR not stored yet
    FINAL = "final"


APPROVED = frozenset({ReportState.ARCHIVING, ReportState.FINAL})  # approved by a senior, whether archived or not


class ReportKind(StrEnum):
    FREE_TEXT = "free_text"
    THYROID = "thyroid"
    CAROTID = "carotid"


MACHINE = Machine(
    "report",
    {
        ReportState.DRAFT: {ReportState.PRELIMINARY},
        ReportState.PRELIMINARY: {ReportState.ARCHIVING},
        ReportState.ARCHIVING: {ReportState.FINAL},
    },
    final={ReportState.FINAL},
    idempotent=False,  # approving an approved report is refused
    context="study",
    log=log,
)
_EVENTS = {
    ReportState.PRELIMINARY: "report_signed",
    ReportState.ARCHIVING: "report_approved",
    ReportState.FINAL: "report_archived",
}


def transition(
    report: Report,
    new: ReportState,
    now: datetime,
    by: str | None,
    record: Callable[[StudyEvent], object],
    **detail: object,
) -> ReportState:
    """Move `report` to `new` or raise InvalidTransition; stamps signed/approved times and `record`s the study's
    event of the move, made by user `by`, with the version and `detail`; returns the old state."""
    old = ReportState(report.state)

    def event(old: ReportState, new: ReportState) -> None:
        detail["version"] = report.version
        record(StudyEvent(study_id=report.study_id, at=now, kind=_EVENTS[new], user_id=by, detail=detail))

    try:
        report.state = move(
            MACHINE, old, new, entity_id=f"v{report.version}", context_id=report.study_id, on_event=event
        )
    except IllegalMove as refused:
        raise errors.InvalidTransition(refused.message) from refused
    if new is ReportState.PRELIMINARY:
        report.signed_at = now
    elif new is ReportState.ARCHIVING:
        report.approved_at = now
    return old
