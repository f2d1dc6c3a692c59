"""signaling_server.states: the one transition helper every state machine goes through."""

from __future__ import annotations

import ast
import logging
import sys
from enum import StrEnum
from pathlib import Path

import pytest

from signaling_server import states
from signaling_server.states import IllegalMove, Machine, move

log = logging.getLogger("tests.door")


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
STRICT = Machine("door", {Door.SHUT: {Door.OPEN}, Door.OPEN: {Door.OPEN}}, idempotent=False, log=log)


@pytest.mark.parametrize(("old", "new"), DOOR.edges())
def test_every_declared_move_returns_the_new_state(old: Door, new: Door) -> None:
    assert move(DOOR, old, new, entity_id="front") is new
    assert DOOR.allows(old, new)


def test_a_move_is_logged_old_to_new_with_its_context(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tests.door")
    move(DOOR, Door.SHUT, Door.OPEN, entity_id="front", context_id="h1")
    move(DOOR, Door.OPEN, Door.SHUT, entity_id="back")
    assert [r.getMessage() for r in caplog.records] == ["house h1: door front: shut -> open", "door back: open -> shut"]
    assert caplog.records[0].name == "tests.door"  # the declaring module's logger
    assert caplog.records[0].args == ("house", "h1", "door", "front", Door.SHUT, Door.OPEN)  # formatted lazily


def test_a_move_calls_the_event_trail_once_after_it_is_allowed() -> None:
    trail: list[tuple[Door, Door]] = []
    move(DOOR, Door.SHUT, Door.LOCKED, entity_id="front", on_event=lambda old, new: trail.append((old, new)))
    assert trail == [(Door.SHUT, Door.LOCKED)]
    with pytest.raises(IllegalMove):
        move(DOOR, Door.LOCKED, Door.OPEN, entity_id="front", on_event=lambda old, new: trail.append((old, new)))
    assert trail == [(Door.SHUT, Door.LOCKED)]


def test_a_repeat_is_a_silent_no_op_when_the_machine_is_idempotent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tests.door")
    trail: list[tuple[Door, Door]] = []
    assert move(DOOR, Door.GONE, Door.GONE, entity_id="front", on_event=lambda o, n: trail.append((o, n))) is Door.GONE
    assert trail == [] and caplog.records == []


def test_a_repeat_is_refused_when_the_machine_is_not_idempotent_unless_declared() -> None:
    with pytest.raises(IllegalMove, match="a door that is shut cannot become shut"):
        move(STRICT, Door.SHUT, Door.SHUT, entity_id="front")
    trail: list[tuple[Door, Door]] = []
    assert move(STRICT, Door.OPEN, Door.OPEN, entity_id="front", on_event=lambda o, n: trail.append((o, n)))
    assert trail == [(Door.OPEN, Door.OPEN)]  # a declared self-loop is a real move


@pytest.mark.parametrize(("old", "new"), [(Door.LOCKED, Door.OPEN), (Door.GONE, Door.SHUT), (Door.SHUT, Door.GONE)])
def test_an_undeclared_move_is_refused_with_a_stable_code(old: Door, new: Door) -> None:
    assert not DOOR.allows(old, new)
    with pytest.raises(IllegalMove) as refused:
        move(DOOR, old, new, entity_id="front", context_id="h1")
    assert refused.value.code == "invalid_transition"
    assert refused.value.message == f"a door that is {old} cannot become {new}" == str(refused.value)
    assert (refused.value.machine, refused.value.old, refused.value.new) == ("door", old, new)
    assert refused.value.entity_id == "front"
    assert isinstance(refused.value, ValueError)


def test_a_final_state_with_moves_is_a_mistake_in_the_declaration() -> None:
    with pytest.raises(ValueError, match="final state has moves"):
        Machine("door", {Door.GONE: {Door.SHUT}}, final={Door.GONE})


def test_the_declaration_is_frozen() -> None:
    assert DOOR.moves[Door.SHUT] == frozenset({Door.OPEN, Door.LOCKED})
    assert DOOR.final == frozenset({Door.GONE})
    with pytest.raises(AttributeError):
        DOOR.name = "window"  # type: ignore[misc]


def test_the_helper_imports_only_the_standard_library() -> None:
    """The edge imports this module: it must stay a leaf of the server."""
    tree = ast.parse(Path(states.__file__).read_text())
    imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert {name.split(".")[0] for name in imported} - {"__future__"} <= set(sys.stdlib_module_names)
