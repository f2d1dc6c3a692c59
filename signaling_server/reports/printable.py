"""A report as one standalone, printable HTML page: study header, status, version, author, and the report itself.

Every value from a report or a study is HTML-escaped (`_e`); the page needs no script, no network and no other file.
Notes the rules produce (the TI-RADS 1-point rule, a carotid angle over 60°, discordant criteria) are printed, and
flags are set in bold with a bar so they survive black-and-white printing.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from signaling_server.reports import carotid, tirads
from signaling_server.reports.carotid import CarotidFindings, CarotidResult, SideGrade
from signaling_server.reports.sr import (
    FreeText,
    ReportContent,
    ReportStatus,
    ReportVersion,
    StudyHeader,
    impression,
    points_text,
    recommendation,
)
from signaling_server.reports.tirads import NoduleScore, ThyroidFindings, ThyroidResult

CSS = """
@page { size: A4; margin: 15mm; }
body { font: 10.5pt/1.45 "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; color: #000;
       max-width: 180mm; margin: 0 auto; }
h1 { font-size: 16pt; margin: 0 0 4pt; }
h2 { font-size: 12.5pt; border-bottom: 1px solid #000; margin: 12pt 0 4pt; }
table { border-collapse: collapse; width: 100%; margin: 4pt 0; }
th, td { border: 1px solid #888; padding: 2pt 4pt; text-align: left; vertical-align: top; }
th { background: #eee; width: 28%; }
.status { display: inline-block; font-weight: bold; border: 2px solid #000; padding: 1pt 6pt; }
.addendum, .flag { font-weight: bold; border-left: 4pt solid #000; padding-left: 4pt; }
.grade { font-weight: bold; font-size: 12pt; }
.text { white-space: pre-wrap; }
tr, li, section { break-inside: avoid; }
footer { margin-top: 16pt; font-size: 8.5pt; color: #333; }
@media print { th { background: none; } }
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _name(person: str) -> str:
    return " ".join(part for part in person.replace("^", " ").split())


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 else value


def _time(value: str) -> str:
    return f"{value[:2]}:{value[2:4]}" if len(value) >= 4 else value


def _moment(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M %Z").strip()


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs)


def _list(items: tuple[str, ...] | list[str], css: str = "") -> str:
    if not items:
        return ""
    klass = f' class="{css}"' if css else ""
    return "<ul>" + "".join(f"<li{klass}>{_e(item)}</li>" for item in items) + "</ul>"


def _header(study: StudyHeader, version: ReportVersion) -> str:
    study_rows = _rows(
        [
            ("Patient", _name(study.patient_name)),
            ("Patient ID", study.patient_id),
            ("Birth date", _date(study.patient_birth_date)),
            ("Sex", study.patient_sex),
            ("Accession number", study.accession_number),
            ("Study date", f"{_date(study.study_date)} {_time(study.study_time)}".strip()),
            ("Referring physician", _name(study.referring_physician)),
            ("Study instance UID", study.study_instance_uid),
        ]
    )
    if version.status is ReportStatus.FINAL and version.approved_at is not None:
        status = f"FINAL: approved by {_name(version.approver)} at {_moment(version.approved_at)}"
    else:
        status = "PRELIMINARY: not yet approved"
    signed = [
        ("Version", str(version.version)),
        ("Author", f"{_name(version.author)}, signed {_moment(version.signed_at)}"),
        ("Completion", "complete" if version.complete else "partial"),
    ]
    addendum = ""
    if version.predecessor is not None:
        addendum = f'<p class="addendum">Addendum: amends version {_e(version.predecessor.version)}</p>'
    return f'<p class="status">{_e(status)}</p>{addendum}<table>{study_rows}</table><table>{_rows(signed)}</table>'


def _nodule(score: NoduleScore) -> str:
    n = score.nodule
    foci = ", ".join(tirads.label(f) for f in tirads.EchogenicFocus if f in n.echogenic_foci)
    p = score.points
    rows = [
        ("Location", n.location or "not given"),
        (
            "Size (max axial × perpendicular × craniocaudal)",
            f"{n.max_axial_mm:g} × {n.perpendicular_axial_mm:g} × {n.craniocaudal_mm:g} mm",
        ),
        ("Composition", f"{tirads.label(n.composition)} ({p.composition})"),
        ("Echogenicity", f"{tirads.label(n.echogenicity)} ({p.echogenicity})"),
        ("Shape", f"{tirads.label(n.shape)} ({p.shape})"),
        ("Margin", f"{tirads.label(n.margin)} ({p.margin})"),
        ("Echogenic foci", f"{foci} ({p.echogenic_foci})"),
        ("Total", f"{points_text(score.total)}: {score.level_label}"),
        ("Recommendation", recommendation(score)),
    ]
    return f"<section><h3>Nodule {_e(score.number)}</h3><table>{_rows(rows)}</table>{_list(score.notes)}</section>"


def _thyroid(findings: ThyroidFindings, result: ThyroidResult) -> str:
    parts = [f"<h2>Findings ({_e(result.system)})</h2>"]
    parts += [_nodule(score) for score in result.nodules]
    if findings.comment:
        parts.append(f'<p class="text">{_e(findings.comment)}</p>')
    parts.append("<h2>Impression</h2>")
    parts.append(_list([impression(score) for score in result.nodules]) + _list(result.notes))
    return "".join(parts)


def _value(value: float | None, unit: str) -> str:
    return "not measured" if value is None else f"{value:g} {unit}".strip()


def _side(graded: SideGrade) -> str:
    s = graded.findings
    ratio = s.ratio
    rows = [
        ("ICA PSV", _value(s.ica_psv_cm_s, "cm/s")),
        ("ICA EDV", _value(s.ica_edv_cm_s, "cm/s")),
        ("CCA PSV", _value(s.cca_psv_cm_s, "cm/s")),
        ("ICA/CCA ratio", "not available" if ratio is None else f"{ratio:.2f}"),
        ("Doppler angle", _value(s.doppler_angle_deg, "°")),
        ("Plaque", carotid.PLAQUE_LABELS[s.plaque]),
        ("ICA flow", s.flow.value),
        ("IMT", _value(s.imt_mm, "mm") + ("" if graded.imt_class is None else f" ({graded.imt_class.value})")),
    ]
    if s.eca_psv_cm_s is not None:
        rows.append(("ECA PSV", _value(s.eca_psv_cm_s, "cm/s")))
    if s.vertebral_flow is not None:
        rows.append(("Vertebral flow", s.vertebral_flow.value))
    flags = tuple(f"Flag: {flag.value.replace('_', ' ')}" for flag in graded.flags)
    return (
        f"<section><h3>{_e(s.side.value.capitalize())} side</h3>"
        f'<p class="grade">ICA: {_e(graded.grade_label)} (SRU consensus)</p>'
        f"{_list(flags, 'flag')}<table>{_rows(rows)}</table>{_list(graded.notes)}</section>"
    )


def _carotid(findings: CarotidFindings, result: CarotidResult) -> str:
    parts = ["<h2>Findings</h2>", *(_side(g) for g in result.sides)]
    if findings.comment:
        parts.append(f'<p class="text">{_e(findings.comment)}</p>')
    parts.append("<h2>Impression</h2>")
    parts.append(_list([f"{g.side.value.capitalize()} ICA: {g.grade_label}" for g in result.sides]))
    return "".join(parts)


def _free_text(report: FreeText) -> str:
    return (
        f'<h2>Findings</h2><p class="text">{_e(report.findings)}</p>'
        f'<h2>Impression</h2><p class="text">{_e(report.impression)}</p>'
    )


def render_html(
    study: StudyHeader,
    version: ReportVersion,
    content: ReportContent,
    result: ThyroidResult | CarotidResult | None = None,
) -> str:
    """The printable page of one report version; `result` defaults to the rules evaluated with their defaults."""
    if isinstance(content, ThyroidFindings):
        title = "Thyroid ultrasound report"
        thyroid = result if isinstance(result, ThyroidResult) else tirads.score_exam(content)
        body = _thyroid(content, thyroid)
    elif isinstance(content, CarotidFindings):
        title = "Carotid duplex ultrasound report"
        graded = result if isinstance(result, CarotidResult) else carotid.grade_exam(content)
        body = _carotid(content, graded)
    else:
        title = f"{content.modality} report".strip() if content.modality else "Imaging report"
        body = _free_text(content)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}: {_e(_name(study.patient_name))}</title><style>{CSS}</style></head>"
        f"<body><header><h1>{_e(title)}</h1>{_header(study, version)}</header><main>{body}</main>"
        f"<footer>teleus · report version {_e(version.version)} · study {_e(study.study_instance_uid)}</footer>"
        "</body></html>\n"
    )
