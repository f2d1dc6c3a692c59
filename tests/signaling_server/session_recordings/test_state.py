"""signaling_server.session_recordings.state: the one place the recording state is computed."""

from __future__ import annotations

import logging

import pytest

from signaling_server import errors
from signaling_server.db.models import ConsultationEvent, Recording
from signaling_server.session_recordings.state import MACHINE, RecordingState, after_upload, transition

R = RecordingState


def test_the_files_say_where_a_recording_is() -> None:
    assert after_upload(ended=False, all_listed_complete=True) is R.RECORDING
    assert after_upload(ended=True, all_listed_complete=False) is R.UPLOADING
    assert after_upload(ended=True, all_listed_complete=True) is R.COMPLETE


@pytest.mark.parametrize(("old", "new"), [*MACHINE.edges(), (R.COMPLETE, R.COMPLETE), (R.RECORDING, R.RECORDING)])
def test_allowed_moves(old: RecordingState, new: RecordingState, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="signaling_server.session_recordings.state")
    recording = Recording(id="r1", consultation_id="c1", state=old)
    events: list[ConsultationEvent] = []
    assert transition(recording, new, events.append, reason="why") is new
    assert recording.state is new
    if old is not new:
        assert f"consultation c1: recording r1: {old} -> {new}" in caplog.text
        assert [(e.consultation_id, e.kind, e.detail) for e in events] == [
            ("c1", "recording", {"recording_id": "r1", "from": old, "to": new, "reason": "why"})
        ]
    else:  # a repeat: nothing to log, nothing to record
        assert caplog.text == "" and events == []


@pytest.mark.parametrize(
    ("old", "new"),
    [(R.COMPLETE, R.RECORDING), (R.COMPLETE, R.FAILED), (R.FAILED, R.COMPLETE), (R.UPLOADING, R.RECORDING)],
)
def test_refused_moves(old: RecordingState, new: RecordingState) -> None:
    recording = Recording(id="r1", consultation_id="c1", state=old)
    events: list[ConsultationEvent] = []
    with pytest.raises(errors.InvalidTransition) as refused:
        transition(recording, new, events.append)
    assert refused.value.code == "invalid_transition" and f"{old} cannot become {new}" in refused.value.message
    assert recording.state is old and events == []
