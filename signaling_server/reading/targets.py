"""Turnaround targets per modality and priority (CLINICAL.md §4), configurable with TELEUS_TURNAROUND.

TELEUS_TURNAROUND is JSON: {"CT": {"routine": 60, "urgent": 45, "stat": 30}, "US": 60}; a bare number applies to
every priority of that modality. Anything not given keeps the default below.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server.db.models import Site
from signaling_server.reading.state import Priority

XRAY = ("CR", "DX")

DEFAULT_MINUTES: dict[str, dict[Priority, float]] = {
    "CR": {Priority.ROUTINE: 30, Priority.URGENT: 30, Priority.STAT: 15},
    "DX": {Priority.ROUTINE: 30, Priority.URGENT: 30, Priority.STAT: 15},
    "CT": {Priority.ROUTINE: 60, Priority.URGENT: 60, Priority.STAT: 30},
    "US": {Priority.ROUTINE: 60, Priority.URGENT: 60, Priority.STAT: 30},
}
FALLBACK_MINUTES = 60.0
MAX_MINUTES = 7 * 24 * 60  # a target of more than a week is a typing slip


class Targets:
    def __init__(self, minutes: dict[str, dict[Priority, float]] | None = None) -> None:
        self.minutes = {m: dict(p) for m, p in (minutes or DEFAULT_MINUTES).items()}

    @classmethod
    def from_json(cls, text: str) -> Targets:
        if not text.strip():
            return cls()
        return cls().overridden(json.loads(text), "TELEUS_TURNAROUND")

    def overridden(self, raw: object, name: str = "turnaround") -> Targets:
        """These targets with `raw` laid over them: {"CT": {"routine": 45}, "CR": 20} (a bare number: every
        priority). A site's own targets are laid over the server's this way (reading/site_targets.py)."""
        minutes = {m: dict(p) for m, p in self.minutes.items()}
        if not isinstance(raw, dict):
            raise ValueError(f"{name} must be a JSON object keyed by modality")
        for modality, value in raw.items():
            if not isinstance(modality, str) or not modality.isalnum() or len(modality) > 16:
                raise ValueError(f"{name}: {str(modality)[:20]!r} is not a modality (CR, DX, CT, US …)")
            row = minutes.setdefault(modality.upper(), {p: FALLBACK_MINUTES for p in Priority})
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = {p.value: value for p in Priority}
            if not isinstance(value, dict):
                raise ValueError(f"{name}[{modality}] must be minutes or an object by priority")
            for priority, mins in value.items():
                if priority not in {p.value for p in Priority}:
                    raise ValueError(
                        f"{name}[{modality}]: {str(priority)[:20]!r} is not a priority (routine, urgent, stat)"
                    )
                if isinstance(mins, bool) or not isinstance(mins, int | float) or not 0 < mins <= MAX_MINUTES:
                    raise ValueError(f"{name}[{modality}][{priority}] must be minutes from 1 to {MAX_MINUTES}")
                row[Priority(priority)] = float(mins)
        return Targets(minutes)

    def target(self, modality: str, priority: Priority) -> timedelta:
        row = self.minutes.get(modality.upper())
        return timedelta(minutes=row[priority] if row else FALLBACK_MINUTES)

    def due(self, modality: str, priority: Priority, examined_at: datetime) -> datetime:
        return examined_at + self.target(modality, priority)


async def targets_of(db: AsyncSession, targets: Targets, site_id: str) -> Targets:
    """The targets that hold for a site: the server's, with the site's own over them (site_targets.py)."""
    site = await db.get(Site, site_id)
    if site is None or not site.turnaround:
        return targets
    return targets.overridden(site.turnaround)


TARGETS = web.AppKey("targets", Targets)
