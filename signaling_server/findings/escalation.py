"""The critical-finding escalation timer: one background task (a cleanup context) that escalates every finding not
acknowledged in time (CLINICAL.md's queue rules), every ESCALATION_CHECK_SECONDS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from signaling_server.appkeys import DB, SETTINGS
from signaling_server.events import changes
from signaling_server.events.hub import CHANGES
from signaling_server.findings import service

log = logging.getLogger(__name__)
ESCALATION_CHECK_SECONDS = 5.0


async def escalation_timer(app: web.Application) -> AsyncIterator[None]:
    """Escalate unacknowledged findings on a timer for as long as the app runs."""

    async def run() -> None:
        after = timedelta(minutes=app[SETTINGS].finding_escalation_minutes)
        period = min(ESCALATION_CHECK_SECONDS, after.total_seconds() / 2)
        while True:
            await asyncio.sleep(period)
            try:
                async with app[DB]() as db:
                    escalated = await service.escalate_due(db, after, service.now())
                for finding in escalated:
                    app[CHANGES].changed(changes.of_finding(finding))
            except Exception:  # a database hiccup must not stop escalation for good
                log.exception("escalating critical findings failed; retrying")

    task = asyncio.create_task(run(), name="critical-finding-escalation")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
