"""SRU carotid grading against CLINICAL.md §2: every grade, every boundary, the angle rule, discordance, IMT."""

from __future__ import annotations

import math
from typing import Any

import pytest

from signaling_server.errors import InvalidRequest
from signaling_server.reports.carotid import (
    CarotidFindings,
    CarotidSide,
    Flag,
    Grade,
    ImtClass,
    ImtThresholds,
    edv_band,
    grade_exam,
    grade_side,
    psv_band,
    ratio_band,
)
from signaling_server.reports.wording import english

MEASURED: dict[str, Any] = {"plaque": "visible", "flow": "present", "doppler_angle_deg": 45}
BASE: dict[str, Any] = {"side": "right", **MEASURED}


def side(**changes: Any) -> CarotidSide:
    return CarotidSide.from_json({**BASE, **changes})


@pytest.mark.parametrize(
    ("changes", "grade"),
    [
        ({"plaque": "none", "ica_psv_cm_s": 90}, Grade.NORMAL),
        ({"ica_psv_cm_s": 90}, Grade.LESS_THAN_50),
        ({"ica_psv_cm_s": 180}, Grade.FROM_50_TO_69),
        ({"ica_psv_cm_s": 320, "plaque": "lumen_narrowed"}, Grade.AT_LEAST_70),
        ({"plaque": "markedly_narrowed", "ica_psv_cm_s": 40}, Grade.NEAR_OCCLUSION),
        ({"plaque": "markedly_narrowed"}, Grade.NEAR_OCCLUSION),
        ({"flow": "absent"}, Grade.TOTAL_OCCLUSION),
        ({"ica_psv_cm_s": 180, "doppler_angle_deg": 70}, Grade.NOT_GRADED),
        ({}, Grade.NOT_GRADED),  # no PSV
    ],
)
def test_every_grade(changes: dict[str, Any], grade: Grade) -> None:
    assert grade_side(side(**changes)).grade is grade


@pytest.mark.parametrize(
    ("psv", "grade"),
    [(124.9, Grade.LESS_THAN_50), (125, Grade.FROM_50_TO_69), (230, Grade.FROM_50_TO_69), (230.1, Grade.AT_LEAST_70)],
)
def test_psv_boundaries(psv: float, grade: Grade) -> None:
    assert grade_side(side(ica_psv_cm_s=psv)).grade is grade


def test_band_boundaries_are_inclusive_in_the_middle() -> None:
    assert [ratio_band(r) for r in (1.99, 2.0, 4.0, 4.01)] == ["< 50 %", "50–69 %", "50–69 %", "≥ 70 %"]
    assert [edv_band(v) for v in (39.9, 40, 100, 100.1)] == ["< 50 %", "50–69 %", "50–69 %", "≥ 70 %"]
    assert [psv_band(v) for v in (124.9, 125, 230, 230.1)] == ["< 50 %", "50–69 %", "50–69 %", "≥ 70 %"]


@pytest.mark.parametrize(("ratio", "discordant"), [(1.99, True), (2.0, False), (4.0, False), (4.01, True)])
def test_ratio_boundaries_against_a_50_to_69_psv(ratio: float, discordant: bool) -> None:
    graded = grade_side(side(ica_psv_cm_s=180, ica_cca_ratio=ratio))
    assert graded.grade is Grade.FROM_50_TO_69  # PSV is primary: never moved by the ratio
    assert (Flag.DISCORDANT_RATIO in graded.flags) is discordant
    assert any(n.startswith("Discordant: ICA/CCA ratio") for n in english(graded.notes)) is discordant


@pytest.mark.parametrize(("edv", "discordant"), [(39.9, True), (40, False), (100, False), (100.1, True)])
def test_edv_boundaries_against_a_50_to_69_psv(edv: float, discordant: bool) -> None:
    graded = grade_side(side(ica_psv_cm_s=180, ica_edv_cm_s=edv))
    assert graded.grade is Grade.FROM_50_TO_69
    assert (Flag.DISCORDANT_EDV in graded.flags) is discordant
    assert any("Discordant: ICA EDV" in n and "graded on PSV" in n for n in english(graded.notes)) is discordant


def test_ratio_is_computed_from_the_cca_psv_when_not_entered() -> None:
    graded = grade_side(side(ica_psv_cm_s=250, cca_psv_cm_s=125))
    assert graded.findings.ratio == 2.0
    assert graded.grade is Grade.AT_LEAST_70 and Flag.DISCORDANT_RATIO in graded.flags
    assert any("computed from ICA PSV / CCA PSV" in n for n in english(graded.notes))
    entered = grade_side(side(ica_psv_cm_s=250, cca_psv_cm_s=125, ica_cca_ratio=4.5))
    assert entered.findings.ratio == 4.5 and Flag.DISCORDANT_RATIO not in entered.flags


def test_angle_60_is_graded_and_above_is_flagged_not_graded() -> None:
    at_60 = grade_side(side(ica_psv_cm_s=180, doppler_angle_deg=60))
    assert at_60.grade is Grade.FROM_50_TO_69 and Flag.ANGLE_OVER_60 not in at_60.flags
    over = grade_side(side(ica_psv_cm_s=180, doppler_angle_deg=60.1))
    assert over.grade is Grade.NOT_GRADED
    assert Flag.ANGLE_OVER_60 in over.flags
    first = english(over.notes)[0]
    assert "60.1°" in first and "not graded" in first and "unreliable" in first
    # the flag wins even over an absent-flow finding, which a steep angle can fake
    assert grade_side(side(flow="absent", doppler_angle_deg=75)).grade is Grade.NOT_GRADED


def test_missing_angle_is_graded_but_flagged() -> None:
    graded = grade_side(side(ica_psv_cm_s=180, doppler_angle_deg=None))
    assert graded.grade is Grade.FROM_50_TO_69 and Flag.ANGLE_NOT_RECORDED in graded.flags


@pytest.mark.parametrize(
    ("plaque", "psv", "discordant"),
    [
        ("lumen_narrowed", 100, True),
        ("none", 180, True),
        ("lumen_narrowed", 180, False),  # ≥ 50 % diameter reduction fits 50–69 % as well as ≥ 70 %
        ("none", 300, True),
        ("visible", 300, False),
        ("visible", 100, False),
        ("none", 100, False),
        ("lumen_narrowed", 300, False),
    ],
)
def test_plaque_that_does_not_fit_the_psv_is_discordant(plaque: str, psv: float, discordant: bool) -> None:
    graded = grade_side(side(plaque=plaque, ica_psv_cm_s=psv))
    assert (Flag.DISCORDANT_PLAQUE in graded.flags) is discordant


@pytest.mark.parametrize(
    ("imt", "expected"),
    [(0.99, ImtClass.NORMAL), (1.0, ImtClass.THICKENED), (1.49, ImtClass.THICKENED), (1.5, ImtClass.PLAQUE)],
)
def test_imt_default_thresholds(imt: float, expected: ImtClass) -> None:
    graded = grade_side(side(imt_mm=imt))
    assert graded.imt_class is expected
    assert any(n.startswith(f"IMT {imt}") for n in english(graded.notes))


def test_imt_thresholds_are_configurable() -> None:
    thresholds = ImtThresholds(thickening_mm=0.9, plaque_mm=1.2)
    assert grade_side(side(imt_mm=0.9), thresholds).imt_class is ImtClass.THICKENED
    assert grade_side(side(imt_mm=1.2), thresholds).imt_class is ImtClass.PLAQUE
    with pytest.raises(ValueError):
        ImtThresholds(thickening_mm=1.5, plaque_mm=1.0)


def test_exam_grades_right_then_left_and_round_trips() -> None:
    findings = CarotidFindings.from_json(
        {
            "left": {**MEASURED, "ica_psv_cm_s": 300, "ica_edv_cm_s": 120, "cca_psv_cm_s": 60},
            "right": {**MEASURED, "side": "right", "plaque": "none", "ica_psv_cm_s": 80},
            "comment": "对侧正常",
        }
    )
    result = grade_exam(findings)
    assert [(g.side.value, g.grade) for g in result.sides] == [("right", Grade.NORMAL), ("left", Grade.AT_LEAST_70)]
    assert CarotidFindings.from_json(findings.to_json()) == findings
    assert result.to_json()["sides"][1]["ratio"] == 5.0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"plaque": "big"}, "plaque"),
        ({"flow": None}, "flow"),
        ({"side": "middle"}, "side"),
        ({"ica_psv_cm_s": -5}, "ica_psv_cm_s"),
        ({"ica_psv_cm_s": 5000}, "ica_psv_cm_s"),
        ({"ica_psv_cm_s": "fast"}, "ica_psv_cm_s"),
        ({"ica_psv_cm_s": math.nan}, "ica_psv_cm_s"),
        ({"ica_psv_cm_s": math.inf}, "ica_psv_cm_s"),
        ({"ica_edv_cm_s": True}, "ica_edv_cm_s"),
        ({"ica_psv_cm_s": 100, "ica_edv_cm_s": 120}, "ica_edv_cm_s"),
        ({"cca_psv_cm_s": -1}, "cca_psv_cm_s"),
        ({"ica_cca_ratio": 0}, "ica_cca_ratio"),
        ({"doppler_angle_deg": 95}, "doppler_angle_deg"),
        ({"doppler_angle_deg": -1}, "doppler_angle_deg"),
        ({"imt_mm": 0}, "imt_mm"),
        ({"imt_mm": 25}, "imt_mm"),
        ({"flow": "absent", "ica_psv_cm_s": 50}, "ica_psv_cm_s"),
        ({"flow": "absent", "ica_edv_cm_s": 20}, "ica_edv_cm_s"),
        ({"vertebral_flow": "sideways"}, "vertebral_flow"),
        ({"psv": 100}, "psv"),
    ],
)
def test_bad_side_input_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        CarotidFindings.from_json({"right": {**MEASURED, **changes}})
    assert caught.value.code == "invalid_request"
    assert f"right.{field}" in caught.value.message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "right or left"),
        ({"right": 5}, "right"),
        ({"left": {**BASE}}, "left.side"),
        ({"comment": 1}, "comment"),
        ("nope", "body"),
        ({"middle": {}}, "middle"),
    ],
)
def test_bad_exam_input_names_the_field(body: Any, field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        CarotidFindings.from_json(body)
    assert field in caught.value.message


# ---- the clinical corrections of issue 12 (part 8), one case each ---------------------------------------------------


@pytest.mark.parametrize("psv", [125, 180, 230, 231, 320])
def test_lumen_narrowed_fits_50_to_69_as_well_as_70_or_more(psv: float) -> None:
    graded = grade_side(side(plaque="lumen_narrowed", ica_psv_cm_s=psv))
    assert Flag.DISCORDANT_PLAQUE not in graded.flags
    assert Flag.DISCORDANT_PLAQUE in grade_side(side(plaque="lumen_narrowed", ica_psv_cm_s=100)).flags


def test_imt_in_the_plaque_range_with_no_plaque_is_a_contradiction_never_normal() -> None:
    graded = grade_side(side(plaque="none", ica_psv_cm_s=90, imt_mm=1.6))
    assert Flag.IMT_PLAQUE_WITHOUT_PLAQUE in graded.flags
    assert graded.grade is not Grade.NORMAL and graded.grade is Grade.LESS_THAN_50
    assert any(n.startswith("Contradiction: IMT in the plaque range") for n in english(graded.notes))
    thickened = grade_side(side(plaque="none", ica_psv_cm_s=90, imt_mm=1.2))  # intimal thickening: not normal
    assert thickened.grade is Grade.LESS_THAN_50 and Flag.IMT_PLAQUE_WITHOUT_PLAQUE not in thickened.flags
    assert grade_side(side(plaque="none", ica_psv_cm_s=90, imt_mm=0.8)).grade is Grade.NORMAL
    assert Flag.IMT_PLAQUE_WITHOUT_PLAQUE not in grade_side(side(plaque="visible", imt_mm=1.6)).flags


def test_a_ratio_with_absent_flow_is_flagged() -> None:
    graded = grade_side(side(flow="absent", ica_cca_ratio=3.0))
    assert graded.grade is Grade.TOTAL_OCCLUSION and Flag.RATIO_WITH_ABSENT_FLOW in graded.flags
    assert Flag.RATIO_WITH_ABSENT_FLOW not in grade_side(side(flow="absent")).flags


@pytest.mark.parametrize(("ratio", "disagrees"), [(2.0, False), (2.1, False), (2.25, True), (1.5, True)])
def test_an_entered_ratio_that_disagrees_with_the_velocities_is_flagged(ratio: float, disagrees: bool) -> None:
    graded = grade_side(side(ica_psv_cm_s=180, cca_psv_cm_s=90, ica_cca_ratio=ratio))  # 180 / 90 = 2.0
    assert (Flag.RATIO_DISAGREES_WITH_VELOCITIES in graded.flags) is disagrees
    # without both velocities there is nothing to disagree with
    assert Flag.RATIO_DISAGREES_WITH_VELOCITIES not in grade_side(side(ica_psv_cm_s=180, ica_cca_ratio=9)).flags


@pytest.mark.parametrize(
    ("changes", "suspected"),
    [
        ({"flow": "absent"}, True),
        ({"plaque": "markedly_narrowed"}, True),
        ({"plaque": "visible", "ica_psv_cm_s": 150}, False),
    ],
)
def test_an_angle_over_60_still_shows_suspected_occlusion(changes: dict[str, Any], suspected: bool) -> None:
    graded = grade_side(side(doppler_angle_deg=70, **changes))
    assert graded.grade is Grade.NOT_GRADED and Flag.ANGLE_OVER_60 in graded.flags
    assert (Flag.SUSPECTED_OCCLUSION in graded.flags) is suspected
    assert any("Suspected occlusion, confirm" in n for n in english(graded.notes)) is suspected


def test_undetectable_velocities_are_a_valid_entry() -> None:
    occluded = grade_side(side(flow="absent", ica_psv_cm_s=0, ica_edv_cm_s=0))
    assert occluded.grade is Grade.TOTAL_OCCLUSION
    trickle = grade_side(side(plaque="visible", ica_psv_cm_s=0))  # flow present, nothing measurable: never "< 50 %"
    assert trickle.grade is Grade.NOT_GRADED and Flag.PSV_UNDETECTABLE in trickle.flags
    near = grade_side(side(plaque="markedly_narrowed", ica_psv_cm_s=0))
    assert near.grade is Grade.NEAR_OCCLUSION


@pytest.mark.parametrize(
    ("changes", "warned"),
    [
        ({"ica_psv_cm_s": 1.8}, ["warning.psv_unit.ica_psv_cm_s"]),  # 1.8 m/s typed as cm/s
        ({"ica_psv_cm_s": 90, "cca_psv_cm_s": 0.9}, ["warning.psv_unit.cca_psv_cm_s"]),
        ({"ica_psv_cm_s": 10}, []),
        ({"ica_psv_cm_s": 0}, []),  # undetectable is not a slip
    ],
)
def test_a_psv_under_10_cm_s_asks_for_confirmation_not_refusal(changes: dict[str, Any], warned: list[str]) -> None:
    graded = grade_side(side(**changes))
    assert [w.code for w in graded.warnings] == warned


def test_a_missing_angle_is_a_warning_to_confirm() -> None:
    graded = grade_side(side(ica_psv_cm_s=180, doppler_angle_deg=None))
    assert [w.code for w in graded.warnings] == ["warning.angle_missing"]
    assert english(graded.warnings) == [
        "Right side: Doppler angle not recorded: confirm the velocities were angle-corrected at ≤ 60°"
    ]
    assert grade_side(side(ica_psv_cm_s=180)).warnings == ()  # angle 45° in BASE


@pytest.mark.parametrize(
    ("changes", "never"),
    [
        ({"imt_mm": 1.4999}, "IMT 1.5 mm"),  # thickened, not "1.5 mm: thickened"
        ({"ica_psv_cm_s": 124.96, "ica_edv_cm_s": 45}, "PSV 125 cm/s"),
        ({"ica_psv_cm_s": 180, "cca_psv_cm_s": 44.98}, "ratio 4.00 "),  # 4.0018: above 4.0, written 4.002
    ],
)
def test_report_text_never_rounds_across_a_threshold(changes: dict[str, Any], never: str) -> None:
    text = " ".join(english(grade_side(side(**changes)).notes))
    assert never not in text
    assert "1.4999" in text or "124.96" in text or "4.002 " in text
