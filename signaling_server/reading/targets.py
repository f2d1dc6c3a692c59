"""Turnaround targets per modality and priority (CLINICAL.md §4), configurable with TELEUS_TURNAROUND.

TELEUS_TURNAROUND is JSON: {"CT": {"routine": 60, "urgent": 45, "stat": 30}, "US": 60}; a bare number applies to
every priority of that modality. Anything not given keeps the default below.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from aiohttp import web

from signaling_server.reading.state import Priority

XRAY = ("CR", "DX")

DEFAULT_MINUTES: dict[str, dict[Priority, float]] = {
    "CR": {Priority.ROUTINE: 30, Priority.URGENT: 30, Priority.STAT: 15},
    "DX": {Priority.ROUTINE: 30, Priority.URGENT: 30, Priority.STAT: 15},
    "CT": {Priority.ROUTINE: 60, Priority.URGENT: 60, Priority.STAT: 30},
    "US": {Priority.ROUTINE: 60, Priority.URGENT: 60, Priority.STAT: 30},
}
FALLBACK_MINUTES = 60.0


class Targets:
    def __init__(self, minutes: dict[str, dict[Priority, float]] | None = None) -> None:
        self.minutes = {m: dict(p) for m, p in (minutes or DEFAULT_MINUTES).items()}

    @classmethod
    def from_json(cls, text: str) -> Targets:
        minutes = {m: dict(p) for m, p in DEFAULT_MINUTES.items()}
        if not text.strip():
            return cls(minutes)
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("TELEUS_TURNAROUND must be a JSON object keyed by modality")
        for modality, value in raw.items():
            row = minutes.setdefault(str(modality).upper(), {p: FALLBACK_MINUTES for p in Priority})
            if isinstance(value, int | float):
                value = {p.value: value for p in Priority}
            if not isinstance(value, dict):
                raise ValueError(f"TELEUS_TURNAROUND[{modality}] must be minutes or an object by priority")
            for priority, mins in value.items():
                if not isinstance(mins, int | float) or mins <= 0:
                    raise ValueError(f"TELEUS_TURNAROUND[{modality}][{priority}] must be a positive number")
                row[Priority(priority)] = float(mins)
        return cls(minutes)

    def target(self, modality: str, priority: Priority) -> timedelta:
        row = self.minutes.get(modality.upper())
        return timedelta(minutes=row[priority] if row else FALLBACK_MINUTES)

    def due(self, modality: str, priority: Priority, examined_at: datetime) -> datetime:
        return examined_at + self.target(modality, priority)


TARGETS = web.AppKey("targets", Targets)
