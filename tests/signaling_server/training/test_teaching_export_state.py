"""The teaching export's machine: a job of this process finishes once, done or failed."""

from __future__ import annotations

import logging

import pytest

from signaling_server import errors
from signaling_server.training.teaching_exports import EXPORT_MACHINE, ExportJob, ExportState

E = ExportState


@pytest.mark.parametrize(("old", "new"), EXPORT_MACHINE.edges())
def test_every_allowed_move_passes(old: ExportState, new: ExportState, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="signaling_server.training.teaching_exports")
    job = ExportJob("e" * 32, "r1", state=old)
    job.finish(new, "bad media" if new is E.FAILED else "")
    assert (job.state, job.reason) == (new, "bad media" if new is E.FAILED else "")
    assert f"recording r1: teaching export {'e' * 32}: {old} -> {new}" in caplog.text


@pytest.mark.parametrize(
    ("old", "new"), [(E.RUNNING, E.RUNNING), (E.DONE, E.FAILED), (E.FAILED, E.DONE), (E.DONE, E.DONE)]
)
def test_other_moves_are_refused(old: ExportState, new: ExportState) -> None:
    job = ExportJob("e" * 32, "r1", state=old, reason="first")
    with pytest.raises(errors.InvalidTransition, match=f"a teaching export that is {old} cannot become {new}"):
        job.finish(new, "second")
    assert (job.state, job.reason) == (old, "first")
