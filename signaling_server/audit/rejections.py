"""Rejected DICOM associations in the audit trail, without letting a flood of them flood the trail.

The rule (docs/SECURITY.md §5, §6). Rejections are grouped by the calling address and the reason (`unknown_ae`,
`address_not_allowed`, ...). The first rejection of a group writes a row at once (`detail.kind` "first"); the
group then stays open for :data:`WINDOW` (60 s), counting what else arrives for it: how many, the first and last
moment, the calling AE titles (at most :data:`MAX_TITLES` kept). When the window ends, one row sums up the group
if more arrived (`detail.kind` "summary", `detail.count` the rejections after the first), and the group closes; the
next rejection opens a new one. At most :data:`MAX_GROUPS` groups are open at once: a rejection that would open
one more (a flood from many addresses) is counted in one overflow group (actor "*", client "*", reason
`overflow`), summed up the same way. So a minute of anything writes at most 2 × MAX_GROUPS + 2 rows.

Pure: the caller says what time it is and writes the entries it is given (`StorageSCP` in dicomstore/scp.py, which
also asks for the summaries that are due every few seconds and for all of them when it stops). Not thread-safe:
the caller holds a lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from signaling_server.audit.trail import Actor, Entry

ASSOCIATION = "DICOM A-ASSOCIATE"
WINDOW = timedelta(seconds=60)
MAX_GROUPS = 100
MAX_TITLES = 8
OVERFLOW = "overflow"


@dataclass(frozen=True)
class Rejection:
    calling_ae: str
    address: str
    reason: str  # peers.Refusal's code
    why: str  # its explanation (peers.explain)
    result: int  # A-ASSOCIATE-RJ result: 1 rejected-permanent, 2 rejected-transient
    site_id: str | None = None  # the peer's site, when the AE title is a known peer


@dataclass
class _Group:
    first: Rejection
    opened: datetime
    last: datetime
    more: int = 0  # rejections after the first
    titles: list[str] = field(default_factory=list)


class Rejections:
    def __init__(self, window: timedelta = WINDOW, max_groups: int = MAX_GROUPS) -> None:
        self.window, self.max_groups = window, max_groups
        self._groups: dict[tuple[str, str], _Group] = {}
        self._overflow: _Group | None = None

    def note(self, rejection: Rejection, at: datetime) -> list[Entry]:
        """A rejection at `at`: the rows to write now (the summaries already due, and this one's if it is first)."""
        written = self.due(at)
        key = (rejection.address, rejection.reason)
        group = self._groups.get(key)
        if group is not None:
            _count(group, rejection, at)
            return written
        if len(self._groups) < self.max_groups:
            self._groups[key] = _Group(rejection, at, at, titles=[rejection.calling_ae])
            return [*written, _entry(rejection, "first", 1, at, at, [rejection.calling_ae])]
        if self._overflow is None:
            self._overflow = _Group(rejection, at, at, more=1, titles=[rejection.calling_ae])
        else:
            _count(self._overflow, rejection, at)
        return written

    def due(self, at: datetime) -> list[Entry]:
        """The summary rows of the groups whose window has ended by `at`; those groups close."""
        written = []
        for key, group in list(self._groups.items()):
            if at - group.opened >= self.window:
                del self._groups[key]
                if group.more:
                    written.append(_summary(group))
        if self._overflow is not None and at - self._overflow.opened >= self.window:
            written.append(_summary(self._overflow, overflow=True))
            self._overflow = None
        return written

    def close(self) -> list[Entry]:
        """Every summary still open (the listener is stopping)."""
        written = [_summary(g) for g in self._groups.values() if g.more]
        if self._overflow is not None:
            written.append(_summary(self._overflow, overflow=True))
        self._groups.clear()
        self._overflow = None
        return written


def _count(group: _Group, rejection: Rejection, at: datetime) -> None:
    group.more += 1
    group.last = at
    if rejection.calling_ae not in group.titles and len(group.titles) < MAX_TITLES:
        group.titles.append(rejection.calling_ae)


def _summary(group: _Group, *, overflow: bool = False) -> Entry:
    if overflow:
        everyone = Rejection("*", "*", OVERFLOW, f"more than {MAX_GROUPS} addresses and reasons at once", 0)
        return _entry(everyone, "summary", group.more, group.opened, group.last, group.titles)
    return _entry(group.first, "summary", group.more, group.opened, group.last, group.titles)


def _entry(r: Rejection, kind: str, count: int, first: datetime, last: datetime, titles: list[str]) -> Entry:
    detail: dict[str, Any] = {
        "result": "rejected", "reason": r.reason, "why": r.why[:256], "kind": kind, "count": count,
        "first_at": first.isoformat(), "last_at": last.isoformat(), "ae_titles": list(titles),
    }  # fmt: skip
    return Entry(
        actor=Actor("ae", r.calling_ae, r.calling_ae, "modality", r.site_id),
        client=r.address,
        action="associate",
        method="A-ASSOCIATE",
        route=ASSOCIATION,
        status=r.result,
        outcome=r.reason,
        object_kind="association",
        detail=detail,
    )
