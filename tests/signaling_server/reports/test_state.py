"""signaling_server.reports.state: sign, approve and the SR's archiving are the report's only moves; each writes
the study's event."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from signaling_server import errors
from signaling_server.db.models import Report, StudyEvent
from signaling_server.reports.state import MACHINE, ReportState, transition

R = ReportState
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("old", "new", "kind", "clock"),
    [
        (R.DRAFT, R.PRELIMINARY, "report_signed", "signed_at"),
        (R.PRELIMINARY, R.ARCHIVING, "report_approved", "approved_at"),
        (R.ARCHIVING, R.FINAL, "report_archived", None),
    ],
)
def test_every_allowed_move_passes(old: ReportState, new: ReportState, kind: str, clock: str | None) -> None:
    assert (old, new) in MACHINE.edges()
    report = Report(study_id="s1", version=2, state=old)
    events: list[StudyEvent] = []
    assert transition(report, new, NOW, "u1", events.append) is old
    assert report.state is new and (clock is None or getattr(report, clock) == NOW)
    assert [(e.study_id, e.kind, e.user_id, e.detail) for e in events] == [("s1", kind, "u1", {"version": 2})]


def test_the_table_is_the_three_moves() -> None:
    assert MACHINE.edges() == [(R.DRAFT, R.PRELIMINARY), (R.PRELIMINARY, R.ARCHIVING), (R.ARCHIVING, R.FINAL)]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (R.DRAFT, R.FINAL),
        (R.FINAL, R.FINAL),
        (R.FINAL, R.DRAFT),
        (R.PRELIMINARY, R.PRELIMINARY),
        (R.PRELIMINARY, R.FINAL),  # never final without its SR
        (R.ARCHIVING, R.ARCHIVING),
        (R.FINAL, R.ARCHIVING),
    ],
)
def test_other_moves_are_refused(old: ReportState, new: ReportState) -> None:
    report = Report(study_id="s1", version=1, state=old)
    events: list[StudyEvent] = []
    with pytest.raises(errors.InvalidTransition, match=f"a report that is {old} cannot become {new}"):
        transition(report, new, NOW, "u1", events.append)
    assert report.state is old and events == []
