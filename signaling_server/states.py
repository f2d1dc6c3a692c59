"""The one shape of every state machine in teleus: a small enum, its moves declared once as data, one `move`.

Each entity with states (a consultation, a study, a report, a recording, an edge upload …) declares its machine
next to its enum, and every change of its state goes through :func:`move`, which

* returns ``new`` when the machine allows ``old -> new`` (a declared self-loop, such as a finding escalating one
  level more, is a real move);
* returns ``new`` without a word when ``old == new`` and the machine is ``idempotent`` (a repeated request);
* raises :class:`IllegalMove` (code ``invalid_transition``) otherwise: the server raises its own
  ``InvalidTransition`` (409) from it, the edge keeps it as its own refusal;
* logs ``old -> new`` lazily, with the context (the consultation) first when there is one;
* calls ``on_event(old, new)`` after the move, where the entity keeps an event trail (a consultation's
  ``ConsultationEvent`` rows, a study's ``StudyEvent`` rows).

An example, a door (the picture first, then the machine as declared next to its enum)::

        shut ──open──▶ open ──remove──▶ gone (final)
         │ ▲ ◀──shut───┘
    lock │ │ unlock
         ▼ │
        locked

    class Door(StrEnum):
        SHUT = "shut"
        OPEN = "open"
        LOCKED = "locked"
        GONE = "gone"

    DOOR = Machine(
        "door",
        {Door.SHUT: {Door.OPEN, Door.LOCKED}, Door.OPEN: {Door.SHUT, Door.GONE}, Door.LOCKED: {Door.SHUT}},
        final={Door.GONE},
        context="house",
        log=log,
    )

    move(DOOR, Door.SHUT, Door.OPEN, entity_id="front", context_id="h1", on_event=trail)
        # logs "house h1: door front: shut -> open", calls trail(shut, open), returns Door.OPEN
    move(DOOR, Door.OPEN, Door.OPEN, entity_id="front")    # a repeat: returns Door.OPEN, logs nothing
    move(DOOR, Door.LOCKED, Door.OPEN, entity_id="front")  # IllegalMove: a door that is locked cannot become open

This module is a leaf: it imports only the standard library, so the edge imports it as well as the server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

S = TypeVar("S", bound=StrEnum)

_log = logging.getLogger(__name__)


class IllegalMove(ValueError):
    """A move its machine does not allow. The server answers it as ``invalid_transition`` (409)."""

    code = "invalid_transition"

    def __init__(self, machine: str, old: str, new: str, entity_id: str) -> None:
        self.message = f"a {machine} that is {old} cannot become {new}"
        super().__init__(self.message)
        self.machine, self.old, self.new, self.entity_id = machine, old, new, entity_id


@dataclass(frozen=True, init=False, eq=False)
class Machine(Generic[S]):
    """One entity's states and moves, declared once as data.

    ``moves`` maps a state to the states it may move to (a state left out has none); ``final`` states have
    none by definition. ``idempotent``: a move to the state the entity is already in is a no-op (True) or
    refused (False: a second offer before its answer, ending an ended consultation) unless declared.
    ``context`` names what ``context_id`` is in the log line ("consultation"); ``log`` is the logger of the
    module that declares the machine, so its lines keep their origin.
    """

    name: str
    moves: Mapping[S, frozenset[S]]
    final: frozenset[S]
    idempotent: bool
    context: str
    log: logging.Logger
    level: int

    def __init__(
        self,
        name: str,
        moves: Mapping[S, Iterable[S]],
        *,
        final: Iterable[S] = (),
        idempotent: bool = True,
        context: str = "consultation",
        log: logging.Logger = _log,
        level: int = logging.INFO,
    ) -> None:
        frozen = {old: frozenset(new) for old, new in moves.items()}
        finals = frozenset(final)
        leaving = [state for state in finals if frozen.get(state)]
        if leaving:
            raise ValueError(f"{name}: a final state has moves: {sorted(leaving)}")
        for attribute, value in (
            ("name", name),
            ("moves", frozen),
            ("final", finals),
            ("idempotent", idempotent),
            ("context", context),
            ("log", log),
            ("level", level),
        ):
            object.__setattr__(self, attribute, value)

    def allows(self, old: S, new: S) -> bool:
        """Whether ``move(self, old, new, …)`` returns instead of raising."""
        return new in self.moves.get(old, frozenset()) or (old == new and self.idempotent)

    def edges(self) -> list[tuple[S, S]]:
        """Every declared move, for documentation and table tests."""
        return [(old, new) for old, targets in self.moves.items() for new in sorted(targets)]


def move(
    machine: Machine[S],
    old: S,
    new: S,
    *,
    entity_id: object,
    context_id: object | None = None,
    on_event: Callable[[S, S], object] | None = None,
) -> S:
    """Check ``old -> new`` against ``machine``; log it and call ``on_event(old, new)``; return ``new``.

    A repeat (``old == new``, not declared as a move) of an idempotent machine returns ``new`` and does nothing
    else. Anything else not declared raises :class:`IllegalMove`. The caller stores ``new``.
    """
    if new not in machine.moves.get(old, frozenset()):
        if old == new and machine.idempotent:
            return new
        raise IllegalMove(machine.name, old, new, str(entity_id))
    if context_id is None:
        machine.log.log(machine.level, "%s %s: %s -> %s", machine.name, entity_id, old, new)
    else:
        machine.log.log(
            machine.level, "%s %s: %s %s: %s -> %s", machine.context, context_id, machine.name, entity_id, old, new
        )
    if on_event is not None:
        on_event(old, new)
    return new
