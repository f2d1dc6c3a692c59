"""signaling_server.reading.state: the study's declared moves pass, stamp their clocks and write their events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from signaling_server import errors
from signaling_server.db.models import Study, StudyEvent
from signaling_server.reading.state import MACHINE, StudyState, transition

S = StudyState
NOW = datetime(2026, 1, 1, tzinfo=UTC)
CLOCKS = {S.EXAMINED: "examined_at", S.REPORTED: "reported_at", S.APPROVED: "approved_at"}
EVENTS = {S.EXAMINED: ("examined", {}), S.MATCHED: ("matched", {"patient_id": "p1"})}


@pytest.mark.parametrize(("old", "new"), MACHINE.edges())
def test_every_allowed_move_passes(old: StudyState, new: StudyState) -> None:
    study = Study(id="s1", study_uid="1.2.3", state=old, patient_id="p1")
    events: list[StudyEvent] = []
    assert transition(study, new, NOW, events.append) is old
    assert study.state is new
    if new in CLOCKS:
        assert getattr(study, CLOCKS[new]) == NOW
    # reported and approved are recorded by the report's move (report_signed, report_approved)
    assert [(e.kind, e.detail) for e in events] == ([EVENTS[new]] if new in EVENTS else [])


@pytest.mark.parametrize(
    ("old", "new"),
    [(S.REGISTERED, S.MATCHED), (S.EXAMINED, S.REPORTED), (S.MATCHED, S.APPROVED), (S.APPROVED, S.APPROVED),
     (S.REPORTED, S.MATCHED), (S.EXAMINED, S.EXAMINED)],
)
def test_other_moves_are_refused(old: StudyState, new: StudyState) -> None:
    study = Study(id="s1", study_uid="1.2.3", state=old)
    events: list[StudyEvent] = []
    with pytest.raises(errors.InvalidTransition, match=f"a study that is {old} cannot become {new}") as refused:
        transition(study, new, NOW, events.append)
    assert refused.value.code == "invalid_transition"
    assert study.state is old and events == []
