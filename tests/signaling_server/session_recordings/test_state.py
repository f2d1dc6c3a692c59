"""signaling_server.session_recordings.state: the one place the recording state is computed."""

from __future__ import annotations

import logging

import pytest

from signaling_server import errors
from signaling_server.session_recordings.state import RecordingState, after_upload, transition

R = RecordingState


def test_the_files_say_where_a_recording_is() -> None:
    assert after_upload(ended=False, all_listed_complete=True) is R.RECORDING
    assert after_upload(ended=True, all_listed_complete=False) is R.UPLOADING
    assert after_upload(ended=True, all_listed_complete=True) is R.COMPLETE


@pytest.mark.parametrize(
    ("old", "new"),
    [(R.RECORDING, R.UPLOADING), (R.RECORDING, R.COMPLETE), (R.UPLOADING, R.COMPLETE), (R.RECORDING, R.FAILED),
     (R.UPLOADING, R.FAILED), (R.COMPLETE, R.COMPLETE)],
)
def test_allowed_moves(old: RecordingState, new: RecordingState, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="signaling_server.session_recordings.state")
    assert transition("r1", "c1", old.value, new) is new
    if old is not new:
        assert f"consultation c1: recording r1: {old} -> {new}" in caplog.text


@pytest.mark.parametrize(
    ("old", "new"),
    [(R.COMPLETE, R.RECORDING), (R.COMPLETE, R.FAILED), (R.FAILED, R.COMPLETE), (R.UPLOADING, R.RECORDING)],
)
def test_refused_moves(old: RecordingState, new: RecordingState) -> None:
    with pytest.raises(errors.InvalidTransition) as refused:
        transition("r1", "c1", old.value, new)
    assert refused.value.code == "invalid_transition" and f"{old} cannot become {new}" in refused.value.message
