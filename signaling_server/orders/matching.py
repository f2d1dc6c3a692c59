"""Orders meet their images and their report.

Images (C-STORE or STOW-RS, through `dicomstore.ingest`) match an order when, inside the transaction that indexes
them, their study has no order yet and either

    their AccessionNumber is the order's, or
    their StudyInstanceUID is the one the worklist gave for the order,

and the order belongs to the site the images are stored into and is still `scheduled` (a study whose report is
approved already, such as its own SR arriving, matches nothing). The order then moves to
`in_progress` and links the study; the study takes the order's priority, and its turnaround target follows.
Images of another site with a known accession match nothing (logged); a cancelled order matches nothing.

When a study's report is approved (`reports.service.approve`, same transaction), its in-progress order becomes
`completed` and links that report; an addendum approved later moves the link to the newest approved version.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server.db.models import Order, OrderEvent, Report, Study, StudyEvent
from signaling_server.orders import mwl
from signaling_server.orders.state import OrderState, transition
from signaling_server.reading.state import Priority, StudyState
from signaling_server.reading.targets import Targets, targets_of

log = logging.getLogger(__name__)


async def order_of_study(db: AsyncSession, study_id: str) -> Order | None:
    return await db.scalar(select(Order).where(Order.study_id == study_id))


async def waiting_order(db: AsyncSession, site_id: str, accession: str, study_uid: str) -> Order | None:
    """The scheduled order of `site_id` that arriving images with this accession number (or the worklist's Study
    Instance UID) fill, if any. Asked before the study is made, so that it is made with the order's priority and
    its turnaround target is computed once, the queue's own way."""
    keys = [Order.study_uid == study_uid]
    if accession:
        keys.append(Order.accession == accession)
    candidates = list(await db.scalars(select(Order).where(or_(*keys))))
    order = next((o for o in candidates if o.site_id == site_id), None)
    if order is None:
        if candidates:
            log.warning("study %s (site %s): accession %r belongs to another site's order; not matched",
                        study_uid, site_id, accession)  # fmt: skip
        return None
    if order.state != OrderState.SCHEDULED:
        log.info("study %s: order %s is %s; not matched", study_uid, order.accession, order.state)
        return None
    return order


def dicom_priority(order: Order) -> str:
    """The order's priority as DICOM's RequestedProcedurePriority (what the worklist gave the modality)."""
    return mwl.DICOM_PRIORITY.get(order.priority, "ROUTINE")


async def images_arrived(
    db: AsyncSession, study: Study, order: Order | None, targets: Targets, at: datetime
) -> Order | None:
    """Attach `study` (its images just indexed) to `order` (`waiting_order`'s); the order, or None. No commit."""
    if order is None or study.state == StudyState.APPROVED or await order_of_study(db, study.id) is not None:
        return None  # nothing waits, the study was read already (its SR arriving), or it has its order
    with db.no_autoflush:  # a cancel at the same moment: the guarded UPDATE lets one win
        claimed = await db.execute(
            update(Order)
            .where(Order.id == order.id, Order.state == OrderState.SCHEDULED)
            .values(state=OrderState.IN_PROGRESS, started_at=at, study_id=study.id)
            .execution_options(synchronize_session=False)
        )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        await db.refresh(order)
        log.info("study %s: order %s was %s meanwhile; not matched", study.study_uid, order.accession, order.state)
        return None
    transition(order, OrderState.IN_PROGRESS, at, None, db.add, study_id=study.id)
    order.study_id = study.id
    if study.priority != order.priority:  # a study made before its order (else it was made with this priority)
        study.priority = order.priority
        if study.examined_at is not None:
            site_targets = await targets_of(db, targets, study.site_id)
            study.due_at = site_targets.due(study.modality, Priority(order.priority), study.examined_at)
    db.add(StudyEvent(study_id=study.id, at=at, kind="order_matched",
                      detail={"order_id": order.id, "accession": order.accession, "priority": order.priority}))
    return order


async def report_approved(db: AsyncSession, study: Study, report: Report, at: datetime) -> Order | None:
    """The study's order, completed with a link to `report` (or its link moved to this addendum). No commit."""
    order = await order_of_study(db, study.id)
    if order is None:
        return None
    if order.state == OrderState.IN_PROGRESS:
        transition(order, OrderState.COMPLETED, at, report.approver_id, db.add, report_id=report.id)
        order.report_id = report.id
    elif order.state == OrderState.COMPLETED and order.report_id != report.id:
        db.add(OrderEvent(order_id=order.id, at=at, kind="report_amended", user_id=report.approver_id,
                          detail={"report_id": report.id, "version": report.version}))
        order.report_id = report.id
    else:
        return None
    return order
