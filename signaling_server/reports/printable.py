"""A report as one standalone, printable HTML page: study header, status, version, author, and the report itself.

Every value from a report or a study is HTML-escaped (`_e`); the page needs no script, no network and no other file.
Every word comes from the catalogs in the report version's language (`ReportVersion.language`: the reader's
language when printed, see routes.py): headings and field names from `report.json`, the rules' words and notes from
`clinical.json`. A thyroid report names the scoring system it used (ACR TI-RADS or C-TIRADS).
Notes the rules produce (the TI-RADS 1-point rule, a carotid angle over 60°, discordant criteria) are printed, and
flags are set in bold with a bar so they survive black-and-white printing.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from signaling_server.reports import carotid, tirads
from signaling_server.reports.carotid import CarotidFindings, CarotidResult, SideGrade
from signaling_server.reports.numbers import shown
from signaling_server.reports.sr import (
    FreeText,
    ReportContent,
    ReportStatus,
    ReportVersion,
    StudyHeader,
    catalog_language,
    impression,
    points_text,
    recommendation,
    side_impression,
)
from signaling_server.reports.tirads import NoduleScore, ThyroidFindings, ThyroidResult, ThyroidSystem
from signaling_server.reports.wording import label, note, say

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
    """A DICOM name as people write it: 张^三 → 张三 (no space in a Chinese name), Zhao^Senior → Zhao Senior."""
    parts = person.replace("^", " ").split()
    if any("\u3400" <= c <= "\u9fff" for c in "".join(parts)):
        return "".join(parts)
    return " ".join(parts)


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


def _header(study: StudyHeader, version: ReportVersion, lang: str) -> str:
    def w(key: str, **params: object) -> str:
        return label(lang, key, **params)

    sex = w(f"sex.{study.patient_sex}") if study.patient_sex else ""
    study_rows = _rows(
        [
            (w("patient"), _name(study.patient_name)),
            (w("patient_id"), study.patient_id),
            (w("birth_date"), _date(study.patient_birth_date)),
            (w("sex"), sex),
            (w("accession"), study.accession_number),
            (w("study_date"), f"{_date(study.study_date)} {_time(study.study_time)}".strip()),
            (w("referring"), _name(study.referring_physician)),
            (w("study_uid"), study.study_instance_uid),
        ]
    )
    if version.status is ReportStatus.FINAL and version.approved_at is not None:
        status = w("final", approver=_name(version.approver), at=_moment(version.approved_at))
    else:
        status = w("preliminary")
    signed = [
        (w("version"), str(version.version)),
        (w("author"), w("signed", author=_name(version.author), at=_moment(version.signed_at))),
        (w("completion"), w("complete") if version.complete else w("partial")),
    ]
    addendum = ""
    if version.predecessor is not None:
        addendum = f'<p class="addendum">{_e(w("addendum", version=version.predecessor.version))}</p>'
    return f'<p class="status">{_e(status)}</p>{addendum}<table>{study_rows}</table><table>{_rows(signed)}</table>'


def _choice(lang: str, category: str, choice: tirads.Choice, system: ThyroidSystem) -> str:
    key = f"choice.{category}.{choice.value}"
    if system is ThyroidSystem.C_TIRADS and choice is tirads.EchogenicFocus.NONE_OR_COMET_TAIL:
        key += ".c_tirads"
    return say(lang, note(key))


def _nodule(score: NoduleScore, lang: str) -> str:
    def w(key: str, **params: object) -> str:
        return label(lang, key, **params)

    n, p, system = score.nodule, score.points, score.system
    foci = w("list_separator").join(
        _choice(lang, "echogenic_foci", f, system) for f in tirads.EchogenicFocus if f in n.echogenic_foci
    )
    shape = "category.shape.c_tirads" if system is ThyroidSystem.C_TIRADS else "category.shape"
    rows = [
        (w("location"), n.location or w("not_given")),
        (w("size"), f"{n.max_axial_mm:g} × {n.perpendicular_axial_mm:g} × {n.craniocaudal_mm:g} mm"),
        (
            say(lang, note("category.composition")),
            w("choice_points", choice=_choice(lang, "composition", n.composition, system), points=p.composition),
        ),
        (
            say(lang, note("category.echogenicity")),
            w("choice_points", choice=_choice(lang, "echogenicity", n.echogenicity, system), points=p.echogenicity),
        ),
        (say(lang, note(shape)), w("choice_points", choice=_choice(lang, "shape", n.shape, system), points=p.shape)),
        (
            say(lang, note("category.margin")),
            w("choice_points", choice=_choice(lang, "margin", n.margin, system), points=p.margin),
        ),
        (say(lang, note("category.echogenic_foci")), w("choice_points", choice=foci, points=p.echogenic_foci)),
        (
            w("total"),
            w("total_value", points=points_text(score.total, lang), level=say(lang, note(f"level.{score.level}"))),
        ),
        (w("recommendation"), recommendation(score, lang)),
    ]
    flags = tuple(say(lang, note(f"flag.{flag}")) for flag in score.flags)
    notes = [say(lang, said) for said in score.notes]
    return (
        f"<section><h3>{_e(w('nodule', number=score.number))}</h3>{_list(flags, 'flag')}"
        f"<table>{_rows(rows)}</table>{_list(notes)}</section>"
    )


def _thyroid(findings: ThyroidFindings, result: ThyroidResult, lang: str) -> tuple[str, str]:
    """The findings (the system used, each reported nodule, the comment) and the impression (each nodule's
    category and what to do, then the exam's notes)."""
    system = say(lang, note(f"system.{result.system.value}"))
    parts = [f'<p class="system">{_e(label(lang, "system_used", system=system))}</p>']
    parts += [_nodule(score, lang) for score in result.nodules]
    if findings.comment:
        parts.append(f'<p class="text">{_e(findings.comment)}</p>')
    said = _list([impression(score, lang) for score in result.nodules]) + _list([say(lang, n) for n in result.notes])
    return "".join(parts), said


def _value(value: float | None, unit: str, lang: str) -> str:
    return label(lang, "not_measured") if value is None else f"{value:g} {unit}".strip()


def _side(graded: SideGrade, lang: str) -> str:
    def w(key: str, **params: object) -> str:
        return label(lang, key, **params)

    s = graded.findings
    ratio = s.ratio
    imt = _value(s.imt_mm, "mm", lang)
    if graded.imt_class is not None:
        imt += f" ({say(lang, note(f'imt_class.{graded.imt_class.value}'))})"
    rows = [
        (w("ica_psv"), _value(s.ica_psv_cm_s, "cm/s", lang)),
        (w("ica_edv"), _value(s.ica_edv_cm_s, "cm/s", lang)),
        (w("cca_psv"), _value(s.cca_psv_cm_s, "cm/s", lang)),
        (w("ratio"), w("not_available") if ratio is None else shown(ratio, carotid.RATIO_LIMITS)),
        (w("angle"), _value(s.doppler_angle_deg, "°", lang)),
        (w("plaque"), say(lang, note(f"plaque.{s.plaque.value}"))),
        (w("ica_flow"), say(lang, note(f"flow.{s.flow.value}"))),
        (w("imt"), imt),
    ]
    if s.eca_psv_cm_s is not None:
        rows.append((w("eca_psv"), _value(s.eca_psv_cm_s, "cm/s", lang)))
    if s.vertebral_flow is not None:
        rows.append((w("vertebral"), say(lang, note(f"vertebral.{s.vertebral_flow.value}"))))
    flags = tuple(w("flag", flag=say(lang, note(f"flag.{flag.value}"))) for flag in graded.flags)
    side = say(lang, note(f"side.{s.side.value}"))
    grade = say(lang, note(f"grade.{graded.grade.value}"))
    return (
        f"<section><h3>{_e(w('side', side=side))}</h3>"
        f'<p class="grade">{_e(w("ica_grade", grade=grade))}</p>'
        f"{_list(flags, 'flag')}<table>{_rows(rows)}</table>{_list([say(lang, n) for n in graded.notes])}</section>"
    )


def _carotid(findings: CarotidFindings, result: CarotidResult, lang: str) -> tuple[str, str]:
    parts = [_side(g, lang) for g in result.sides]
    if findings.comment:
        parts.append(f'<p class="text">{_e(findings.comment)}</p>')
    return "".join(parts), _list([side_impression(g, lang) for g in result.sides])


def _free_text(report: FreeText) -> tuple[str, str]:
    return f'<p class="text">{_e(report.findings)}</p>', f'<p class="text">{_e(report.impression)}</p>'


def findings_body(content: ReportContent, lang: str) -> tuple[str, str]:
    """A report's findings and its impression in `lang`, as every printed form words them: this page and the
    formal printed report (pdf.py). The thyroid findings begin with the scoring system the report used."""
    if isinstance(content, ThyroidFindings):
        return _thyroid(content, tirads.score_exam(content), lang)
    if isinstance(content, CarotidFindings):
        return _carotid(content, carotid.grade_exam(content), lang)
    return _free_text(content)


def render_html(
    study: StudyHeader,
    version: ReportVersion,
    content: ReportContent,
    result: ThyroidResult | CarotidResult | None = None,
) -> str:
    """The printable page of one report version in its language (`version.language`); `result` defaults to the
    rules evaluated with their defaults (and, for thyroid, the system the findings name)."""
    lang = catalog_language(version)
    heading = label(lang, "findings")
    if isinstance(content, ThyroidFindings):
        title = label(lang, "title.thyroid")
        thyroid = result if isinstance(result, ThyroidResult) else tirads.score_exam(content)
        found, said = _thyroid(content, thyroid, lang)
        heading = label(lang, "findings_system", system=say(lang, note(f"system.{thyroid.system.value}")))
    elif isinstance(content, CarotidFindings):
        title = label(lang, "title.carotid")
        graded = result if isinstance(result, CarotidResult) else carotid.grade_exam(content)
        found, said = _carotid(content, graded, lang)
    else:
        title = (
            label(lang, "title.modality", modality=content.modality)
            if content.modality
            else label(lang, "title.imaging")
        )
        found, said = _free_text(content)
    body = f"<h2>{_e(heading)}</h2>{found}<h2>{_e(label(lang, 'impression'))}</h2>{said}"
    footer = label(lang, "footer", version=version.version, study=study.study_instance_uid)
    return (
        f'<!DOCTYPE html>\n<html lang="{_e(lang)}"><head><meta charset="utf-8">'
        f"<title>{_e(title)}: {_e(_name(study.patient_name))}</title><style>{CSS}</style></head>"
        f"<body><header><h1>{_e(title)}</h1>{_header(study, version, lang)}</header><main>{body}</main>"
        f"<footer>{_e(footer)}</footer>"
        "</body></html>\n"
    )
