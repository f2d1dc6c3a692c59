"""The two small state machines of patient identity: a possible match and a link (docs/SECURITY.md §3)."""

from __future__ import annotations

import pytest

from signaling_server.dicomstore import links, matches
from signaling_server.dicomstore.links import LinkState
from signaling_server.dicomstore.matches import MatchState
from signaling_server.states import IllegalMove, move


def test_a_match_is_decided_once_and_a_confirmed_one_only_unlinked() -> None:
    assert matches.MACHINE.edges() == [
        (MatchState.OPEN, MatchState.CONFIRMED),
        (MatchState.OPEN, MatchState.REJECTED),
        (MatchState.CONFIRMED, MatchState.REJECTED),
    ]
    assert matches.MACHINE.final == {MatchState.REJECTED}
    for old, new in ((MatchState.REJECTED, MatchState.CONFIRMED), (MatchState.CONFIRMED, MatchState.CONFIRMED),
                     (MatchState.REJECTED, MatchState.OPEN)):  # fmt: skip
        with pytest.raises(IllegalMove):
            move(matches.MACHINE, old, new, entity_id="m1")


def test_a_link_is_split_back_once() -> None:
    assert links.MACHINE.edges() == [(LinkState.LINKED, LinkState.UNLINKED)]
    with pytest.raises(IllegalMove, match="a patient link that is unlinked cannot become unlinked"):
        move(links.MACHINE, LinkState.UNLINKED, LinkState.UNLINKED, entity_id="l1")
