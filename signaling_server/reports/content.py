"""What a report holds: the reader's input, validated, and what the clinical rules compute from it.

Stored as `{"input": {...}, "computed": {...}}`. Drafts are re-evaluated on every save; signing evaluates once more
with `final=True` (free text must then say something) and the result is frozen with the signed version.

A thyroid report is scored with the system in its input (`system`: `acr_tirads` or `c_tirads`); the service sets
it from the study's site when the report is started and keeps it for every later version of that report.

Warnings (`computed.warnings`) are likely slips that are not refused but must be confirmed by the reader before the
report is signed: each has a stable `id` (`<code>:<where>`, e.g. `angle_missing:right`, `diameter_unit:nodule1`);
the reader lists the ids they confirm in the input's `confirmed_warnings`. Signing with a warning unconfirmed is
refused with `unconfirmed_warnings` (409, the ids in `warnings`).
"""

from __future__ import annotations

from typing import Any

from signaling_server import errors
from signaling_server.reports import carotid, tirads
from signaling_server.reports.state import ReportKind
from signaling_server.reports.wording import Note, english

MAX_TEXT = 20_000
CONFIRMED = "confirmed_warnings"

Evaluated = tuple[dict[str, Any], dict[str, Any], list[tuple[str, Note]]]


def _free_text(raw: dict[str, Any], final: bool) -> Evaluated:
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
    return clean, {}, []


def _thyroid(raw: dict[str, Any], final: bool) -> Evaluated:
    findings = tirads.ThyroidFindings.from_json(raw)
    if final and not findings.nodules and not findings.comment.strip():
        raise errors.InvalidRequest("content: a signed thyroid report lists its nodules or says why there are none")
    warnings = [
        (f"{said.code.removeprefix('warning.')}:nodule{i}", said)
        for i, nodule in enumerate(findings.nodules, start=1)
        for said in tirads.unit_warnings(nodule, i)
    ]
    return findings.to_json(), tirads.score_exam(findings).to_json(), warnings


def _carotid(raw: dict[str, Any], final: bool) -> Evaluated:
    findings = carotid.CarotidFindings.from_json(raw)
    result = carotid.grade_exam(findings)
    warnings = [
        (f"{said.code.removeprefix('warning.')}:{graded.side.value}", said)
        for graded in result.sides
        for said in graded.warnings
    ]
    return findings.to_json(), result.to_json(), warnings


_EVALUATORS = {ReportKind.FREE_TEXT: _free_text, ReportKind.THYROID: _thyroid, ReportKind.CAROTID: _carotid}


def _confirmed(raw: dict[str, Any]) -> list[str]:
    value = raw.pop(CONFIRMED, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) <= 100 for v in value) or len(value) > 100:
        raise errors.InvalidRequest(f"content.{CONFIRMED} must be a list of warning ids")
    return sorted(set(value))


def evaluate(
    kind: ReportKind, raw: dict[str, Any], *, final: bool, system: tirads.ThyroidSystem | None = None
) -> dict[str, Any]:
    """Validate `raw` for `kind` and compute its results; raises InvalidRequest naming the bad field, or
    UnconfirmedWarnings when `final` and a warning is not confirmed. `system` (thyroid) overrides the input's."""
    if not isinstance(raw, dict):
        raise errors.InvalidRequest("content must be an object")
    raw = dict(raw)
    confirmed = _confirmed(raw) if kind is not ReportKind.FREE_TEXT else []
    if kind is ReportKind.THYROID and system is not None:
        raw["system"] = system.value
    clean, computed, warnings = _EVALUATORS[kind](raw, final)
    shown = [
        {"id": wid, **said.to_json(), "text": english([said])[0], "confirmed": wid in confirmed}
        for wid, said in warnings
    ]
    if kind is not ReportKind.FREE_TEXT:
        clean[CONFIRMED] = [wid for wid, _ in warnings if wid in confirmed]  # a fixed slip's confirmation lapses
        computed["warnings"] = shown
    unconfirmed = [w["id"] for w in shown if not w["confirmed"]]
    if final and unconfirmed:
        raise errors.UnconfirmedWarnings(
            f"confirm or correct before signing: {', '.join(w['text'] for w in shown if not w['confirmed'])}",
            unconfirmed,
        )
    return {"input": clean, "computed": computed}


def system_of(stored: dict[str, Any]) -> tirads.ThyroidSystem:
    """The scoring system a stored thyroid report used (ACR for reports from before the choice existed)."""
    value = stored.get("input", {}).get("system", tirads.ThyroidSystem.ACR_TIRADS.value)
    return tirads.ThyroidSystem(value)
