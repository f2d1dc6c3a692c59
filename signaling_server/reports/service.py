"""Named actions on reports: draft, edit, sign (preliminary), approve (archiving, then final once its DICOM SR is
stored by the archiver), addendum.

Who may do what (CLINICAL.md §4):
- the reader holding the study's lock writes, edits and signs drafts, and writes addenda to a final report;
- a different expert approves a preliminary report (senior review); approval moves the study to approved and
  queues the report's archive job in the same transaction; the report is final once its SR is stored with the
  study (archiver.py);
- everyone who may see the study may read its reports; a de-identified reader (trainers) reads them with every
  identifier of the patient struck out of their text (`reading/deidentified.py`); a `shared_report` grant opens one
  report alone (signaling_server/access/policy.py).
Signing freezes what the rules computed, so a later change of a configurable rule never rewrites a signed report.
A thyroid report is scored with its site's system (`Site.thyroid_system`: ACR TI-RADS or C-TIRADS) as it was when
the report was started; every later edit, the signature and its addenda keep that system (content.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydicom.uid import generate_uid
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.access import policy, redaction
from signaling_server.access.policy import Sight
from signaling_server.access.redaction import Identifiers
from signaling_server.api import body
from signaling_server.auth.identity import Caller
from signaling_server.db.models import Report, ReportArchiveJob, Site, Study, StudyEvent, User
from signaling_server.orders import matching as order_matching
from signaling_server.reading import deidentified
from signaling_server.reading import service as queue
from signaling_server.reading.state import StudyState
from signaling_server.reading.state import transition as study_transition
from signaling_server.reports import content, key_images
from signaling_server.reports.state import APPROVED, ReportKind, ReportState, transition
from signaling_server.reports.tirads import ThyroidSystem


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReportView:
    report: Report
    author: User
    approver: User | None
    sight: Sight = Sight.FULL  # DEIDENTIFIED: its text is shown with the patient's identifiers struck out
    patient: Identifiers = redaction.NONE  # the identifiers to strike out (only loaded for DEIDENTIFIED)

    def shown(self, value: Any) -> Any:
        """A JSON value of the report as this view's reader is shown it."""
        return deidentified.json_for(self.sight, value, self.patient)


async def list_for_study(db: AsyncSession, caller: Caller, study_id: str) -> list[ReportView]:
    """The study's reports, each as the caller is shown it (a shared report may be seen in full on a study seen
    de-identified)."""
    study = (await queue.get_visible(db, caller, study_id, least=Sight.DEIDENTIFIED)).study
    scope = await policy.scope_of(db, caller)
    rows = (await db.scalars(select(Report).where(Report.study_id == study.id).order_by(Report.version))).all()
    sights = [policy.report_sight(scope, r, study) for r in rows]
    patient = await _patient(db, study, min(sights, default=Sight.FULL))
    return [await view(db, r, sight, patient) for r, sight in zip(rows, sights, strict=True)]


async def read(db: AsyncSession, caller: Caller, report_id: str) -> ReportView:
    """A report as the caller is shown it (de-identified readers too); else NotFound."""
    report, study, sight = await _visible(db, caller, report_id, Sight.DEIDENTIFIED)
    return await view(db, report, sight, await _patient(db, study, sight))


async def get_visible(
    db: AsyncSession, caller: Caller, report_id: str, *, least: Sight = Sight.FULL
) -> tuple[Report, Study]:
    """The report and its study if the caller sees the report with at least `least` sight; else NotFound."""
    report, study, _ = await _visible(db, caller, report_id, least)
    return report, study


async def _visible(db: AsyncSession, caller: Caller, report_id: str, least: Sight) -> tuple[Report, Study, Sight]:
    caller.require_user()
    report = await db.get(Report, report_id)
    study = await db.get(Study, report.study_id) if report is not None else None
    if report is None or study is None:
        raise errors.NotFound("no such report")
    sight = policy.report_sight(await policy.scope_of(db, caller), report, study)
    if sight < least:
        raise errors.NotFound("no such report")
    return report, study, sight


async def _patient(db: AsyncSession, study: Study, sight: Sight) -> Identifiers:
    if sight != Sight.DEIDENTIFIED:
        return redaction.NONE
    return (await deidentified.identifiers_of(db, [study]))[study.id]


async def view(
    db: AsyncSession, report: Report, sight: Sight = Sight.FULL, patient: Identifiers = redaction.NONE
) -> ReportView:
    author = await db.get(User, report.author_id)
    approver = await db.get(User, report.approver_id) if report.approver_id else None
    assert author is not None
    return ReportView(report, author, approver, sight, patient)


async def _next_version(db: AsyncSession, study_id: str) -> int:
    latest = await db.scalar(select(func.max(Report.version)).where(Report.study_id == study_id))
    return int(latest or 0) + 1


async def _latest(db: AsyncSession, study_id: str) -> Report | None:
    query = select(Report).where(Report.study_id == study_id).order_by(Report.version.desc()).limit(1)
    return (await db.scalars(query)).first()


async def create_draft(db: AsyncSession, caller: Caller, study_id: str, data: dict[str, Any], at: datetime) -> Report:
    user = caller.require_user(*queue.READER_ROLES)
    study = (await queue.get_visible(db, caller, study_id)).study
    queue.require_lock(study, user, at)
    if study.state != StudyState.MATCHED:
        raise errors.InvalidTransition(
            f"a study that is {study.state} takes no new report; write an addendum to its final report"
            if study.state in (StudyState.REPORTED, StudyState.APPROVED)
            else f"a study that is {study.state} cannot be reported yet"
        )
    latest = await _latest(db, study.id)
    if latest is not None and latest.state == ReportState.DRAFT:
        raise errors.Conflict("this study already has a draft report: edit that one")
    kind = ReportKind(body.choice(data, "kind", [k.value for k in ReportKind]))
    system = await site_system(db, study)
    return await _add_version(db, study, user, kind, body.obj(data, "content"), at, amends=None, system=system)


async def site_system(db: AsyncSession, study: Study) -> ThyroidSystem:
    """The thyroid scoring system of the study's site (ACR TI-RADS unless the site chose C-TIRADS)."""
    site = await db.get(Site, study.site_id)
    return ThyroidSystem(site.thyroid_system) if site is not None else ThyroidSystem.ACR_TIRADS


async def add_addendum(db: AsyncSession, caller: Caller, report_id: str, data: dict[str, Any], at: datetime) -> Report:
    user = caller.require_user(*queue.READER_ROLES)
    amended, study = await get_visible(db, caller, report_id)
    queue.require_lock(study, user, at)
    latest = await _latest(db, study.id)
    if amended.state == ReportState.ARCHIVING:
        raise errors.InvalidTransition("this report is approved but its SR is still being archived; try again soon")
    if amended.state != ReportState.FINAL or latest is None or latest.id != amended.id:
        raise errors.InvalidTransition("an addendum amends the newest final report only")
    raw = body.obj(data, "content")
    kind = ReportKind(amended.kind)
    return await _add_version(db, study, user, kind, raw, at, amends=amended, system=content.system_of(amended.content))


async def _add_version(
    db: AsyncSession,
    study: Study,
    user: User,
    kind: ReportKind,
    raw: dict[str, Any],
    at: datetime,
    amends: Report | None,
    system: ThyroidSystem,
) -> Report:
    stored = content.evaluate(kind, raw, final=False, system=system)
    report = Report(
        study_id=study.id,
        version=await _next_version(db, study.id),
        kind=kind,
        state=ReportState.DRAFT,
        content=stored,
        author_id=user.id,
        created_at=at,
        amends_id=amends.id if amends else None,
    )
    db.add(report)
    await db.flush()
    if amends is not None:
        await key_images.carry_over(db, amends, report)
    kind_of_event = "addendum_started" if amends else "report_started"
    db.add(
        StudyEvent(study_id=study.id, at=at, kind=kind_of_event, user_id=user.id, detail={"version": report.version})
    )
    await db.commit()
    return report


async def edit_draft(db: AsyncSession, caller: Caller, report_id: str, data: dict[str, Any], at: datetime) -> Report:
    user = caller.require_user(*queue.READER_ROLES)
    report, study = await get_visible(db, caller, report_id)
    _require_own_draft(report, study, user, at)
    system = content.system_of(report.content)
    report.content = content.evaluate(ReportKind(report.kind), body.obj(data, "content"), final=False, system=system)
    await db.commit()
    return report


def _require_own_draft(report: Report, study: Study, user: User, at: datetime) -> None:
    if report.state != ReportState.DRAFT:
        raise errors.InvalidTransition(f"a {report.state} report cannot be edited; write an addendum")
    if report.author_id != user.id:
        raise errors.Forbidden("only the author edits or signs a draft")
    queue.require_lock(study, user, at)


async def sign(db: AsyncSession, caller: Caller, report_id: str, at: datetime) -> Report:
    """The author signs the draft: it becomes preliminary, the study becomes reported, the lock is released."""
    user = caller.require_user(*queue.READER_ROLES)
    report, study = await get_visible(db, caller, report_id)
    _require_own_draft(report, study, user, at)
    system = content.system_of(report.content)
    report.content = content.evaluate(
        ReportKind(report.kind), report.content.get("input", {}), final=True, system=system
    )
    transition(report, ReportState.PRELIMINARY, at, user.id, db.add)
    study_transition(study, StudyState.REPORTED, at, db.add)
    study.lock_holder_id = None
    study.lock_expires_at = None
    await db.commit()
    return report


async def approve(db: AsyncSession, caller: Caller, report_id: str, at: datetime) -> tuple[Report, Study]:
    """A different expert approves a preliminary report: it becomes archiving, the study approved, and its archive
    job is queued, all in one transaction. The archiver makes it final once its SR is stored (archiver.py)."""
    user = caller.require_user(*queue.READER_ROLES)
    report, study = await get_visible(db, caller, report_id)
    if report.author_id == user.id:
        raise errors.Forbidden("a report is approved by a different expert than its author")
    if report.state in APPROVED:
        raise await _already_approved(db, report)
    unconfirmed = [w["id"] for w in report.content.get("computed", {}).get("warnings", []) if not w["confirmed"]]
    if unconfirmed:  # signing refuses these; a report signed before warnings existed is checked here
        raise errors.UnconfirmedWarnings("the report has unconfirmed warnings: return it to its author", unconfirmed)
    old = transition(report, ReportState.ARCHIVING, at, user.id, db.add)  # its event stays only if the update wins
    with db.no_autoflush:  # two seniors approving at once: the guarded UPDATE lets one win
        result = await db.execute(
            update(Report)
            .where(Report.id == report.id, Report.state == old)
            .values(state=report.state, approved_at=at, approver_id=user.id)
            .execution_options(synchronize_session=False)
        )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await db.rollback()
        raise errors.AlreadyApproved("another expert approved this report meanwhile; reload it")
    report.approver_id = user.id
    study_transition(study, StudyState.APPROVED, at, db.add)
    await order_matching.report_approved(db, study, report, at)  # its order, if any, completed with this report
    db.add(
        ReportArchiveJob(
            report_id=report.id,
            sop_uid=generate_uid(),
            series_uid=generate_uid(),
            state="pending",
            attempts=0,
            next_attempt_at=at,
            created_at=at,
        )
    )
    await db.commit()
    return report, study


async def _already_approved(db: AsyncSession, report: Report) -> errors.AlreadyApproved:
    approver = await db.get(User, report.approver_id) if report.approver_id else None
    by = f" by {approver.name}" if approver else ""
    if report.state == ReportState.FINAL:
        return errors.AlreadyApproved(f"this report was approved{by} and is final")
    return errors.AlreadyApproved(f"this report was approved{by}; its SR is being archived")


async def archive_job(db: AsyncSession, report: Report) -> ReportArchiveJob | None:
    """The report's archive job (every approved report has one, done or not)."""
    return await db.scalar(select(ReportArchiveJob).where(ReportArchiveJob.report_id == report.id))


async def predecessor(db: AsyncSession, report: Report) -> Report | None:
    return await db.get(Report, report.amends_id) if report.amends_id else None
