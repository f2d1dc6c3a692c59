"""The edge's authoritative guidance: which marks are on the image now. Pure; no I/O, no clock.

Pages draw (``mark``) and wipe (``clear``); the edge relays each to every page and applies it here, so a page
whose guidance channel opens late gets the current picture as one ``marks`` message (:meth:`snapshot`).

A mark's ``id`` is chosen by the page that drew it, so two pages may well both say ``"m1"``: a mark is known
by who drew it and its id together, and a page re-sending a mark with the same id (a freehand line growing,
an arrow dragged) replaces its own earlier version in place.

The board holds at most ``max_marks`` marks and at most ``max_bytes`` of them as JSON; past either the oldest
marks go. The byte bound keeps the ``marks`` message sendable: aiortc refuses (ValueError) to send a message
larger than the page's SCTP max-message-size, 256 KiB in Chromium and 64 KiB if the page states none.
"""

from __future__ import annotations

import logging

from edge_capture.datachannel import Clear, Mark, Marks, encode
from edge_capture.errors import MessageError

logger = logging.getLogger(__name__)

DRAWING_ROLES = frozenset({"expert", "sonographer"})
MAX_MARKS = 50
MAX_BYTES = 192 * 1024  # three of the largest marks a page may send (64 KiB each); under Chromium's 256 KiB

MarkKey = tuple[str | None, str]  # (from, id)


def check_may_draw(role: str) -> None:
    """Refuse guidance from anyone but the expert and the sonographer (observers watch)."""
    if role not in DRAWING_ROLES:
        raise MessageError("not_allowed", f"a {role} follows the consultation view-only and cannot draw")


class GuidanceBoard:
    """The current marks, in the order they were first drawn."""

    def __init__(self, max_marks: int = MAX_MARKS, max_bytes: int = MAX_BYTES, name: str = "") -> None:
        if max_marks < 1 or max_bytes < 1024:
            raise ValueError("a board holds at least one mark and 1 KiB")
        self.max_marks = max_marks
        self.max_bytes = max_bytes
        self.name = name
        self._marks: dict[MarkKey, Mark] = {}
        self._sizes: dict[MarkKey, int] = {}

    def __len__(self) -> int:
        return len(self._marks)

    @property
    def marks(self) -> tuple[Mark, ...]:
        return tuple(self._marks.values())

    def apply(self, message: Mark | Clear) -> None:
        """Apply a relayed (already stamped) ``mark`` or ``clear``."""
        if isinstance(message, Clear):
            if self._marks:
                logger.info("guidance %s: %s marks cleared by %s", self.name, len(self._marks), message.from_)
            self._marks.clear()
            self._sizes.clear()
            return
        if not isinstance(message, Mark):
            raise TypeError(f"a guidance board applies marks and clears, not {type(message).__name__}")
        key = (message.from_, message.id)
        self._marks[key] = message  # an existing key keeps its place: dicts keep first-insertion order
        self._sizes[key] = len(encode(message)) + 1  # and a comma in the marks list
        while len(self._marks) > 1 and (
            len(self._marks) > self.max_marks or sum(self._sizes.values()) > self.max_bytes
        ):
            oldest = next(k for k in self._marks if k != key)  # never the mark just drawn
            del self._marks[oldest], self._sizes[oldest]
            logger.info("guidance %s: board full: oldest mark %s dropped", self.name, oldest)

    def snapshot(self) -> Marks:
        """Every current mark, oldest first, as the ``marks`` message a joining page gets."""
        return Marks(self.marks)
