"""signaling_server.signaling.negotiation: offers and answers per link, refused as `wrong_state` out of turn."""

from __future__ import annotations

import logging

import pytest

from signaling_server.signaling.messages import SignalError
from signaling_server.signaling.negotiation import MACHINE, LinkState, Negotiations

L = LinkState


def _at(state: LinkState) -> Negotiations:
    """A link edge → viewer-1 in `state`, reached by the messages themselves."""
    links = Negotiations("c1")
    if state is not L.IDLE:
        links.offer("edge", "viewer-1")
    if state is L.STABLE:
        links.answer("viewer-1", "edge")
    assert links.state("edge", "viewer-1") is state
    return links


@pytest.mark.parametrize(("old", "new"), MACHINE.edges())
def test_every_allowed_move_passes(old: LinkState, new: LinkState, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="signaling_server.signaling.negotiation")
    links = _at(old)
    if new is L.HAVE_OFFER:
        links.offer("edge", "viewer-1")
    else:
        links.answer("viewer-1", "edge")
    assert links.state("edge", "viewer-1") is new
    assert f"consultation c1: link edge->viewer-1: {old} -> {new}" in caplog.text


@pytest.mark.parametrize(
    ("old", "message", "ref"),
    [(L.HAVE_OFFER, "offer", "offer"), (L.IDLE, "answer", "answer"), (L.STABLE, "answer", "answer")],
)
def test_out_of_turn_messages_are_refused_as_wrong_state(old: LinkState, message: str, ref: str) -> None:
    links = _at(old)
    with pytest.raises(SignalError) as refused:
        if message == "offer":
            links.offer("edge", "viewer-1")
        else:
            links.answer("viewer-1", "edge")
    assert (refused.value.code, refused.value.ref) == ("wrong_state", ref)
    assert links.state("edge", "viewer-1") is old


def test_links_are_per_direction_and_forgotten_with_a_peer() -> None:
    links = _at(L.HAVE_OFFER)
    assert links.state("viewer-1", "edge") is L.IDLE
    links.forget("viewer-1")
    assert links.state("edge", "viewer-1") is L.IDLE
