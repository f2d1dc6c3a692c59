"""The printable page: every value escaped, the status, version and addendum line shown, the rules' notes visible."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser

from signaling_server.reports.carotid import CarotidFindings
from signaling_server.reports.printable import render_html
from signaling_server.reports.sr import FreeText, Predecessor, ReportStatus, ReportVersion, StudyHeader
from signaling_server.reports.tirads import ThyroidFindings

STUDY = StudyHeader(
    "张^三<b>", "P<1>", "19700101", "M", "1.2.826.0.1.3680043.8.498.42", "A&1", "Wang^Wu", "20240501", "101500"
)
SIGNED = datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
PRELIMINARY = ReportVersion("李^明", 1, ReportStatus.PRELIMINARY, SIGNED)
FINAL = ReportVersion("李^明", 2, ReportStatus.FINAL, SIGNED, approver="Zhao^Senior", approved_at=SIGNED)
ALLOWED_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "header",
    "h1",
    "h2",
    "h3",
    "p",
    "table",
    "tr",
    "th",
    "td",
    "ul",
    "li",
    "main",
    "section",
    "footer",
}


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.add(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    return tags


def test_free_text_is_escaped() -> None:
    report = FreeText('<script>alert("x")</script> 右肺结节 & more', "<img src=x onerror=alert(1)>", "CT")
    page = render_html(STUDY, PRELIMINARY, report)
    tags = parsed(page)
    assert tags.seen <= ALLOWED_TAGS
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; 右肺结节 &amp; more" in page
    assert '<script>alert("x")</script> 右肺结节 & more' in "".join(tags.text)
    assert "P&lt;1&gt;" in page and "A&amp;1" in page
    assert "PRELIMINARY: not yet approved" in page
    assert page.startswith("<!DOCTYPE html>") and "@page" in page


def test_carotid_shows_grade_notes_and_the_angle_flag() -> None:
    findings = CarotidFindings.from_json(
        {
            "right": {
                "plaque": "visible",
                "flow": "present",
                "ica_psv_cm_s": 180,
                "ica_edv_cm_s": 30,
                "doppler_angle_deg": 58,
                "imt_mm": 1.6,
            },
            "left": {"plaque": "visible", "flow": "present", "ica_psv_cm_s": 150, "doppler_angle_deg": 70},
        }
    )
    page = render_html(STUDY, FINAL, findings)
    assert parsed(page).seen <= ALLOWED_TAGS
    assert "ICA: 50–69 % stenosis (SRU consensus)" in page
    assert "ICA: Not graded (SRU consensus)" in page
    assert '<li class="flag">Flag: Doppler angle &gt; 60°: not graded</li>' in page
    assert "Doppler angle 70° &gt; 60°" in page
    assert "Discordant: ICA EDV 30 cm/s" in page
    assert "IMT 1.6 mm: plaque" in page
    assert "FINAL: approved by Zhao Senior" in page
    assert "<title>Carotid duplex ultrasound report: 张三&lt;b&gt;</title>" in page  # a Chinese name has no space


def test_thyroid_shows_levels_and_the_one_point_note() -> None:
    nodule = {
        "composition": "mixed_cystic_solid",
        "echogenicity": "anechoic",
        "shape": "wider_than_tall",
        "margin": "smooth",
        "echogenic_foci": ["none_or_comet_tail"],
        "max_axial_mm": 12,
        "perpendicular_axial_mm": 9,
        "craniocaudal_mm": 10,
        "location": "left <lower> pole",
    }
    page = render_html(STUDY, PRELIMINARY, ThyroidFindings.from_json({"nodules": [nodule]}))
    assert "Total of 1 point is not in the ACR chart; reported as TR2 (configurable rule)" in page
    assert "1 point: TR2 not suspicious" in page
    assert "left &lt;lower&gt; pole" in page
    assert "Findings (ACR TI-RADS)" in page


def test_an_addendum_says_which_version_it_amends() -> None:
    addendum = replace(FINAL, predecessor=Predecessor("1.2.840.10008.5.1.4.1.1.88.11", "1.2.3", "1.2.4", 1))
    page = render_html(STUDY, addendum, FreeText("Unchanged.", "Corrected impression.", "DX"))
    assert '<p class="addendum">Addendum: amends version 1</p>' in page
    assert "<th>Version</th><td>2</td>" in page
    assert "Addendum" not in render_html(STUDY, FINAL, FreeText("a", "b"))


def test_the_page_is_in_the_language_of_its_version() -> None:
    chinese = replace(FINAL, language="zh-CN")
    nodule = {
        "composition": "solid",
        "echogenicity": "very_hypoechoic",
        "shape": "taller_than_wide",
        "margin": "smooth",
        "echogenic_foci": ["comet_tail"],
        "max_axial_mm": 12,
        "perpendicular_axial_mm": 9,
        "craniocaudal_mm": 10,
        "location": "左叶下极",
    }
    page = render_html(STUDY, chinese, ThyroidFindings.from_json({"system": "c_tirads", "nodules": [nodule]}))
    assert '<html lang="zh-CN">' in page and "<h1>甲状腺超声检查报告</h1>" in page
    assert "已审核：审核医师Zhao Senior" in page and "<th>姓名</th><td>张三&lt;b&gt;</td>" in page
    assert "分类系统：C-TIRADS分类" in page and "<th>方位</th>" in page  # C-TIRADS's word for shape
    assert "2分：C-TIRADS 4B类（中度可疑，恶性风险10%~50%）" in page  # +1 +1 +1 -1 (comet-tail)
    assert "建议细针穿刺活检（FNA）" in page  # 1.2 cm > 1 cm
    carotid = CarotidFindings.from_json(
        {"right": {"plaque": "none", "flow": "present", "ica_psv_cm_s": 90, "imt_mm": 1.6}}
    )
    page = render_html(STUDY, chinese, carotid)
    assert "<h1>颈动脉彩色多普勒超声检查报告</h1>" in page
    assert '<li class="flag">提示：IMT达斑块范围而斑块为“无”：矛盾</li>' in page
    assert "右侧颈内动脉：狭窄&lt;50%（SRU）" in page and "正常（无狭窄）" not in page
