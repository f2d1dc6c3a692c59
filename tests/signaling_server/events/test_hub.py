"""The hub and its listeners on their own (events/hub.py, events/changes.py): coalescing, scoping, the codec."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from signaling_server.access.grants import Opened
from signaling_server.access.policy import Scope
from signaling_server.auth.identity import Caller
from signaling_server.db.models import User
from signaling_server.events.changes import CONSULTATIONS, FINDINGS, QUEUE, Change
from signaling_server.events.hub import Hub


def scope(sites: set[str], *, user_id: str = "u1", trainer: bool = False, opened: Opened | None = None) -> Scope:
    user = User(id=user_id, username=user_id, name=user_id, role="trainer" if trainer else "expert")
    caller = Caller("cookie", user=user, at=datetime(2026, 1, 1, tzinfo=UTC))
    return Scope(caller, frozenset(sites), opened or Opened(), deidentified_everywhere=trainer)


def test_a_burst_of_changes_is_one_notice_per_topic() -> None:
    hub = Hub()
    listener = hub.join(scope({"north"}))
    for _ in range(5):
        hub.changed(Change(CONSULTATIONS, "north", consultation_id="c1"))
    hub.changed(Change(QUEUE, "north", study_id="s1"))
    assert listener.woken.is_set()
    assert listener.take() == [(CONSULTATIONS, ["c1"]), (QUEUE, None)]  # the consultation named; a study never
    assert listener.take() == [] and not listener.woken.is_set()
    assert hub.versions[CONSULTATIONS] == 5


def test_a_change_is_heard_only_where_the_policy_would_show_it() -> None:
    hub = Hub()
    north, river = hub.join(scope({"north"})), hub.join(scope({"river"}, user_id="u2"))
    trainer = hub.join(scope(set(), user_id="t", trainer=True))
    hub.changed(Change(CONSULTATIONS, "north", consultation_id="c1"))
    hub.changed(Change(QUEUE, "north", study_id="s1"))
    hub.changed(Change(FINDINGS, "north", study_id="s1"))
    assert north.take() == [(CONSULTATIONS, ["c1"]), (FINDINGS, None), (QUEUE, None)]
    assert river.take() == []
    assert trainer.take() == [(QUEUE, None)]  # trainers see every study de-identified, not findings or consultations


def test_a_grant_opens_a_consultation_and_a_named_user_hears_whatever_their_scope() -> None:
    hub = Hub()
    granted = hub.join(scope(set(), opened=Opened(consultations=frozenset({"c1"}))))
    invited = hub.join(scope(set(), user_id="u9"))
    hub.changed(Change(CONSULTATIONS, "north", consultation_id="c1", user_ids=frozenset({"u9"})))
    assert granted.take() == [(CONSULTATIONS, None)]  # sight through a grant: told by topic alone, never an id
    assert invited.scope_stale()  # its grants changed: the stream recomputes the scope before writing
    assert invited.woken.is_set() and invited.take() == []  # woken, but held until then
    invited.rescope(scope(set(), user_id="u9", opened=Opened(consultations=frozenset({"c1"}))))
    assert invited.take() == [(CONSULTATIONS, ["c1"])]  # named to them: they may be told which


def test_closing_wakes_every_listener_and_every_later_one() -> None:
    hub = Hub()
    listener = hub.join(scope({"north"}))
    hub.close()
    assert listener.woken.is_set() and hub.join(scope({"north"})).woken.is_set()


def test_the_relay_codec_round_trips_and_refuses_garbage() -> None:
    change = Change(FINDINGS, "north", study_id="s1", patient_id="p1", user_ids=frozenset({"a", "b"}))
    assert Change.decode(change.encode()) == change
    bad_ones = ('{"topic": "nope", "site_id": "x"}', '{"topic": "queue"}', "[]")
    bad_ones += ('{"topic": "queue", "site_id": "x", "user_ids": 3}',)
    for bad in bad_ones:
        with pytest.raises(ValueError):
            Change.decode(bad)
    hub = Hub()
    listener = hub.join(scope({"x"}))
    hub.hear_relayed("not json")  # logged and dropped
    assert listener.take() == []


def test_ids_are_gathered_until_written_and_a_site_no_longer_served_is_judged_by_the_new_scope() -> None:
    hub = Hub()
    listener = hub.join(scope({"north", "river"}))
    hub.changed(Change(CONSULTATIONS, "north", consultation_id="c2"))
    hub.changed(Change(CONSULTATIONS, "river", consultation_id="c1"))
    hub.changed(Change(CONSULTATIONS, "north", consultation_id="c2"))
    assert listener.take() == [(CONSULTATIONS, ["c1", "c2"])]
    hub.rescope(["u1"])  # north is no longer theirs (DELETE /api/v1/users/{id}/sites/{site})
    hub.changed(Change(CONSULTATIONS, "north", consultation_id="c3"))
    hub.changed(Change(CONSULTATIONS, "river", consultation_id="c4"))
    assert listener.scope_stale() and listener.take() == []
    listener.rescope(scope({"river"}))
    assert listener.take() == [(CONSULTATIONS, ["c4"])]
    hub.hear_relayed('{"rescope":"user","ids":["u1"]}')  # the same from another server process
    assert listener.scope_stale()
