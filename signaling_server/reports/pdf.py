"""The printed report as a PDF (docs/RESULTS.md): an HTML page in the reader's language, made into A4 by WeasyPrint.

Layout after the district's reports that every member hospital recognises (报告互认): the site's header (logo,
name, address, phone) and the report's title; one block of patient and exam facts (name as people write it, sex,
age, IDs, exam, date); the chosen images; findings and conclusion; the reporting and approving physicians with
their times; the recognition line and page numbers at the foot of every page. Every word comes from the `results`
catalog (`Catalogs.translate`); every value is HTML-escaped; dates are YYYY-MM-DD HH:MM in the report time zone.
The page needs nothing from the network (images and logo are inline), so WeasyPrint fetches nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import date, datetime
from html import escape
from zoneinfo import ZoneInfo

from signaling_server.localization.catalogs import Catalogs
from signaling_server.reports import printable
from signaling_server.reports.document import PrintedReport
from signaling_server.reports.sr import ReportStatus
from signaling_server.reports.state import ReportKind

Translate = Callable[..., str]

CSS = """
@page { size: A4; margin: 14mm 14mm 18mm;
        @bottom-left { content: var(--recognition); font: 7.5pt "Noto Sans CJK SC", sans-serif; color: #333; }
        @bottom-right { content: counter(page) " / " counter(pages); font: 8pt "Noto Sans CJK SC", sans-serif; } }
body { font: 10.5pt/1.35 "Noto Sans CJK SC", "Noto Sans SC", "Microsoft YaHei", "PingFang SC", sans-serif;
       color: #000; margin: 0; }
header.site { display: flex; align-items: center; gap: 6mm; border-bottom: 2px solid #000; padding-bottom: 3mm; }
header.site img { max-height: 18mm; max-width: 40mm; }
header.site .who { flex: 1; text-align: center; }
header.site .name { font-size: 17pt; font-weight: bold; letter-spacing: 1pt; }
header.site .contact { font-size: 8.5pt; }
h1 { font-size: 15pt; text-align: center; margin: 3mm 0; letter-spacing: 2pt; }
.status { text-align: right; font-size: 9pt; margin: 0; }
.status.preliminary { font-weight: bold; border: 2px solid #000; padding: 1pt 4pt; display: inline-block; }
table.facts { width: 100%; border-collapse: collapse; border-top: 1px solid #000; border-bottom: 1px solid #000;
              margin-bottom: 3mm; }
table.facts th { font-weight: normal; text-align: left; white-space: nowrap; padding: 1pt 2pt; width: 10%; }
table.facts td { padding: 1pt 6pt 1pt 2pt; font-weight: bold; }
table.facts td { white-space: nowrap; }
table.facts td:last-child { white-space: normal; }
h2 { font-size: 12pt; margin: 3mm 0 1mm; border-left: 3pt solid #000; padding-left: 2mm; }
h3 { font-size: 10.5pt; margin: 2mm 0 1mm; }
table.rows { width: 100%; border-collapse: collapse; margin: 1mm 0; }
table.rows th, table.rows td { border: 1px solid #888; padding: 0.5pt 4pt; text-align: left; vertical-align: top; }
table.rows th { width: 32%; font-weight: normal; }
.images { display: flex; flex-wrap: wrap; gap: 4mm; justify-content: center; }
figure { margin: 0; width: 72mm; break-inside: avoid; }
figure img { width: 72mm; }
figcaption { font-size: 8pt; text-align: center; }
.text { white-space: pre-wrap; }
ul { margin: 1mm 0; padding-left: 6mm; }
.flag { font-weight: bold; }
.signatures { display: flex; justify-content: space-between; margin-top: 4mm; border-top: 1px solid #000;
              padding-top: 2mm; break-inside: avoid; }
.signatures div { width: 48%; }
.note { font-size: 8.5pt; color: #222; margin-top: 3mm; }
section, tr, li { break-inside: avoid; }
@media screen { body { padding: 8mm 10mm; } }
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def person(value: str, language: str) -> str:
    """A DICOM PN (or a plain name) as people write it: 张^三 → 张三; Wang^Fang=王^芳 → 王芳 in Chinese."""
    if "^" not in value and "=" not in value:
        return value.strip()
    alphabetic, _, ideographic = value.partition("=")
    ideographic = ideographic.split("=")[0]
    chosen = ideographic if language == "zh-CN" and ideographic.replace("^", "").strip() else alphabetic or ideographic
    parts = [p.strip() for p in chosen.split("^")] + [""] * 5
    family, given, middle, prefix, suffix = parts[:5]
    if any(0x3400 <= ord(c) <= 0x9FFF or 0xF900 <= ord(c) <= 0xFAFF for c in family + given):
        return f"{prefix}{family}{given}{middle}{suffix}"
    ordered = (
        [prefix, family, given, middle, suffix] if language == "zh-CN" else [prefix, given, middle, family, suffix]
    )
    return " ".join(p for p in ordered if p)


def _day(value: str) -> date | None:
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8])) if len(value) == 8 else None
    except ValueError:
        return None


def age(birth: str, on: str, t: Translate) -> str:
    """Age at the exam as the district writes it: 45岁; under a year 7月; under a month 12天."""
    born, seen = _day(birth), _day(on)
    if born is None or seen is None or seen < born:
        return ""
    months = (seen.year - born.year) * 12 + seen.month - born.month - (seen.day < born.day)
    if months >= 12:
        return t("results.report.age.years", count=months // 12)
    if months >= 1:
        return t("results.report.age.months", count=months)
    return t("results.report.age.days", count=(seen - born).days)


def _study_date(value: str, time: str) -> str:
    if len(value) != 8:
        return ""
    day = f"{value[:4]}-{value[4:6]}-{value[6:8]}"
    return f"{day}\u00a0{time[:2]}:{time[2:4]}" if len(time) >= 4 and time[:4].isdigit() else day


def moment(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value is not None else ""


def _rows(pairs: list[tuple[str, str]]) -> str:
    return '<table class="rows">' + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs) + "</table>"


def _list(items: list[str], css: str = "") -> str:
    klass = f' class="{css}"' if css else ""
    return "<ul>" + "".join(f"<li{klass}>{_e(i)}</li>" for i in items) + "</ul>" if items else ""


def _data_uri(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


# --- findings by kind ---------------------------------------------------------------------------------------------


def _findings(doc: PrintedReport, language: str) -> tuple[str, str]:
    """The findings and the impression as the reader's printable page words them (printable.py): one wording for
    screen and paper, C-TIRADS or ACR TI-RADS as the report recorded."""
    return printable.findings_body(doc.content, language)


# --- the page -----------------------------------------------------------------------------------------------------


def _title(doc: PrintedReport, t: Translate) -> str:
    if doc.kind in (ReportKind.THYROID, ReportKind.CAROTID):
        return t(f"results.report.title.{doc.kind.value}")
    if doc.modality in ("CT", "CR", "DX"):
        return t(f"results.report.title.{doc.modality}")
    return t("results.report.title")


def _site(doc: PrintedReport, t: Translate) -> str:
    site = doc.site
    logo = ""
    if site.logo is not None and site.logo_type is not None:
        logo = f'<img src="{_data_uri(site.logo_type, site.logo)}" alt="">'
    contact = [t("results.report.address", address=site.address)] if site.address else []
    if site.phone:
        contact.append(t("results.report.phone", phone=site.phone))
    return (
        f'<header class="site">{logo}<div class="who"><div class="name">{_e(site.name)}</div>'
        f'<div class="contact">{_e("　".join(contact))}</div></div></header>'
    )


def _facts(doc: PrintedReport, t: Translate, language: str) -> str:
    s = doc.study
    sex = t(f"results.report.sex.{s.patient_sex}") if s.patient_sex else ""
    exam = doc.description or doc.modality
    cells = [
        (t("results.report.patient"), person(s.patient_name, language)),
        (t("results.report.sex"), sex),
        (t("results.report.age"), age(s.patient_birth_date, s.study_date, t)),
        (t("results.report.patient_id"), s.patient_id),
        (t("results.report.accession"), s.accession_number),
        (t("results.report.exam"), exam),
        (t("results.report.exam_date"), _study_date(s.study_date, s.study_time)),
        (t("results.report.site"), doc.site.name),
    ]
    rows = ["".join(f"<th>{_e(k)}</th><td>{_e(v)}</td>" for k, v in cells[i : i + 4]) for i in (0, 4)]
    return '<table class="facts">' + "".join(f"<tr>{r}</tr>" for r in rows) + "</table>"


def _images(doc: PrintedReport, t: Translate) -> str:
    if not doc.images:
        return ""
    figures = "".join(
        f'<figure><img src="{_data_uri("image/jpeg", jpeg)}" alt="">'
        f"<figcaption>{_e(t('results.report.image_caption', number=n))}</figcaption></figure>"
        for n, jpeg in enumerate(doc.images, start=1)
    )
    return f'<h2>{_e(t("results.report.images"))}</h2><div class="images">{figures}</div>'


def _signatures(doc: PrintedReport, t: Translate, zone: ZoneInfo, language: str) -> str:
    v = doc.version
    colon = _e(t("results.report.colon"))

    def person_and_time(who: str, name: str, when_key: str, when: datetime | None) -> str:
        return (
            f"<div>{_e(t(who))}{colon}<b>{_e(person(name, language))}</b><br>"
            f"{_e(t(when_key))}{colon}{_e(moment(when, zone))}</div>"
        )

    reader = person_and_time("results.report.reader", v.author, "results.report.signed_at", v.signed_at)
    approver = "<div></div>"
    if v.status is ReportStatus.FINAL:
        approver = person_and_time("results.report.approver", v.approver, "results.report.approved_at", v.approved_at)
    return f'<div class="signatures">{reader}{approver}</div>'


def render_html(doc: PrintedReport, catalogs: Catalogs, language: str, zone: ZoneInfo, printed_at: datetime) -> str:
    """The report's page in `language` (zh-CN or en)."""

    def t(key: str, /, count: int | None = None, **params: object) -> str:
        return catalogs.translate(language, key, count, **params)

    v = doc.version
    if v.status is ReportStatus.FINAL:
        said = f"{t('results.report.final')} · {t('results.report.version', version=v.version)}"
        status = f'<p class="status">{_e(said)}</p>'
    else:
        status = f'<p class="status preliminary">{_e(t("results.report.preliminary"))}</p>'
    if v.predecessor is not None:
        status += f'<p class="status">{_e(t("results.report.addendum", version=v.predecessor.version))}</p>'
    findings, conclusion = _findings(doc, language)
    recognition = t("results.report.recognition")
    footer = t(
        "results.report.footer",
        study=doc.study.accession_number or doc.study.study_instance_uid,
        at=moment(printed_at, zone),
    )
    page_css = CSS.replace("var(--recognition)", '"' + recognition.replace('"', "'") + '"')
    lang = "zh-CN" if language == "zh-CN" else "en"
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{_e(_title(doc, t))}</title><style>{page_css}</style></head><body>"
        f"{_site(doc, t)}<h1>{_e(_title(doc, t))}</h1>{status}{_facts(doc, t, language)}{_images(doc, t)}"
        f"<h2>{_e(t('results.report.findings'))}</h2>{findings}"
        f"<h2>{_e(t('results.report.impression'))}</h2>{conclusion}"
        f"{_signatures(doc, t, zone, language)}"
        f'<p class="note">{_e(t("results.report.disclaimer"))}<br>{_e(footer)}</p>'
        "</body></html>\n"
    )


def render_pdf(page: str) -> bytes:
    """The page as a PDF (CPU-bound: call it in a thread). Only inline `data:` resources load: nothing is fetched."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    pdf: bytes = HTML(string=page, url_fetcher=URLFetcher(allowed_protocols={"data"})).write_pdf()
    return pdf
