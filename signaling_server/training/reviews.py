"""Trainer reviews of recorded sessions (CLINICAL.md §5) and their session score (QC.md §4).

A trainer scores a session once: one review per trainer and recording, and saving again replaces it.

- OSAUS (Tolsgaard et al. 2013): seven items, 1–5 each (the keys of :data:`qc.score.OSAUS_ITEMS`);
- image quality (Li et al. 2022): five items, 1–5 each (colour Doppler adjustment may be null: not applicable to
  an exam without colour Doppler), and an overall score 1–5;
- comments, each pinned to a moment of the video (``t``: seconds on the media clock) or to none (``t`` null).

The session score is :func:`qc.score.session_score` (0–1, the configured and the used weights beside it) over the
session's QC (its stored record, :mod:`quality.session_qc`: completeness, link quality), the trainer's OSAUS, and for
the image part the trainer's five image-quality items, or the qc package's automatic ones when no trainer rated the
session.

Errors (signaling_server/errors.py)::

    InvalidRequest
    └── InvalidReview    invalid_review   400  (+ "field": the first bad field, e.g. "osaus.indication")
    Forbidden            forbidden        403  (only a trainer saves a review)
    NotFound             not_found        404  (no such recording for the caller; no review of the caller's)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from qc import score as qc_score
from recordings.qc_record import SessionQc
from signaling_server import errors
from signaling_server.access import policy
from signaling_server.auth.identity import Caller
from signaling_server.db.models import Consultation, Recording, Site, TrainerReview, User
from signaling_server.session_recordings import service as recordings

log = logging.getLogger(__name__)

_OSAUS_LABELS = {
    "indication": "Indication for the examination",
    "equipment": "Applied knowledge of the equipment",
    "image_optimisation": "Image optimisation",
    "systematic_examination": "Systematic examination",
    "interpretation": "Interpretation of images",
    "documentation": "Documentation",
    "decision_making": "Medical decision making",
}
OSAUS_ITEMS: tuple[tuple[str, str], ...] = tuple((k, _OSAUS_LABELS[k]) for k in qc_score.OSAUS_ITEMS)
IMAGE_QUALITY_ITEMS: tuple[tuple[str, str], ...] = (
    ("gain", "Grey value (gain)"),
    ("tgc", "Time-gain compensation (TGC)"),
    ("depth", "Depth"),
    ("colour_doppler", "Colour Doppler adjustment"),
    ("key_information", "Visibility of key information"),
)
OVERALL = ("overall", "Overall image quality")
NOT_APPLICABLE = frozenset({"colour_doppler"})
SCALE = (1, 5)
MAX_COMMENTS = 200
MAX_COMMENT_CHARS = 2000
REVIEWER_ROLES = ("trainer",)
WEIGHTS: dict[str, float] = dict(qc_score.DEFAULT_WEIGHTS)  # the default; the server's come from TELEUS_QC_WEIGHTS
PART_LABELS = {
    "completeness": "Exam completeness",
    "image": "Image quality",
    "link": "Link quality",
    "osaus": "OSAUS (trainer)",
}


@dataclass(frozen=True)
class Comment:
    t: float | None
    text: str


@dataclass(frozen=True)
class ReviewInput:
    osaus: dict[str, int]
    image_quality: dict[str, int | None]
    comments: tuple[Comment, ...]


@dataclass(frozen=True)
class ReviewView:
    review: TrainerReview
    trainer: User
    sonographer: User | None
    recording: Recording
    consultation: Consultation
    site: Site


def now() -> datetime:
    return datetime.now(UTC)


# ---- validation ----------------------------------------------------------------------------------------------


def _score(value: Any, field: str, *, nullable: bool = False) -> int | None:
    if value is None and nullable:
        return None
    low, high = SCALE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        extra = ", or null when not applicable" if nullable else ""
        raise errors.InvalidReview(field, f"a whole number from {low} to {high}{extra}")
    return value


def _items(
    data: Mapping[str, Any], key: str, items: Sequence[tuple[str, str]], nullable: frozenset[str] = frozenset()
) -> dict[str, Any]:
    given = data.get(key)
    if not isinstance(given, dict):
        raise errors.InvalidReview(key, "an object of item scores")
    known = {k for k, _ in items}
    for name in given:
        if name not in known:
            raise errors.InvalidReview(
                f"{key}.{str(name)[:40]}", f"not an item; the items are {', '.join(sorted(known))}"
            )
    out: dict[str, Any] = {}
    for name, _ in items:
        if name not in given and name not in nullable:
            raise errors.InvalidReview(f"{key}.{name}", "missing")
        out[name] = _score(given.get(name), f"{key}.{name}", nullable=name in nullable)
    return out


def _comments(value: Any, duration: float | None) -> tuple[Comment, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_COMMENTS:
        raise errors.InvalidReview("comments", f"a list of at most {MAX_COMMENTS} comments")
    found = []
    for index, item in enumerate(value):
        field = f"comments[{index}]"
        if not isinstance(item, dict):
            raise errors.InvalidReview(field, "an object {t, text}")
        t = item.get("t")
        if t is not None:
            if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
                raise errors.InvalidReview(f"{field}.t", "seconds from the start of the video (>= 0), or null")
            if duration is not None and t > duration + 1:
                raise errors.InvalidReview(f"{field}.t", f"after the end of the recording ({duration:.1f} s)")
        text = item.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_COMMENT_CHARS:
            raise errors.InvalidReview(f"{field}.text", f"a text of 1 to {MAX_COMMENT_CHARS} characters")
        found.append(Comment(None if t is None else round(float(t), 3), text.strip()))
    return tuple(sorted(found, key=lambda c: (c.t is None, c.t or 0.0)))


def parse_review(data: Mapping[str, Any], duration: float | None = None) -> ReviewInput:
    """The review the body describes, or InvalidReview naming the first bad field."""
    osaus = _items(data, "osaus", OSAUS_ITEMS)
    image_quality = _items(data, "image_quality", (*IMAGE_QUALITY_ITEMS, OVERALL), NOT_APPLICABLE)
    return ReviewInput(osaus, image_quality, _comments(data.get("comments"), duration))


# ---- the session score -----------------------------------------------------------------------------------------


def mean(values: Sequence[float | int | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def osaus_mean(osaus: Mapping[str, Any]) -> float | None:
    return mean([osaus.get(k) for k, _ in OSAUS_ITEMS])


def image_quality_mean(image_quality: Mapping[str, Any]) -> float | None:
    """The mean of the five items (the overall score is shown beside it, not averaged in)."""
    return mean([image_quality.get(k) for k, _ in IMAGE_QUALITY_ITEMS])


def trainer_image_items(image_quality: Mapping[str, Any] | None) -> dict[str, dict[str, Any] | None] | None:
    """The trainer's five items in the shape of :func:`qc.score.image_items` (None when none was rated)."""
    if not image_quality:
        return None
    items = {
        k: None if image_quality.get(k) is None else {"score": float(image_quality[k]), "by": "trainer"}
        for k, _ in IMAGE_QUALITY_ITEMS
    }
    return items if any(items.values()) else None


def session_score(
    qc: SessionQc,
    osaus: Mapping[str, float] | None = None,
    image_quality: Mapping[str, Any] | None = None,
    weights: Mapping[str, float] = WEIGHTS,
) -> dict[str, Any]:
    """qc.score's session score (``total`` 0–1, ``weights``, ``weights_used``, ``parts``) with what it was made of:
    ``image_source`` ("trainer", "qc" or None), the OSAUS and image-quality means and the overall rating."""
    trainer = trainer_image_items(image_quality)
    image = trainer or qc.image
    score = qc_score.session_score(qc.completeness, image, qc.link, osaus or None, weights)
    score["image_source"] = None if score["parts"]["image"] is None else ("trainer" if trainer else "qc")
    score["osaus_mean"] = _rounded(osaus_mean(osaus or {}))
    score["image_quality_mean"] = _rounded(image_quality_mean(image_quality or {}))
    score["overall"] = _rounded((image_quality or {}).get(OVERALL[0]))
    return score


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def scheme(weights: Mapping[str, float] = WEIGHTS) -> dict[str, Any]:
    """What the form asks, for pages and scripts: the items, the scale and the weights."""
    return {
        "scale": list(SCALE),
        "osaus": [{"key": k, "label": label} for k, label in OSAUS_ITEMS],
        "image_quality": [
            {"key": k, "label": label, "nullable": k in NOT_APPLICABLE} for k, label in (*IMAGE_QUALITY_ITEMS, OVERALL)
        ],
        "weights": dict(weights),
        "parts": dict(PART_LABELS),
        "max_comments": MAX_COMMENTS,
    }


# ---- actions and queries ---------------------------------------------------------------------------------------


async def save(
    db: AsyncSession,
    caller: Caller,
    recording_id: str,
    data: Mapping[str, Any],
    qc: SessionQc,
    weights: Mapping[str, float] = WEIGHTS,
) -> tuple[ReviewView, bool]:
    """Create or replace the caller's review of the recording: (view, created)."""
    trainer = caller.require_user(*REVIEWER_ROLES)
    view = await recordings.get_visible(db, caller, recording_id)
    duration = view.recording.duration_seconds
    # comments are pinned to the session clock: a later segment starts at its offset on it (recordings/session.py)
    given = parse_review(data, None if duration is None else duration + qc.last_segment_offset)
    at = now()
    review = await _own(db, view.recording.id, trainer.id)
    created = review is None
    if review is None:
        review = TrainerReview(recording_id=view.recording.id, trainer_id=trainer.id, created_at=at)
        db.add(review)
    _fill(review, view.recording, given, qc, at, weights)
    try:
        await db.commit()
    except IntegrityError:  # the same trainer saved twice at once: the other save made the row, replace it
        await db.rollback()
        review = await _own(db, view.recording.id, trainer.id)
        if review is None:
            raise
        created = False
        _fill(review, view.recording, given, qc, at, weights)
        await db.commit()
    log.info("recording %s: review by %s %s", view.recording.id, trainer.username, "created" if created else "updated")
    return await _view(db, review), created


def _fill(
    review: TrainerReview,
    recording: Recording,
    given: ReviewInput,
    qc: SessionQc,
    at: datetime,
    weights: Mapping[str, float],
) -> None:
    review.sonographer_id = recording.sonographer_id
    review.osaus = dict(given.osaus)
    review.image_quality = dict(given.image_quality)
    review.comments = [{"t": c.t, "text": c.text} for c in given.comments]
    review.score = session_score(qc, given.osaus, given.image_quality, weights)
    review.updated_at = at


async def _own(db: AsyncSession, recording_id: str, trainer_id: str) -> TrainerReview | None:
    query = select(TrainerReview).where(
        TrainerReview.recording_id == recording_id, TrainerReview.trainer_id == trainer_id
    )
    return (await db.scalars(query)).first()


async def mine(db: AsyncSession, caller: Caller, recording_id: str) -> ReviewView:
    trainer = caller.require_user(*REVIEWER_ROLES)
    view = await recordings.get_visible(db, caller, recording_id)
    review = await _own(db, view.recording.id, trainer.id)
    if review is None:
        raise errors.NotFound("you have not reviewed this recording yet")
    return await _view(db, review)


async def for_recording(db: AsyncSession, caller: Caller, recording_id: str) -> list[ReviewView]:
    """Every review of a recording the caller may see (its sonographer sees the reviews of their session)."""
    view = await recordings.get_visible(db, caller, recording_id)
    query = select(TrainerReview).where(TrainerReview.recording_id == view.recording.id)
    rows = (await db.scalars(query.order_by(TrainerReview.created_at))).all()
    return [await _view(db, r) for r in rows]


async def list_reviews(db: AsyncSession, caller: Caller, filters: Mapping[str, str]) -> list[ReviewView]:
    """Reviews, newest session first; filters: sonographer (user id), site (id or code), trainer (user id).
    A sonographer sees the reviews of their own sessions only."""
    caller.require_user()
    query = (
        select(TrainerReview)
        .join(Recording, Recording.id == TrainerReview.recording_id)
        .join(Site, Site.id == Recording.site_id)
    )
    query = query.where(policy.recording_clause(await policy.scope_of(db, caller)))  # as the recordings themselves
    if filters.get("sonographer"):
        query = query.where(TrainerReview.sonographer_id == filters["sonographer"])
    if filters.get("trainer"):
        query = query.where(TrainerReview.trainer_id == filters["trainer"])
    if filters.get("site"):
        query = query.where((Site.id == filters["site"]) | (Site.code == filters["site"]))
    query = query.order_by(Recording.started_at.desc(), TrainerReview.created_at).limit(1000)
    return [await _view(db, r) for r in (await db.scalars(query)).all()]


async def _view(db: AsyncSession, review: TrainerReview) -> ReviewView:
    recording = await db.get(Recording, review.recording_id)
    assert recording is not None
    consultation = await db.get(Consultation, recording.consultation_id)
    site = await db.get(Site, recording.site_id)
    trainer = await db.get(User, review.trainer_id)
    sonographer = await db.get(User, review.sonographer_id) if review.sonographer_id else None
    assert consultation is not None and site is not None and trainer is not None
    return ReviewView(review, trainer, sonographer, recording, consultation, site)
