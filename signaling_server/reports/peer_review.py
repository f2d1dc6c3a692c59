"""RADPEER-style peer review of approved X-ray and CT reports (CLINICAL.md §4; ACR RADPEER 2016).

An expert reviews a random sample of final (approved) CR, DX and CT reports written by other readers and scores
each one once:

    1   concur with the interpretation
    2   discrepancy in interpretation, not ordinarily expected to be made (an understandable miss)
    3   discrepancy in interpretation that should be made most of the time
    a / b   (with 2 or 3 only, and then required) unlikely / likely to be clinically significant

Per reader, the reviews add up to counts of 1, 2a, 2b, 3a, 3b and a discrepancy rate (scores 2 and 3 over all).

Errors (signaling_server/errors.py)::

    InvalidRequest
    └── InvalidPeerReview   invalid_peer_review   400  (+ "field")
    Forbidden               forbidden             403  (not an expert)
    └── OwnReport           own_report            403  (a reader does not review their own report)
    NotFound                not_found             404
    Conflict
    ├── NotReviewable       not_reviewable        409  (not a final CR/DX/CT report)
    └── AlreadyReviewed     already_reviewed      409  (one review per reviewer and report)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from signaling_server import errors
from signaling_server.access import policy
from signaling_server.access.policy import Sight
from signaling_server.auth.identity import Caller
from signaling_server.db.models import PeerReview, Report, Site, Study, User
from signaling_server.reading import deidentified
from signaling_server.reports.state import ReportState

log = logging.getLogger(__name__)

MODALITIES = ("CR", "DX", "CT")
REVIEWER_ROLES = ("expert",)
SUMMARY_ROLES = ("expert", "trainer", "admin")
SCORES = (1, 2, 3)
SIGNIFICANCE = ("a", "b")
CATEGORIES = ("1", "2a", "2b", "3a", "3b")
MAX_COMMENT_CHARS = 2000
DEFAULT_SAMPLE = 5
MAX_SAMPLE = 20


@dataclass(frozen=True)
class PeerReviewInput:
    score: int
    significance: str | None
    comment: str


@dataclass(frozen=True)
class SampledReport:
    report: Report
    study: Study
    site: Site
    author: User


@dataclass(frozen=True)
class PeerReviewView:
    review: PeerReview
    reader: User
    reviewer: User
    report: Report
    study: Study
    comment: str  # as the reader is shown it: a de-identified reader's without the patient's identifiers


def now() -> datetime:
    return datetime.now(UTC)


def category(score: int, significance: str | None) -> str:
    """ "1", "2a", "2b", "3a" or "3b"."""
    return f"{score}{significance or ''}" if score != 1 else "1"


def parse(data: Mapping[str, Any]) -> PeerReviewInput:
    score = data.get("score")
    if isinstance(score, bool) or score not in SCORES:
        raise errors.InvalidPeerReview(
            "score", "1 (concur), 2 (understandable miss) or 3 (should be made most of the time)"
        )
    significance = data.get("significance")
    if score == 1 and significance is not None:
        raise errors.InvalidPeerReview("significance", "null with score 1 (there is no discrepancy to weigh)")
    if score != 1 and significance not in SIGNIFICANCE:
        raise errors.InvalidPeerReview(
            "significance", "'a' (unlikely) or 'b' (likely clinically significant) with 2 or 3"
        )
    comment = data.get("comment", "")
    if comment is None:
        comment = ""
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
        raise errors.InvalidPeerReview("comment", f"a text of at most {MAX_COMMENT_CHARS} characters")
    return PeerReviewInput(int(score), significance, comment.strip())


def _reviewable() -> Select[Report, Study, Site, User]:
    return (
        select(Report, Study, Site, User)
        .join(Study, Study.id == Report.study_id)
        .join(Site, Site.id == Study.site_id)
        .join(User, User.id == Report.author_id)
        .where(Report.state == ReportState.FINAL, Study.modality.in_(MODALITIES))
    )


async def sample(db: AsyncSession, caller: Caller, size: int = DEFAULT_SAMPLE) -> list[SampledReport]:
    """A random sample of final CR/DX/CT reports the caller did not write and has not reviewed yet."""
    reviewer = caller.require_user(*REVIEWER_ROLES)
    reviewed = select(PeerReview.report_id).where(PeerReview.reviewer_id == reviewer.id)
    scope = await policy.scope_of(db, caller)
    query = (
        _reviewable()
        .where(Report.author_id != reviewer.id, Report.id.not_in(reviewed))
        .where(policy.study_clause(scope, least=Sight.FULL))
        .order_by(func.random())
        .limit(max(1, min(size, MAX_SAMPLE)))
    )
    rows = (await db.execute(query)).all()
    return [SampledReport(report, study, site, author) for report, study, site, author in rows]


async def submit(db: AsyncSession, caller: Caller, report_id: str, data: Mapping[str, Any]) -> PeerReviewView:
    reviewer = caller.require_user(*REVIEWER_ROLES)
    given = parse(data)
    report = await db.get(Report, report_id)
    study = await db.get(Study, report.study_id) if report else None
    if report is None or study is None or policy.study_sight(await policy.scope_of(db, caller), study) < Sight.FULL:
        raise errors.NotFound("no such report")
    if report.state != ReportState.FINAL or study.modality not in MODALITIES:
        raise errors.NotReviewable(
            f"peer review takes final {', '.join(MODALITIES)} reports; this is a {report.state} {study.modality} report"
        )
    if report.author_id == reviewer.id:
        raise errors.OwnReport("a reader does not peer-review their own report")
    review = PeerReview(
        report_id=report.id,
        reader_id=report.author_id,
        reviewer_id=reviewer.id,
        score=given.score,
        significance=given.significance,
        comment=given.comment,
        created_at=now(),
    )
    db.add(review)
    try:
        await db.commit()
    except IntegrityError:
        await db.rollback()
        raise errors.AlreadyReviewed("you have already reviewed this report") from None
    log.info(
        "report %s (study %s): peer review %s by %s",
        report.id,
        study.id,
        category(given.score, given.significance),
        reviewer.username,
    )
    return await _view(db, review)


async def for_report(db: AsyncSession, caller: Caller, report_id: str) -> list[PeerReviewView]:
    caller.require_user(*SUMMARY_ROLES)
    report = await db.get(Report, report_id)
    study = await db.get(Study, report.study_id) if report else None
    scope = await policy.scope_of(db, caller)
    sight = policy.report_sight(scope, report, study) if report is not None and study is not None else Sight.NONE
    if report is None or study is None or sight < Sight.DEIDENTIFIED:
        raise errors.NotFound("no such report")
    patient = (await deidentified.identifiers_of(db, [study]))[study.id] if sight == Sight.DEIDENTIFIED else None
    query = select(PeerReview).where(PeerReview.report_id == report_id).order_by(PeerReview.created_at)
    views = [await _view(db, r) for r in (await db.scalars(query)).all()]
    if patient is None:
        return views
    return [replace(v, comment=deidentified.text_for(sight, v.comment, patient)) for v in views]


async def summary(
    db: AsyncSession, caller: Caller, start: datetime | None = None, end: datetime | None = None
) -> list[dict[str, Any]]:
    """Per reader: counts of 1, 2a, 2b, 3a, 3b, the total and the discrepancy rate, most reviewed first."""
    caller.require_user(*SUMMARY_ROLES)
    query = select(PeerReview.reader_id, PeerReview.score, PeerReview.significance, func.count()).group_by(
        PeerReview.reader_id, PeerReview.score, PeerReview.significance
    )
    if start:
        query = query.where(PeerReview.created_at >= start)
    if end:
        query = query.where(PeerReview.created_at < end)
    counts: dict[str, dict[str, int]] = {}
    for reader_id, score, significance, n in (await db.execute(query)).all():
        per = counts.setdefault(reader_id, dict.fromkeys(CATEGORIES, 0))
        key = category(score, significance)
        per[key] = per.get(key, 0) + int(n)
    readers = {u.id: u for u in (await db.scalars(select(User).where(User.id.in_(counts)))).all()} if counts else {}
    rows = []
    for reader_id, per in counts.items():
        total = sum(per.values())
        discrepancies = total - per["1"]
        reader = readers.get(reader_id)
        rows.append(
            {
                "reader": {"id": reader_id, "name": reader.name if reader else reader_id},
                "counts": per,
                "total": total,
                "discrepancies": discrepancies,
                "significant": per["2b"] + per["3b"],
                "discrepancy_rate": round(discrepancies / total, 4) if total else None,
            }
        )
    return sorted(rows, key=lambda r: (-r["total"], r["reader"]["name"]))


async def _view(db: AsyncSession, review: PeerReview) -> PeerReviewView:
    reader = await db.get(User, review.reader_id)
    reviewer = await db.get(User, review.reviewer_id)
    report = await db.get(Report, review.report_id)
    study = await db.get(Study, report.study_id) if report else None
    assert reader is not None and reviewer is not None and report is not None and study is not None
    return PeerReviewView(review, reader, reviewer, report, study, review.comment)
