"""The report state machine: draft → preliminary (signed) → final (approved by a senior).

A final report is never overwritten: a correction is an addendum, a new version whose `amends_id` points at it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum

from signaling_server import errors
from signaling_server.db.models import Report

log = logging.getLogger(__name__)


class ReportState(StrEnum):
    DRAFT = "draft"
    PRELIMINARY = "preliminary"
    FINAL = "final"


class ReportKind(StrEnum):
    FREE_TEXT = "free_text"
    THYROID = "thyroid"
    CAROTID = "carotid"


_ALLOWED: dict[ReportState, frozenset[ReportState]] = {
    ReportState.DRAFT: frozenset({ReportState.PRELIMINARY}),
    ReportState.PRELIMINARY: frozenset({ReportState.FINAL}),
    ReportState.FINAL: frozenset(),
}


def transition(report: Report, new: ReportState, now: datetime) -> ReportState:
    """Move `report` to `new` or raise InvalidTransition; stamps signed/approved times; returns the old state."""
    old = ReportState(report.state)
    if new not in _ALLOWED[old]:
        raise errors.InvalidTransition(f"a report that is {old} cannot become {new}")
    report.state = new
    if new is ReportState.PRELIMINARY:
        report.signed_at = now
    elif new is ReportState.FINAL:
        report.approved_at = now
    log.info("report %s v%d: %s -> %s", report.study_id, report.version, old, new)
    return old
