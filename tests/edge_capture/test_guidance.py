"""edge_capture.guidance: the board of current marks, applied and snapshotted (pure: no sockets)."""

from __future__ import annotations

import logging

import pytest

from edge_capture.datachannel import Clear, Mark, MarkKind, Marks, MessageError, decode, encode
from edge_capture.guidance import GuidanceBoard, check_may_draw


def mark(mark_id: str, by: str = "expert-1", points: int = 2, at: float = 1.0) -> Mark:
    kind: MarkKind = "freehand" if points > 2 else "arrow"
    path = tuple((i / max(1, points - 1), 0.5) for i in range(points))
    return Mark(id=mark_id, kind=kind, points=path, from_=by, at=at)


def test_an_empty_board_snapshots_as_no_marks() -> None:
    board = GuidanceBoard()
    assert board.snapshot() == Marks(())
    assert encode(board.snapshot()) == '{"type":"marks","marks":[]}'


def test_marks_accumulate_in_drawing_order_and_clear_wipes_them() -> None:
    board = GuidanceBoard()
    first, second = mark("a"), mark("b", by="sono-1")
    board.apply(first)
    board.apply(second)
    assert board.snapshot() == Marks((first, second))
    assert decode(encode(board.snapshot())) == Marks((first, second))  # what a late page receives
    board.apply(Clear(from_="sono-1", at=2.0))
    assert len(board) == 0 and board.snapshot() == Marks(())


def test_a_page_redrawing_its_mark_replaces_it_in_place() -> None:
    board = GuidanceBoard()
    board.apply(mark("line", points=2))
    board.apply(mark("other"))
    grown = mark("line", points=40, at=3.0)
    board.apply(grown)
    assert board.marks == (grown, mark("other"))


def test_two_pages_may_use_the_same_id() -> None:
    board = GuidanceBoard()
    board.apply(mark("m1", by="expert-1"))
    board.apply(mark("m1", by="sono-1"))
    assert [(m.from_, m.id) for m in board.marks] == [("expert-1", "m1"), ("sono-1", "m1")]


def test_the_board_drops_its_oldest_mark_past_the_count_limit(caplog: pytest.LogCaptureFixture) -> None:
    board = GuidanceBoard(max_marks=3, name="consultation-9")
    with caplog.at_level(logging.INFO):
        for n in range(5):
            board.apply(mark(f"m{n}"))
    assert [m.id for m in board.marks] == ["m2", "m3", "m4"]
    assert "consultation-9" in caplog.text


def test_the_snapshot_stays_under_the_byte_limit() -> None:
    board = GuidanceBoard(max_bytes=100_000)
    for n in range(6):
        board.apply(mark(f"f{n}", points=2000))  # about 30 KB each
    assert 1 < len(board) < 6
    assert [m.id for m in board.marks][-1] == "f5"
    assert len(encode(board.snapshot())) <= 100_000


def test_growing_the_oldest_mark_evicts_others_not_itself() -> None:
    board = GuidanceBoard(max_bytes=40_000)
    board.apply(mark("old", points=2))
    board.apply(mark("new", points=1500))
    board.apply(mark("old", points=2000))  # the oldest mark grows past the budget
    assert [m.id for m in board.marks] == ["old"]


def test_only_marks_and_clears_go_on_the_board() -> None:
    with pytest.raises(TypeError):
        GuidanceBoard().apply(Marks(()))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        GuidanceBoard(max_marks=0)


@pytest.mark.parametrize("role", ["expert", "sonographer"])
def test_the_expert_and_the_sonographer_may_draw(role: str) -> None:
    check_may_draw(role)


@pytest.mark.parametrize("role", ["observer", "edge", "admin"])
def test_anyone_else_is_refused(role: str) -> None:
    with pytest.raises(MessageError) as refused:
        check_may_draw(role)
    assert refused.value.code == "not_allowed"
    assert refused.value.message == f"a {role} follows the consultation view-only and cannot draw"
