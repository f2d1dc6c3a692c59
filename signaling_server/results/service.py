"""The community's results: the exams of the sites a user sees in full, each with its community state and its
newest approved report, and the objects of one exam for download (docs/RESULTS.md).

Access is the study's (signaling_server/access/policy.py): a community user sees their own site's exams; an
expert the sites they serve; anyone what their grants open. De-identified sight (trainers) is not enough: a result
names the patient. An exam the caller does not see is 404, as everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.access import policy
from signaling_server.access.policy import Sight
from signaling_server.auth.identity import Caller
from signaling_server.db.models import Instance, Report, Series, Site, Study, User
from signaling_server.reading import service as queue
from signaling_server.reports.state import APPROVED
from signaling_server.results.states import ResultState

MAX_ROWS = 300


@dataclass(frozen=True)
class Result:
    study: Study
    site: Site
    report: Report | None  # the newest approved version
    approver: User | None


def parse_states(text: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    allowed = [s.value for s in ResultState]
    bad = [v for v in values if v not in allowed]
    if bad:
        raise errors.InvalidRequest(f"state: unknown value(s) {', '.join(bad)}; allowed: {', '.join(allowed)}")
    return values


async def list_results(db: AsyncSession, caller: Caller, states: tuple[str, ...] = ()) -> list[Result]:
    """The newest `MAX_ROWS` exams the caller sees in full, newest first, in the given community states."""
    caller.require_user()
    scope = await policy.scope_of(db, caller)
    query = select(Study).where(policy.study_clause(scope, least=Sight.FULL))
    if states:
        query = query.where(Study.state.in_(states))  # the community states are the study states (states.py)
    studies = list((await db.scalars(query.order_by(Study.registered_at.desc()).limit(MAX_ROWS))).all())
    reports = await _approved_reports(db, [s.id for s in studies])
    sites = {s.id: s for s in (await db.scalars(select(Site).where(Site.id.in_({s.site_id for s in studies})))).all()}
    approver_ids = {r.approver_id for r in reports.values() if r.approver_id}
    users = {u.id: u for u in (await db.scalars(select(User).where(User.id.in_(approver_ids)))).all()}
    results = []
    for study in studies:
        report = reports.get(study.id)
        approver = users.get(report.approver_id or "") if report is not None else None
        results.append(Result(study, sites[study.site_id], report, approver))
    return results


async def _approved_reports(db: AsyncSession, study_ids: list[str]) -> dict[str, Report]:
    if not study_ids:
        return {}
    query = (
        select(Report)
        .where(Report.study_id.in_(study_ids), Report.state.in_([s.value for s in APPROVED]))
        .order_by(Report.version)
    )
    return {r.study_id: r for r in (await db.scalars(query)).all()}  # the newest version last, so it stays


async def objects_of(db: AsyncSession, caller: Caller, study_id: str) -> tuple[Study, list[tuple[Instance, Series]]]:
    """The study (seen in full) and its stored objects, in series and instance order."""
    study = (await queue.get_visible(db, caller, study_id, least=Sight.FULL)).study
    rows = (
        await db.execute(
            select(Instance, Series)
            .join(Series, Series.id == Instance.series_id)
            .where(Instance.study_id == study.id)
            .order_by(Series.number, Series.series_uid, Instance.number, Instance.sop_uid)
        )
    ).all()
    return study, [(i, s) for i, s in rows]
