"""signaling_server.findings.state: the finding's explicit states, computed from its columns, and its two moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signaling_server import errors
from signaling_server.db.models import CriticalFinding, StudyEvent
from signaling_server.findings.state import MACHINE, OPEN_STATES, FindingState, acknowledge, escalate, state_of

F = FindingState
NOW = datetime(2026, 1, 1, tzinfo=UTC)
AFTER = timedelta(minutes=15)


def _finding(state: FindingState) -> CriticalFinding:
    finding = CriticalFinding(id="f1", study_id="s1", escalation_level=0, next_escalation_at=NOW)
    if state is F.ESCALATED:
        finding.escalation_level = 2
    if state is F.ACKNOWLEDGED:
        finding.acknowledged_at, finding.acknowledged_by_id, finding.next_escalation_at = NOW, "u0", None
    assert state_of(finding) is state
    return finding


def test_the_state_is_read_from_the_columns() -> None:
    finding = CriticalFinding(escalation_level=0)
    assert state_of(finding) is F.FLAGGED and F.FLAGGED in OPEN_STATES
    finding.escalation_level = 1
    assert state_of(finding) is F.ESCALATED and F.ESCALATED in OPEN_STATES
    finding.acknowledged_at = NOW
    assert state_of(finding) is F.ACKNOWLEDGED and F.ACKNOWLEDGED not in OPEN_STATES


@pytest.mark.parametrize(("old", "new"), MACHINE.edges())
def test_every_allowed_move_passes_and_writes_the_study_event(old: FindingState, new: FindingState) -> None:
    finding = _finding(old)
    level = finding.escalation_level
    events: list[StudyEvent] = []
    if new is F.ACKNOWLEDGED:
        acknowledge(finding, "u1", NOW, events.append)
        assert (finding.acknowledged_by_id, finding.next_escalation_at) == ("u1", None)
        assert [(e.kind, e.user_id, e.detail) for e in events] == [("critical_acknowledged", "u1", {"id": "f1"})]
    else:
        escalate(finding, NOW, AFTER, events.append)
        assert (finding.escalation_level, finding.next_escalation_at) == (level + 1, NOW + AFTER)
        assert [(e.kind, e.detail) for e in events] == [("critical_escalated", {"id": "f1", "level": level + 1})]
    assert state_of(finding) is new and events[0].study_id == "s1"


def test_a_second_acknowledgement_is_refused() -> None:
    finding = _finding(F.ACKNOWLEDGED)
    events: list[StudyEvent] = []
    with pytest.raises(errors.InvalidTransition, match="already acknowledged") as refused:
        acknowledge(finding, "u1", NOW, events.append)
    assert refused.value.code == "invalid_transition"
    assert (finding.acknowledged_by_id, events) == ("u0", [])


def test_an_acknowledged_finding_does_not_escalate() -> None:
    finding = _finding(F.ACKNOWLEDGED)
    with pytest.raises(errors.InvalidTransition, match="a critical finding that is acknowledged cannot become"):
        escalate(finding, NOW, AFTER, [].append)
    assert finding.escalation_level == 0 and finding.next_escalation_at is None
