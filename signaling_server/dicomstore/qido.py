"""QIDO-RS (PS3.18 §10.6) over the index, and the lookups WADO-RS shares: studies, series, instances a reader sees.

Matching (PS3.4 C.2.2.2): single value; list of UIDs (`,` or `\\`); `*` and `?` wildcards on PatientName (case
insensitive), PatientID, AccessionNumber, StudyDescription; date ranges `a-b`, `a-`, `-b` on StudyDate and
PatientBirthDate; ModalitiesInStudy matches a study with a series of any listed modality. An empty value
matches everything. Query keys may be keywords or tags (`00100020`). A known attribute this index cannot match on
is ignored and named in a `Warning` header; a name that is no DICOM keyword is a 400.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from sqlalchemy import ColumnElement, Select, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from signaling_server import errors
from signaling_server.access import policy, redaction
from signaling_server.access.policy import Scope, Sight
from signaling_server.access.redaction import Identifiers
from signaling_server.db.models import Instance, PatientIdentifier, Series, Study

DEFAULT_LIMIT, MAX_LIMIT = 200, 1000
_CONTROL = {"limit", "offset", "includefield", "fuzzymatching"}
_DATE_RANGE = re.compile(r"^(\d{8})?(-)?(\d{8})?$")

STUDY_KEYS = frozenset(
    {
        "StudyInstanceUID",
        "PatientID",
        "PatientName",
        "StudyDate",
        "AccessionNumber",
        "ModalitiesInStudy",
        "StudyDescription",
        "PatientBirthDate",
        "PatientSex",
    }
)
SERIES_KEYS = frozenset({"SeriesInstanceUID", "Modality", "SeriesNumber"})
INSTANCE_KEYS = frozenset({"SOPInstanceUID", "SOPClassUID", "InstanceNumber", "SeriesInstanceUID", "Modality"})


@dataclass(frozen=True)
class Query:
    matches: dict[str, str]  # DICOM keyword → value to match (empty values dropped)
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    ignored: tuple[str, ...] = field(default_factory=tuple)  # known attributes we cannot match on


def parse_query(params: Mapping[str, str], supported: frozenset[str]) -> Query:
    matches: dict[str, str] = {}
    ignored: list[str] = []
    for name, value in params.items():
        if name in _CONTROL:
            continue
        keyword = _keyword(name)
        if keyword not in supported:
            ignored.append(keyword)
        elif value.strip():
            matches[keyword] = value.strip()
    return Query(
        matches,
        _count(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        _count(params, "offset", 0, 0, None),
        tuple(ignored),
    )


def _keyword(name: str) -> str:
    if re.fullmatch(r"[0-9A-Fa-f]{8}", name):
        keyword = keyword_for_tag(int(name, 16))
        if keyword:
            return keyword
    elif tag_for_keyword(name) is not None:
        return name
    raise errors.InvalidRequest(f"{name!r} is not a DICOM attribute keyword or tag")


def _count(params: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = params.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < low:
        raise errors.InvalidRequest(f"{name} must be a whole number of at least {low}")
    return min(int(raw), high) if high is not None else int(raw)


# --- lookups shared with WADO-RS ------------------------------------------------------------------------------


async def visible_study(db: AsyncSession, study_uid: str, scope: Scope, least: Sight = Sight.FULL) -> Study:
    """The study with images, if the reader sees it with at least `least` sight (access policy); else NotFound."""
    study = await db.scalar(select(Study).where(Study.study_uid == study_uid))
    if study is None or study.instance_count == 0 or policy.study_sight(scope, study) < least:
        raise errors.NotFound(f"no study {study_uid}")
    return study


async def study_series(db: AsyncSession, study: Study, series_uid: str) -> Series:
    series = await db.scalar(select(Series).where(Series.series_uid == series_uid, Series.study_id == study.id))
    if series is None:
        raise errors.NotFound(f"no series {series_uid} in this study")
    return series


async def instances_of(
    db: AsyncSession, study: Study, series: Series | None = None, sop_uid: str | None = None
) -> list[tuple[Instance, Series]]:
    """Instances of a study (or one series, or one instance), in series then instance order; NotFound if none."""
    query = _instance_query(study)
    if series is not None:
        query = query.where(Instance.series_id == series.id)
    if sop_uid is not None:
        query = query.where(Instance.sop_uid == sop_uid)
    found = [(i, s) for i, s in (await db.execute(query)).all()]
    if not found:
        raise errors.NotFound(f"no instance {sop_uid}" if sop_uid else "no instances")
    return found


def _instance_query(study: Study) -> Select[Instance, Series]:
    query = select(Instance, Series).join(Series, Series.id == Instance.series_id).where(Instance.study_id == study.id)
    return query.order_by(Series.number, Series.series_uid, Instance.number, Instance.sop_uid)


# --- searches ---------------------------------------------------------------------------------------------------


async def search_studies(db: AsyncSession, q: Query, scope: Scope, base: str) -> list[dict[str, Any]]:
    series_count = select(func.count(Series.id)).where(Series.study_id == Study.id).scalar_subquery()
    # the birth date and sex the study's own site sent, never another site's (a linked identity has several)
    sent = and_(PatientIdentifier.site_id == Study.site_id, PatientIdentifier.local_id == Study.local_patient_id)
    query = select(Study, PatientIdentifier.birth_date, PatientIdentifier.sex, series_count)
    query = query.outerjoin(PatientIdentifier, sent)
    query = query.where(Study.instance_count > 0, policy.study_clause(scope, least=Sight.FULL))
    for keyword, value in q.matches.items():
        query = query.where(_study_match(keyword, value))
    query = query.order_by(Study.study_date.desc(), Study.study_time.desc(), Study.id).limit(q.limit).offset(q.offset)
    rows = (await db.execute(query)).all()
    modalities = await _modalities(db, [row[0].id for row in rows])
    return [_study_json(s, birth, sex, n, modalities.get(s.id, []), base) for s, birth, sex, n in rows]


async def search_series(
    db: AsyncSession, study: Study, q: Query, base: str, patient: Identifiers | None = None
) -> list[dict[str, Any]]:
    """The study's series; with `patient` (a de-identified reader), each description cleared of their identifiers."""
    counted = select(func.count(Instance.id)).where(Instance.series_id == Series.id).scalar_subquery()
    query = select(Series, counted).where(Series.study_id == study.id)
    for keyword, value in q.matches.items():
        query = query.where(_series_match(keyword, value))
    query = query.order_by(Series.number, Series.series_uid).limit(q.limit).offset(q.offset)
    return [_series_json(study, s, n, base, patient) for s, n in (await db.execute(query)).all()]


async def search_instances(
    db: AsyncSession, study: Study, series: Series | None, q: Query, base: str
) -> list[dict[str, Any]]:
    query = _instance_query(study)
    if series is not None:
        query = query.where(Instance.series_id == series.id)
    for keyword, value in q.matches.items():
        query = query.where(_instance_match(keyword, value))
    rows = (await db.execute(query.limit(q.limit).offset(q.offset))).all()
    return [_instance_json(study, s, i, base) for i, s in rows]


def _study_match(keyword: str, value: str) -> ColumnElement[bool]:
    if keyword == "StudyInstanceUID":
        return Study.study_uid.in_(_uids(value))
    if keyword == "PatientID":
        return _text_match(Study.local_patient_id, value)
    if keyword == "PatientName":
        return _text_match(Study.patient_name, value, fold_case=True)
    if keyword == "AccessionNumber":
        return _text_match(Study.accession, value)
    if keyword == "StudyDescription":
        return _text_match(Study.description, value, fold_case=True)
    if keyword == "StudyDate":
        return _date_match(Study.study_date, value)
    if keyword == "PatientBirthDate":
        return _date_match(PatientIdentifier.birth_date, value)
    if keyword == "PatientSex":
        return PatientIdentifier.sex == value.upper()
    wanted = [m.strip().upper() for m in re.split(r"[,\\]", value) if m.strip()]
    return exists().where(Series.study_id == Study.id, Series.modality.in_(wanted))  # ModalitiesInStudy


def _series_match(keyword: str, value: str) -> ColumnElement[bool]:
    if keyword == "SeriesInstanceUID":
        return Series.series_uid.in_(_uids(value))
    if keyword == "Modality":
        return Series.modality == value.upper()
    return Series.number == _int(keyword, value)  # SeriesNumber


def _instance_match(keyword: str, value: str) -> ColumnElement[bool]:
    if keyword == "SOPInstanceUID":
        return Instance.sop_uid.in_(_uids(value))
    if keyword == "SOPClassUID":
        return Instance.sop_class_uid.in_(_uids(value))
    if keyword in ("SeriesInstanceUID", "Modality"):
        return _series_match(keyword, value)
    return Instance.number == _int(keyword, value)  # InstanceNumber


def _uids(value: str) -> list[str]:
    return [u.strip() for u in re.split(r"[,\\]", value) if u.strip()]


def _int(keyword: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise errors.InvalidRequest(f"{keyword} must be a whole number") from None


def _text_match(column: InstrumentedAttribute[str], value: str, fold_case: bool = False) -> ColumnElement[bool]:
    if "*" not in value and "?" not in value:
        return func.lower(column) == value.lower() if fold_case else column == value
    pattern = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%").replace("?", "_")
    return column.ilike(pattern, escape="\\") if fold_case else column.like(pattern, escape="\\")


def _date_match(column: InstrumentedAttribute[str], value: str) -> ColumnElement[bool]:
    found = _DATE_RANGE.match(value.replace(".", ""))
    if found is None or not (found.group(1) or found.group(3)):
        raise errors.InvalidRequest(f"{value!r} is not a date (YYYYMMDD) or a range (a-b, a-, -b)")
    start, dash, end = found.groups()
    if not dash:
        return column == start
    conditions = [column != ""]
    if start:
        conditions.append(column >= start)
    if end:
        conditions.append(column <= end)
    return and_(*conditions)


async def _modalities(db: AsyncSession, study_ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    if study_ids:
        query = select(Series.study_id, Series.modality).where(Series.study_id.in_(study_ids)).distinct()
        for study_id, modality in (await db.execute(query)).all():
            found.setdefault(study_id, []).append(modality)
    return {k: sorted(v) for k, v in found.items()}


# --- DICOM JSON (PS3.18 F.2) -------------------------------------------------------------------------------------
# Written directly from the index, not through pydicom: nothing to validate (and warn about) on the event loop.


def _json(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """{tag: {"vr", "Value"}} from (keyword, value) pairs; None or "" gives an empty (present) attribute."""
    out: dict[str, Any] = {}
    for keyword, value in pairs:
        tag = tag_for_keyword(keyword)
        assert tag is not None, keyword
        vr = dictionary_VR(tag)
        values = value if isinstance(value, list) else [] if value is None or value == "" else [value]
        if vr == "PN":
            values = [_person_name(str(v)) for v in values]
        out[f"{tag:08X}"] = {"vr": vr, "Value": values} if values else {"vr": vr}
    return out


def _person_name(value: str) -> dict[str, str]:
    groups = dict(zip(("Alphabetic", "Ideographic", "Phonetic"), value.split("="), strict=False))
    return {name: text for name, text in groups.items() if text}


def _study_json(
    s: Study, birth: str | None, sex: str | None, series_count: int, modalities: list[str], base: str
) -> dict[str, Any]:
    return _json(
        [
            ("SpecificCharacterSet", "ISO_IR 192"),
            ("StudyDate", s.study_date),
            ("StudyTime", s.study_time),
            ("AccessionNumber", s.accession),
            ("ModalitiesInStudy", modalities or [s.modality]),
            ("StudyDescription", s.description),
            ("PatientName", s.patient_name),
            ("PatientID", s.local_patient_id),
            ("PatientBirthDate", birth),
            ("PatientSex", sex),
            ("StudyInstanceUID", s.study_uid),
            ("NumberOfStudyRelatedSeries", series_count),
            ("NumberOfStudyRelatedInstances", s.instance_count),
            ("RetrieveURL", f"{base}/studies/{s.study_uid}"),
        ]
    )


def _series_json(study: Study, s: Series, count: int, base: str, patient: Identifiers | None) -> dict[str, Any]:
    return _json(
        [
            ("Modality", s.modality),
            ("SeriesDescription", s.description if patient is None else redaction.redact(s.description, patient)),
            ("StudyInstanceUID", study.study_uid),
            ("SeriesInstanceUID", s.series_uid),
            ("SeriesNumber", s.number),
            ("NumberOfSeriesRelatedInstances", count),
            ("RetrieveURL", f"{base}/studies/{study.study_uid}/series/{s.series_uid}"),
        ]
    )


def _instance_json(study: Study, s: Series, i: Instance, base: str) -> dict[str, Any]:
    return _json(
        [
            ("SOPClassUID", i.sop_class_uid),
            ("SOPInstanceUID", i.sop_uid),
            ("AvailableTransferSyntaxUID", i.transfer_syntax_uid),
            ("Modality", s.modality),
            ("StudyInstanceUID", study.study_uid),
            ("SeriesInstanceUID", s.series_uid),
            ("InstanceNumber", i.number),
            ("NumberOfFrames", i.frames),
            ("Rows", i.rows),
            ("Columns", i.columns),
            ("RetrieveURL", f"{base}/studies/{study.study_uid}/series/{s.series_uid}/instances/{i.sop_uid}"),
        ]
    )
