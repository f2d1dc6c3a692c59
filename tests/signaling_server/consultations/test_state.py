"""signaling_server.consultations.state: every declared move passes and writes its event; others are refused."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from signaling_server import errors
from signaling_server.consultations.state import MACHINE, ConsultationState, trail, transition
from signaling_server.db.models import Consultation, ConsultationEvent

C = ConsultationState
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("old", "new"), MACHINE.edges())
def test_every_allowed_move_passes_stamps_its_clock_and_writes_its_event(
    old: ConsultationState, new: ConsultationState, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="signaling_server.consultations.state")
    consultation = Consultation(id="c1", state=old)
    events: list[ConsultationEvent] = []
    assert transition(consultation, new, NOW, events.append) is old
    assert consultation.state is new
    assert [(e.consultation_id, e.kind, e.detail) for e in events] == [("c1", "state", {"from": old, "to": new})]
    assert (consultation.started_at if new is C.LIVE else consultation.ended_at) == NOW
    assert f"consultation c1: {old} -> {new}" in caplog.text


@pytest.mark.parametrize(
    ("old", "new"),
    [(C.REQUESTED, C.ENDED), (C.LIVE, C.CANCELLED), (C.LIVE, C.LIVE), (C.ENDED, C.ENDED), (C.ENDED, C.LIVE),
     (C.CANCELLED, C.LIVE)],
)
def test_other_moves_are_refused_and_change_nothing(old: ConsultationState, new: ConsultationState) -> None:
    consultation = Consultation(id="c1", state=old)
    events: list[ConsultationEvent] = []
    with pytest.raises(errors.InvalidTransition) as refused:
        transition(consultation, new, NOW, events.append)
    assert refused.value.code == "invalid_transition" and refused.value.status == 409
    assert refused.value.message == f"a consultation that is {old} cannot become {new}"
    assert consultation.state is old and events == []


def test_the_request_itself_starts_the_trail() -> None:
    event = trail(Consultation(id="c1", state=C.REQUESTED), None, C.REQUESTED)
    assert (event.consultation_id, event.kind, event.detail) == ("c1", "state", {"to": "requested"})
