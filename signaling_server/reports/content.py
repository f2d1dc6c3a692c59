"""What a report holds: the reader's input, validated, and what the clinical rules compute from it.

Stored as `{"input": {...}, "computed": {...}}`. Drafts are re-evaluated on every save; signing evaluates once more
with `final=True` (free text must then say something) and the result is frozen with the signed version.
"""

from __future__ import annotations

from typing import Any

from signaling_server import errors
from signaling_server.reports import carotid, tirads
from signaling_server.reports.state import ReportKind

MAX_TEXT = 20_000


def _free_text(raw: dict[str, Any], final: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    clean: dict[str, str] = {}
    for key in ("findings", "impression"):
        value = raw.get(key, "")
        if not isinstance(value, str):
            raise errors.InvalidRequest(f"content.{key} must be text")
        if len(value) > MAX_TEXT:
            raise errors.InvalidRequest(f"content.{key} is longer than {MAX_TEXT} characters")
        clean[key] = value.strip()
    unknown = sorted(set(raw) - set(clean))
    if unknown:
        raise errors.InvalidRequest(f"content: unknown field(s) {', '.join(unknown)}")
    if final and not clean["impression"]:
        raise errors.InvalidRequest("content.impression: a signed report states its impression")
    return clean, {}


def _thyroid(raw: dict[str, Any], final: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    findings = tirads.ThyroidFindings.from_json(raw)
    if final and not findings.nodules and not findings.comment.strip():
        raise errors.InvalidRequest("content: a signed thyroid report lists its nodules or says why there are none")
    return findings.to_json(), tirads.score_exam(findings).to_json()


def _carotid(raw: dict[str, Any], final: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    findings = carotid.CarotidFindings.from_json(raw)
    return findings.to_json(), carotid.grade_exam(findings).to_json()


_EVALUATORS = {ReportKind.FREE_TEXT: _free_text, ReportKind.THYROID: _thyroid, ReportKind.CAROTID: _carotid}


def evaluate(kind: ReportKind, raw: dict[str, Any], *, final: bool) -> dict[str, Any]:
    """Validate `raw` for `kind` and compute its results; raises InvalidRequest naming the bad field."""
    if not isinstance(raw, dict):
        raise errors.InvalidRequest("content must be an object")
    clean, computed = _EVALUATORS[kind](raw, final)
    return {"input": clean, "computed": computed}
