"""What the edge sees during a live consultation, as timeline events (recordings/timeline.py). Pure: no clock
of its own, no I/O. Every event is built with ``t = 0``; the recorder sets ``t`` from when it was queued.

- guidance relayed on the data channels: ``mark``, ``clear``, ``pointer`` (thinned to ``max_per_second`` per
  sender; a pointer that hides or shows is always kept);
- the signaling socket: ``chat``, ``state``, ``join`` and ``leave`` (:class:`Room` remembers who is there, so a
  ``leave`` carries the role and name the ``peer-left`` message lacks, and a ``welcome`` after the edge
  reconnected yields the joins and leaves it missed);
- captures, QC alerts and each second's link statistics.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from edge_capture import datachannel as dc
from recordings import timeline as tl
from signaling_server.signaling import messages as m

PAGE_ROLES = ("expert", "sonographer", "observer")
RTT_MS_MAX = 1e6  # the timeline's bound (recordings/timeline.py ViewerLink)


def from_guidance(message: dc.Mark | dc.Clear | dc.Pointer) -> tl.Event:
    if isinstance(message, dc.Mark):
        return tl.Mark(0, message.id, message.kind, message.points, message.color, message.from_)
    if isinstance(message, dc.Clear):
        return tl.Clear(0, message.from_)
    return tl.Pointer(0, message.x, message.y, message.visible, message.from_)


class PointerThinner:
    """Keeps at most ``max_per_second`` pointer positions per sender."""

    def __init__(self, max_per_second: float = 30.0) -> None:
        self.interval = 1.0 / max_per_second
        self._last: dict[str | None, tuple[float, bool]] = {}
        self.dropped = 0

    def keep(self, pointer: dc.Pointer, now: float) -> bool:
        last = self._last.get(pointer.from_)
        if last is not None and last[1] == pointer.visible and now - last[0] < self.interval:
            self.dropped += 1
            return False
        self._last[pointer.from_] = (now, pointer.visible)
        return True


class Room:
    """The pages in the consultation's room, as the recording saw them arrive and go."""

    def __init__(self) -> None:
        self.peers: dict[str, m.Peer] = {}

    def joined(self, peer: m.Peer) -> list[tl.Event]:
        if peer.role not in PAGE_ROLES or peer.id in self.peers:
            return []
        self.peers[peer.id] = peer
        return [tl.Join(0, peer.id, peer.role, peer.name)]

    def left(self, peer_id: str) -> list[tl.Event]:
        peer = self.peers.pop(peer_id, None)
        if peer is None:
            return []
        return [tl.Leave(0, peer_id, peer.role, peer.name)]

    def present(self, peers: Iterable[m.Peer]) -> list[tl.Event]:
        """Everyone in ``peers`` is here now and nobody else (a ``welcome`` after the edge reconnected)."""
        peers = list(peers)
        here = {p.id for p in peers}
        events = [e for gone in list(self.peers) if gone not in here for e in self.left(gone)]
        return events + [e for p in peers for e in self.joined(p)]

    def from_signal(self, message: m.ServerMessage) -> list[tl.Event]:
        """The events in one signaling message (none for most)."""
        if isinstance(message, m.Welcome):
            return self.present(message.peers)
        if isinstance(message, m.PeerJoined):
            return self.joined(message.peer)
        if isinstance(message, m.PeerLeft):
            return self.left(message.peer_id)
        if isinstance(message, m.ChatLine):
            text = message.text[: tl.MAX_TEXT]
            return [tl.Chat(0, text, message.name[:200], message.role[:16], message.from_)] if text else []
        if isinstance(message, m.StateChanged):
            state = message.consultation.get("state")
            return [tl.State(0, state)] if state in tl.CONSULTATION_STATES else []
        return []


def from_capture(capture_id: str, kind: str, labels: dict[str, Any], sop_uid: str, frames: int) -> tl.Capture:
    return tl.Capture(0, capture_id or "unnamed", sop_uid, kind, max(1, frames), labels)


def from_qc(alert: dict[str, Any]) -> tl.Qc:
    """A QC alert as the live QC adapter reports it: ``{"code", "text" or "message", "state": raised|cleared}``
    (``"active": bool`` is read as raised/cleared too). Raises TimelineError when it does not fit."""
    state = alert.get("state")
    if state is None and isinstance(alert.get("active"), bool):
        state = "raised" if alert["active"] else "cleared"
    text = alert.get("text", alert.get("message", ""))
    return tl.Qc(0, alert.get("code"), state or "raised", str(text)[:500])  # type: ignore[arg-type]


def viewer_link(
    peer_id: str, frames: int, seconds: float, bytes_sent: int | None, rtt_s: float | None, loss: float | None
) -> tl.ViewerLink:
    """One page's link over the last ``seconds``: frames and bytes are the deltas sent to it."""
    seconds = max(seconds, 1e-3)
    kbps = None if bytes_sent is None else bytes_sent * 8 / 1000 / seconds
    # aiortc's RTT from a receiver report can come out negative (the report's delay since the last sender report
    # is the page's clock); an RTT that cannot be is unknown, not a reason to lose the second's sample.
    rtt_ms = None if rtt_s is None or not 0 <= rtt_s * 1000 <= RTT_MS_MAX else rtt_s * 1000
    return tl.ViewerLink(
        peer_id,
        frames / seconds,
        kbps,
        rtt_ms,
        None if loss is None else min(1.0, max(0.0, loss)),
    )
