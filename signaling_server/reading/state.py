"""The study state machine (CLINICAL.md §4): registered → examined → matched → reported → approved.

    registered  an order is known (or the first image created the study)
    examined    images have arrived: the turnaround clock starts
    matched     the images are tied to the regional patient identity (and to the order when there is one)
    reported    a preliminary report is signed
    approved    a senior has reviewed and approved the report

An addendum to an approved report, once signed, moves the study back to `reported` until it is approved in turn.
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum

from signaling_server import errors
from signaling_server.db.models import Study

log = logging.getLogger(__name__)


class StudyState(StrEnum):
    REGISTERED = "registered"
    EXAMINED = "examined"
    MATCHED = "matched"
    REPORTED = "reported"
    APPROVED = "approved"


class Priority(StrEnum):
    STAT = "stat"
    URGENT = "urgent"
    ROUTINE = "routine"


PRIORITY_RANK = {Priority.STAT: 0, Priority.URGENT: 1, Priority.ROUTINE: 2}

_ALLOWED: dict[StudyState, frozenset[StudyState]] = {
    StudyState.REGISTERED: frozenset({StudyState.EXAMINED}),
    StudyState.EXAMINED: frozenset({StudyState.MATCHED}),
    StudyState.MATCHED: frozenset({StudyState.REPORTED}),
    StudyState.REPORTED: frozenset({StudyState.APPROVED}),
    StudyState.APPROVED: frozenset({StudyState.REPORTED}),
}


def transition(study: Study, new: StudyState, now: datetime) -> StudyState:
    """Move `study` to `new` or raise InvalidTransition; stamps the clock of the new state; returns the old one."""
    old = StudyState(study.state)
    if new not in _ALLOWED[old]:
        raise errors.InvalidTransition(f"a study that is {old} cannot become {new}")
    study.state = new
    if new is StudyState.EXAMINED:
        study.examined_at = now
    elif new is StudyState.REPORTED:
        study.reported_at = now
    elif new is StudyState.APPROVED:
        study.approved_at = now
    log.info("study %s: %s -> %s", study.study_uid, old, new)
    return old
