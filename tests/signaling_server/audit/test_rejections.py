"""signaling_server.audit.rejections (pure): rejected associations become audit rows, the first of each address and
reason at once and the rest summed up per window, with a cap on the groups so that no flood floods the trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from signaling_server.audit.rejections import ASSOCIATION, MAX_TITLES, OVERFLOW, WINDOW, Rejection, Rejections

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def knock(address: str = "10.0.0.9", title: str = "STRANGER", reason: str = "unknown_ae") -> Rejection:
    return Rejection(title, address, reason, "no DICOM peer has this AE title", 1)


def test_the_first_rejection_is_written_at_once_and_the_rest_summed_up_when_the_window_ends() -> None:
    log = Rejections()
    (first,) = log.note(knock(), T0)
    assert (first.actor.kind, first.actor.id, first.client, first.route, first.method) == (
        "ae", "STRANGER", "10.0.0.9", ASSOCIATION, "A-ASSOCIATE")  # fmt: skip
    assert (first.action, first.status, first.outcome) == ("associate", 1, "unknown_ae")
    assert first.detail["result"] == "rejected" and first.detail["kind"] == "first" and first.detail["count"] == 1
    for n in range(1, 500):  # a flood from one address: counted, not written
        assert log.note(knock(title=f"T{n % 20}"), T0 + timedelta(milliseconds=n)) == []
    assert log.due(T0 + WINDOW - timedelta(microseconds=1)) == []
    (summary,) = log.due(T0 + WINDOW)
    assert summary.detail["kind"] == "summary" and summary.detail["count"] == 499
    assert summary.detail["first_at"] == T0.isoformat()
    assert summary.detail["last_at"] == (T0 + timedelta(milliseconds=499)).isoformat()
    assert len(summary.detail["ae_titles"]) == MAX_TITLES and summary.detail["ae_titles"][0] == "STRANGER"
    assert log.due(T0 + 2 * WINDOW) == []  # the group is closed: nothing more to say
    (again,) = log.note(knock(), T0 + 3 * WINDOW)  # a new window starts with a row of its own
    assert again.detail["kind"] == "first"


def test_groups_are_per_address_and_reason_and_a_lone_rejection_has_no_summary() -> None:
    log = Rejections()
    assert len(log.note(knock(), T0)) == 1
    assert len(log.note(knock(reason="address_not_allowed"), T0)) == 1
    assert len(log.note(knock(address="10.0.0.10"), T0)) == 1
    assert log.note(knock(), T0) == []
    summaries = log.note(knock(address="10.0.0.11"), T0 + WINDOW)  # the summaries due come with the next row
    assert [(e.client, e.outcome, e.detail["kind"], e.detail["count"]) for e in summaries] == [
        ("10.0.0.9", "unknown_ae", "summary", 1), ("10.0.0.11", "unknown_ae", "first", 1)]  # fmt: skip


def test_a_flood_from_many_addresses_writes_a_bounded_number_of_rows() -> None:
    log = Rejections(max_groups=10)
    written = []
    for n in range(10_000):
        written += log.note(knock(address=f"10.1.{n // 250}.{n % 250}"), T0 + timedelta(milliseconds=n // 1000))
    written += log.due(T0 + WINDOW)
    assert len(written) == 11  # ten firsts, one overflow summary
    overflow = written[-1]
    assert (overflow.client, overflow.outcome, overflow.actor.id) == ("*", OVERFLOW, "*")
    assert overflow.detail["count"] == 10_000 - 10
    assert sum(int(e.detail["count"]) for e in written) == 10_000  # every rejection counted once


def test_closing_writes_every_open_summary() -> None:
    log = Rejections(max_groups=1)
    log.note(knock(), T0)
    log.note(knock(), T0)
    log.note(knock(address="10.0.0.10"), T0)
    assert [(e.client, e.detail["count"]) for e in log.close()] == [("10.0.0.9", 1), ("*", 1)]
    assert log.close() == []
