"""The order state machine, declared once (the one move is :func:`transition`)::

    scheduled ──images arrive (its accession)──▶ in_progress ──its report is approved──▶ completed
        │
        └──the ordering site cancels (with a reason)──▶ cancelled

    scheduled    placed: on the modality worklist of its site, waiting for its images
    in_progress  images with its accession number arrived: its study is in the reading queue with its priority
    completed    the study's report was approved; the order links to it (final)
    cancelled    withdrawn by the ordering side before any image arrived (final; images that arrive later with
                 its accession match nothing)

Each move writes the order's `OrderEvent` (`started`, `completed`, `cancelled`) and is logged `old -> new`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from signaling_server import errors
from signaling_server.db.models import Order, OrderEvent
from signaling_server.states import IllegalMove, Machine, move

log = logging.getLogger(__name__)


class OrderState(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


MACHINE = Machine(
    "order",
    {
        OrderState.SCHEDULED: {OrderState.IN_PROGRESS, OrderState.CANCELLED},
        OrderState.IN_PROGRESS: {OrderState.COMPLETED},
    },
    final={OrderState.COMPLETED, OrderState.CANCELLED},
    idempotent=False,  # cancelling a cancelled order, or completing a completed one, is refused
    context="site",
    log=log,
)
_EVENTS = {OrderState.IN_PROGRESS: "started", OrderState.COMPLETED: "completed", OrderState.CANCELLED: "cancelled"}


def transition(
    order: Order,
    new: OrderState,
    now: datetime,
    by: str | None,
    record: Callable[[OrderEvent], object],
    **detail: Any,
) -> OrderState:
    """Move `order` to `new` or raise InvalidTransition; stamps the time of the new state and `record`s its event,
    made by user `by` (None: the server, on images or an approval), with `detail`; returns the old state."""
    old = OrderState(order.state)

    def event(old: OrderState, new: OrderState) -> None:
        record(OrderEvent(order_id=order.id, at=now, kind=_EVENTS[new], user_id=by, detail={"from": old, **detail}))

    try:
        order.state = move(MACHINE, old, new, entity_id=order.accession, context_id=order.site_id, on_event=event)
    except IllegalMove as refused:
        raise errors.InvalidTransition(refused.message) from refused
    if new is OrderState.IN_PROGRESS:
        order.started_at = now
    elif new is OrderState.COMPLETED:
        order.completed_at = now
    elif new is OrderState.CANCELLED:
        order.cancelled_at = now
        order.cancelled_by_id = by
    return old
