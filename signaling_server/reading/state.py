"""The study state machine (CLINICAL.md §4): registered → examined → matched → reported → approved.

    registered  an order is known (or the first image created the study)
    examined    images have arrived: the turnaround clock starts
    matched     the images are tied to the regional patient identity (and to the order when there is one)
    reported    a preliminary report is signed
    approved    a senior has reviewed and approved the report

An addendum to an approved report, once signed, moves the study back to `reported` until it is approved in turn::

    registered ──▶ examined ──▶ matched ──▶ reported ──▶ approved
                                               ▲── addendum signed ──┘

The one move is :func:`transition`. Its event trail is the study's ``StudyEvent`` rows: ``examined`` and
``matched`` are written by the move itself; ``reported`` and ``approved`` by the report's move that causes them
(``report_signed``, ``report_approved``: signaling_server/reports/state.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

from signaling_server import errors
from signaling_server.db.models import Study, StudyEvent
from signaling_server.states import IllegalMove, Machine, move

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

MACHINE = Machine(
    "study",
    {
        StudyState.REGISTERED: {StudyState.EXAMINED},
        StudyState.EXAMINED: {StudyState.MATCHED},
        StudyState.MATCHED: {StudyState.REPORTED},
        StudyState.REPORTED: {StudyState.APPROVED},
        StudyState.APPROVED: {StudyState.REPORTED},
    },
    idempotent=False,
    context="study",
    log=log,
)


def transition(study: Study, new: StudyState, now: datetime, record: Callable[[StudyEvent], object]) -> StudyState:
    """Move `study` to `new` or raise InvalidTransition; stamps the clock of the new state and, for `examined`
    and `matched`, `record`s the event; returns the old state."""
    old = StudyState(study.state)

    def event(old: StudyState, new: StudyState) -> None:
        if new is StudyState.EXAMINED:
            record(StudyEvent(study_id=study.id, at=now, kind="examined", detail={}))
        elif new is StudyState.MATCHED:
            record(StudyEvent(study_id=study.id, at=now, kind="matched", detail={"patient_id": study.patient_id}))

    try:
        study.state = move(MACHINE, old, new, entity_id=study.study_uid, on_event=event)
    except IllegalMove as refused:
        raise errors.InvalidTransition(refused.message) from refused
    if new is StudyState.EXAMINED:
        study.examined_at = now
    elif new is StudyState.REPORTED:
        study.reported_at = now
    elif new is StudyState.APPROVED:
        study.approved_at = now
    return old
