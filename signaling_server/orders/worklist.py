"""The worklist a modality sees: its own site's scheduled orders, as MWL items, matched to its C-FIND query.

The DICOM listener (dicomstore/scp.py) admits the calling AE as a DICOM peer (dicomstore/peers.py) and asks here
with that peer's site: a modality is shown the orders of its own site only, never another's. An order that names
no station is offered to every modality of its site, with the calling AE title as its ScheduledStationAETitle; an
order that names one is offered to that station only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from pydicom.dataset import Dataset
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server.db.models import Order, Site, User
from signaling_server.orders import mwl, names
from signaling_server.orders.state import OrderState

MAX_ANSWERS = 500  # the newest scheduled orders of a site: a worklist is today's work, not an archive


@dataclass(frozen=True)
class Found:
    answers: list[Dataset]
    order_ids: list[str]


async def find(db: AsyncSession, site_id: str, calling_ae: str, query: Dataset, zone: tzinfo) -> Found:
    site = await db.get(Site, site_id)
    if site is None:
        return Found([], [])
    rows = await db.execute(
        select(Order, User.name)
        .join(User, User.id == Order.ordered_by_id)
        .where(Order.site_id == site_id, Order.state == OrderState.SCHEDULED)
        .where((Order.station_ae.is_(None)) | (Order.station_ae == calling_ae))
        .order_by(Order.scheduled_at, Order.id)
        .limit(MAX_ANSWERS)
    )
    answers, ids = [], []
    for order, doctor in rows:
        item = mwl.item_of(_entry(order, doctor, site.code, calling_ae), zone)
        if mwl.matches(query, item):
            answers.append(mwl.answer(query, item))
            ids.append(order.id)
    return Found(answers, ids)


def _entry(order: Order, doctor: str, site_code: str, calling_ae: str) -> mwl.WorklistEntry:
    return mwl.WorklistEntry(
        accession=order.accession,
        patient_name=order.patient_name,
        patient_id=order.local_patient_id,
        birth_date=order.patient_birth_date,
        sex=order.patient_sex,
        referring=names.as_person_name(doctor),
        modality=order.modality,
        description=order.description,
        reason=order.reason,
        clinical_info=order.clinical_info,
        priority=order.priority,
        study_uid=order.study_uid,
        station_ae=order.station_ae or calling_ae,
        scheduled_at=order.scheduled_at,
        location=site_code,
    )
