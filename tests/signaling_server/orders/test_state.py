"""The order state machine: every declared move, and the illegal ones refused with invalid_transition."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from signaling_server import errors
from signaling_server.db.models import Order, OrderEvent
from signaling_server.orders.state import MACHINE, OrderState, transition

AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def _order(state: OrderState) -> Order:
    return Order(id="o1", accession="RC261207000001", site_id="north", state=state)


def test_the_declared_moves_are_the_workflow() -> None:
    assert set(MACHINE.edges()) == {
        (OrderState.SCHEDULED, OrderState.CANCELLED),
        (OrderState.SCHEDULED, OrderState.IN_PROGRESS),
        (OrderState.IN_PROGRESS, OrderState.COMPLETED),
    }


@pytest.mark.parametrize(("old", "new"), [(o, n) for o in OrderState for n in OrderState if not MACHINE.allows(o, n)])
def test_every_other_move_is_refused_and_changes_nothing(old: OrderState, new: OrderState) -> None:
    order, trail = _order(old), []
    with pytest.raises(errors.InvalidTransition) as refused:
        transition(order, new, AT, "u1", trail.append)
    assert refused.value.code == "invalid_transition" and f"is {old} cannot become {new}" in refused.value.message
    assert order.state == old and trail == []


def test_a_move_stamps_its_time_records_its_event_and_logs_old_to_new(caplog: pytest.LogCaptureFixture) -> None:
    order, trail = _order(OrderState.SCHEDULED), []
    with caplog.at_level(logging.INFO, logger="signaling_server.orders.state"):
        assert transition(order, OrderState.CANCELLED, AT, "u1", trail.append, reason="重复") == "scheduled"
    assert order.state == "cancelled" and order.cancelled_at == AT and order.cancelled_by_id == "u1"
    [event] = trail
    assert isinstance(event, OrderEvent) and event.kind == "cancelled" and event.user_id == "u1"
    assert event.detail == {"from": "scheduled", "reason": "重复"}
    assert "site north: order RC261207000001: scheduled -> cancelled" in caplog.text
    started = _order(OrderState.SCHEDULED)
    transition(started, OrderState.IN_PROGRESS, AT, None, trail.append)
    transition(started, OrderState.COMPLETED, AT, None, trail.append)
    assert (started.started_at, started.completed_at) == (AT, AT)
    assert [e.kind for e in trail[1:]] == ["started", "completed"]
