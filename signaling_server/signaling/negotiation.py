"""The negotiation state of one edge → peer link, kept by the server so that an answer without an offer,
or a second offer before the first is answered, is refused instead of confusing the browser."""

from __future__ import annotations

import logging
from enum import StrEnum

from signaling_server.signaling.messages import SignalError

log = logging.getLogger(__name__)


class LinkState(StrEnum):
    IDLE = "idle"
    HAVE_OFFER = "have-offer"
    STABLE = "stable"


class Negotiations:
    """Link states keyed by (offerer, answerer) peer ids."""

    def __init__(self, consultation_id: str) -> None:
        self._states: dict[tuple[str, str], LinkState] = {}
        self._cid = consultation_id

    def state(self, offerer: str, answerer: str) -> LinkState:
        return self._states.get((offerer, answerer), LinkState.IDLE)

    def _move(self, key: tuple[str, str], new: LinkState) -> None:
        old = self._states.get(key, LinkState.IDLE)
        self._states[key] = new
        log.debug("consultation %s link %s->%s: %s -> %s", self._cid, key[0], key[1], old, new)

    def offer(self, offerer: str, answerer: str) -> None:
        if self.state(offerer, answerer) is LinkState.HAVE_OFFER:
            raise SignalError("wrong_state", "an offer to this peer is still waiting for its answer", "offer")
        self._move((offerer, answerer), LinkState.HAVE_OFFER)

    def answer(self, answerer: str, offerer: str) -> None:
        if self.state(offerer, answerer) is not LinkState.HAVE_OFFER:
            raise SignalError("wrong_state", "there is no pending offer from this peer to answer", "answer")
        self._move((offerer, answerer), LinkState.STABLE)

    def forget(self, peer_id: str) -> None:
        for key in [k for k in self._states if peer_id in k]:
            del self._states[key]
