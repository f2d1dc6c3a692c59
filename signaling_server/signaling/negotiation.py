"""The negotiation state of one edge → peer link, kept by the server so that an answer without an offer,
or a second offer before the first is answered, is refused instead of confusing the browser::

    idle ──offer──▶ have-offer ──answer──▶ stable ──offer (renegotiation)──▶ have-offer

A link starts idle and is forgotten when either peer leaves. Refusals are signaling errors ``wrong_state``. The
one move is ``Negotiations._move``; the link has no event trail (the messages themselves are the trail).
"""

from __future__ import annotations

import logging
from enum import StrEnum

from signaling_server.signaling.messages import SignalError
from signaling_server.states import IllegalMove, Machine, move

log = logging.getLogger(__name__)


class LinkState(StrEnum):
    IDLE = "idle"
    HAVE_OFFER = "have-offer"
    STABLE = "stable"


MACHINE = Machine(
    "link",
    {
        LinkState.IDLE: {LinkState.HAVE_OFFER},
        LinkState.HAVE_OFFER: {LinkState.STABLE},
        LinkState.STABLE: {LinkState.HAVE_OFFER},
    },
    idempotent=False,  # a second offer before the answer, a second answer: refused
    log=log,
    level=logging.DEBUG,
)
_REFUSALS = {  # by the state asked for
    LinkState.HAVE_OFFER: ("an offer to this peer is still waiting for its answer", "offer"),
    LinkState.STABLE: ("there is no pending offer from this peer to answer", "answer"),
}


class Negotiations:
    """Link states keyed by (offerer, answerer) peer ids."""

    def __init__(self, consultation_id: str) -> None:
        self._states: dict[tuple[str, str], LinkState] = {}
        self._cid = consultation_id

    def state(self, offerer: str, answerer: str) -> LinkState:
        return self._states.get((offerer, answerer), LinkState.IDLE)

    def _move(self, offerer: str, answerer: str, new: LinkState) -> None:
        try:
            self._states[offerer, answerer] = move(
                MACHINE, self.state(offerer, answerer), new, entity_id=f"{offerer}->{answerer}", context_id=self._cid
            )
        except IllegalMove as refused:
            message, ref = _REFUSALS[new]  # the signaling error of a refused offer or answer
            raise SignalError("wrong_state", message, ref) from refused

    def offer(self, offerer: str, answerer: str) -> None:
        self._move(offerer, answerer, LinkState.HAVE_OFFER)

    def answer(self, answerer: str, offerer: str) -> None:
        self._move(offerer, answerer, LinkState.STABLE)

    def mirror(self, offerer: str, answerer: str, state: LinkState) -> None:
        """Take a move another server process checked (the other end of the link is its member), unchecked."""
        self._states[offerer, answerer] = state

    def forget(self, peer_id: str) -> None:
        for key in [k for k in self._states if peer_id in k]:
            del self._states[key]
