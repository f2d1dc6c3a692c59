"""ACR TI-RADS against CLINICAL.md §1: every choice, every level boundary, every size threshold, the exam rules."""

from __future__ import annotations

import math
from typing import Any

import pytest

from signaling_server.errors import InvalidRequest
from signaling_server.reports.tirads import (
    ACR_TIRADS,
    AcrTiRads,
    Composition,
    EchogenicFocus,
    Echogenicity,
    Margin,
    Nodule,
    Shape,
    ThyroidFindings,
    TRLevel,
    score_exam,
)
from signaling_server.reports.wording import english

BENIGN: dict[str, Any] = {
    "composition": "cystic",
    "echogenicity": "anechoic",
    "shape": "wider_than_tall",
    "margin": "smooth",
    "echogenic_foci": ["none_or_comet_tail"],
    "max_axial_mm": 10,
    "perpendicular_axial_mm": 8,
    "craniocaudal_mm": 9,
}


def nodule(**changes: Any) -> Nodule:
    return Nodule.from_json({**BENIGN, **changes})


# The chart, written out again here from CLINICAL.md rather than read from the code under test.
CHART: list[tuple[str, Any, int]] = [
    ("composition", "cystic", 0),
    ("composition", "spongiform", 0),
    ("composition", "mixed_cystic_solid", 1),
    ("composition", "solid", 2),
    ("composition", "cannot_determine", 2),
    ("echogenicity", "anechoic", 0),
    ("echogenicity", "hyper_or_isoechoic", 1),
    ("echogenicity", "hypoechoic", 2),
    ("echogenicity", "very_hypoechoic", 3),
    ("echogenicity", "cannot_determine", 1),
    ("shape", "wider_than_tall", 0),
    ("shape", "taller_than_wide", 3),
    ("margin", "smooth", 0),
    ("margin", "ill_defined", 0),
    ("margin", "lobulated_or_irregular", 2),
    ("margin", "extrathyroidal_extension", 3),
    ("margin", "cannot_determine", 0),
    ("echogenic_foci", ["none_or_comet_tail"], 0),
    ("echogenic_foci", ["comet_tail"], 0),
    ("echogenic_foci", ["macrocalcifications"], 1),
    ("echogenic_foci", ["peripheral_calcifications"], 2),
    ("echogenic_foci", ["punctate_echogenic_foci"], 3),
]


@pytest.mark.parametrize(("category", "choice", "expected"), CHART)
def test_every_choice_scores_as_the_chart_says(category: str, choice: Any, expected: int) -> None:
    score = ACR_TIRADS.score(nodule(**{category: choice}))
    assert score.points.to_json()[category] == expected
    assert score.total == expected


def test_every_enum_choice_is_in_the_chart() -> None:
    """The choices the form offers are exactly the chart's: a new choice cannot go unscored by the test above."""
    offered = {
        (category, member.value)
        for category, enum in [
            ("composition", Composition),
            ("echogenicity", Echogenicity),
            ("shape", Shape),
            ("margin", Margin),
            ("echogenic_foci", EchogenicFocus),
        ]
        for member in enum
    }
    charted = {(category, choice[0] if isinstance(choice, list) else choice) for category, choice, _ in CHART}
    assert offered == charted


def test_cannot_be_judged_choices_say_what_they_scored() -> None:
    score = ACR_TIRADS.score(
        nodule(composition="cannot_determine", echogenicity="cannot_determine", margin="cannot_determine")
    )
    assert score.total == 3
    assert sum("cannot be determined" in note for note in english(score.notes)) == 3


@pytest.mark.parametrize(
    ("changes", "total", "level"),
    [
        ({}, 0, TRLevel.TR1),
        ({"composition": "mixed_cystic_solid"}, 1, TRLevel.TR2),
        ({"composition": "solid"}, 2, TRLevel.TR2),
        ({"composition": "solid", "echogenicity": "hyper_or_isoechoic"}, 3, TRLevel.TR3),
        ({"composition": "solid", "echogenicity": "hypoechoic"}, 4, TRLevel.TR4),
        ({"composition": "solid", "echogenicity": "hypoechoic", "margin": "lobulated_or_irregular"}, 6, TRLevel.TR4),
        ({"composition": "solid", "echogenicity": "hypoechoic", "shape": "taller_than_wide"}, 7, TRLevel.TR5),
    ],
)
def test_level_boundaries(changes: dict[str, Any], total: int, level: TRLevel) -> None:
    score = ACR_TIRADS.score(nodule(**changes))
    assert (score.total, score.level) == (total, level)


def test_one_point_is_tr2_by_default_and_says_so() -> None:
    score = ACR_TIRADS.score(nodule(composition="mixed_cystic_solid"))
    assert score.level is TRLevel.TR2
    assert "Total of 1 point is not in the ACR chart; reported as TR2 (configurable rule)" in english(score.notes)


def test_one_point_rule_is_configurable() -> None:
    score = AcrTiRads(one_point_level=TRLevel.TR1).score(nodule(composition="mixed_cystic_solid"))
    assert score.level is TRLevel.TR1
    assert "Total of 1 point is not in the ACR chart; reported as TR1 (configurable rule)" in english(score.notes)
    assert not any("1 point" in note for note in english(ACR_TIRADS.score(nodule(composition="solid")).notes))
    with pytest.raises(ValueError):
        AcrTiRads(one_point_level=TRLevel.TR3)


def test_spongiform_gets_no_further_points() -> None:
    score = ACR_TIRADS.score(
        nodule(
            composition="spongiform",
            echogenicity="very_hypoechoic",
            shape="taller_than_wide",
            margin="extrathyroidal_extension",
            echogenic_foci=["punctate_echogenic_foci", "macrocalcifications"],
        )
    )
    assert score.total == 0 and score.level is TRLevel.TR1
    assert set(score.points.to_json().values()) == {0}
    assert "spongiform: no further points" in english(score.notes)


def test_echogenic_foci_add_up_and_repeat_once() -> None:
    all_foci = ["macrocalcifications", "peripheral_calcifications", "punctate_echogenic_foci", "macrocalcifications"]
    score = ACR_TIRADS.score(nodule(echogenic_foci=all_foci))
    assert score.points.echogenic_foci == 1 + 2 + 3
    assert score.level is TRLevel.TR4  # 6 points
    assert nodule(echogenic_foci=all_foci).to_json()["echogenic_foci"] == all_foci[:3]


# (level-making changes, largest diameter in mm, FNA, follow-up)
TR3 = {"composition": "solid", "echogenicity": "hyper_or_isoechoic"}
TR4 = {"composition": "solid", "echogenicity": "hypoechoic"}
TR5 = {"composition": "solid", "echogenicity": "hypoechoic", "shape": "taller_than_wide"}


@pytest.mark.parametrize(
    ("changes", "largest_mm", "fna", "follow_up"),
    [
        (TR3, 14.9, False, False),
        (TR3, 15.0, False, True),
        (TR3, 24.9, False, True),
        (TR3, 25.0, True, False),
        (TR4, 9.9, False, False),
        (TR4, 10.0, False, True),
        (TR4, 14.9, False, True),
        (TR4, 15.0, True, False),
        (TR5, 4.9, False, False),
        (TR5, 5.0, False, True),
        (TR5, 9.9, False, True),
        (TR5, 10.0, True, False),
        ({}, 60.0, False, False),
        ({"composition": "solid"}, 60.0, False, False),
    ],
)
def test_size_thresholds_are_inclusive_on_the_largest_diameter(
    changes: dict[str, Any], largest_mm: float, fna: bool, follow_up: bool
) -> None:
    # the largest diameter is the craniocaudal one here: every axis counts
    score = ACR_TIRADS.score(nodule(**changes, max_axial_mm=4, perpendicular_axial_mm=3, craniocaudal_mm=largest_mm))
    assert (score.fna_recommended, score.follow_up_recommended) == (fna, follow_up)
    assert score.nodule.largest_cm == pytest.approx(largest_mm / 10)


@pytest.mark.parametrize(
    ("changes", "schedule"),
    [(TR3, "1, 3 and 5 years"), (TR4, "1, 2, 3 and 5 years"), (TR5, "every year for up to 5 years")],
)
def test_follow_up_schedules(changes: dict[str, Any], schedule: str) -> None:
    score = ACR_TIRADS.score(nodule(**changes))
    assert schedule in score.follow_up_schedule
    assert ACR_TIRADS.score(nodule()).follow_up_schedule == ""


def _exam() -> ThyroidFindings:
    # entry order deliberately scrambled against rank
    return ThyroidFindings(
        (
            nodule(**TR3, max_axial_mm=30, location="a TR3 30 mm"),  # FNA-eligible, 3 points
            nodule(**TR5, max_axial_mm=12, location="b TR5 12 mm"),  # FNA, 7 points
            nodule(**TR4, max_axial_mm=20, location="c TR4 20 mm"),  # FNA, 4 points
            nodule(**TR5, max_axial_mm=18, location="d TR5 18 mm"),  # FNA, 7 points, larger than b
            nodule(max_axial_mm=40, location="e TR1"),
            nodule(**TR4, max_axial_mm=16, location="f TR4 16 mm"),  # FNA, 4 points, smaller than c
        )
    )


def test_exam_reports_the_four_highest_and_recommends_fna_for_at_most_two() -> None:
    result = score_exam(_exam())
    assert [s.nodule.location[0] for s in result.nodules] == ["d", "b", "c", "f"]
    assert [s.number for s in result.nodules] == [4, 2, 3, 6]
    assert [s.fna_recommended for s in result.nodules] == [True, True, False, False]
    assert [s.follow_up_recommended for s in result.nodules] == [False, False, True, True]
    assert any("limited to 2 nodules" in note for note in english(result.nodules[2].notes))
    assert result.omitted == 2
    assert any("2 further nodule(s) not reported" in note for note in english(result.notes))
    assert any("not reported meets its FNA size criterion" in note for note in english(result.notes))
    assert any("largest diameter" in note and "chosen by" in note for note in english(result.notes))


def test_ranking_properties_hold_for_any_entry_order() -> None:
    nodules = list(_exam().nodules)
    for shift in range(len(nodules)):
        result = score_exam(nodules[shift:] + nodules[:shift])
        totals = [s.total for s in result.nodules]
        assert totals == sorted(totals, reverse=True)
        assert sum(s.fna_recommended for s in result.nodules) <= 2
        assert len(result.nodules) <= 4


def test_an_empty_exam_says_so() -> None:
    result = score_exam(ThyroidFindings())
    assert result.nodules == () and "No nodules reported." in english(result.notes)


def test_json_round_trip() -> None:
    findings = _exam()
    assert ThyroidFindings.from_json(findings.to_json()) == findings
    assert score_exam(findings).to_json()["nodules"][0]["level"] == "TR5"


NAN = math.nan


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"composition": "rocky"}, "composition"),
        ({"echogenicity": 3}, "echogenicity"),
        ({"shape": None}, "shape"),
        ({"margin": "SMOOTH"}, "margin"),
        ({"echogenic_foci": "punctate_echogenic_foci"}, "echogenic_foci"),
        ({"echogenic_foci": []}, "echogenic_foci"),
        ({"echogenic_foci": ["sparkles"]}, "echogenic_foci"),
        ({"max_axial_mm": -1}, "max_axial_mm"),
        ({"max_axial_mm": 0}, "max_axial_mm"),
        ({"perpendicular_axial_mm": 400}, "perpendicular_axial_mm"),
        ({"craniocaudal_mm": NAN}, "craniocaudal_mm"),
        ({"craniocaudal_mm": "12"}, "craniocaudal_mm"),
        ({"max_axial_mm": True}, "max_axial_mm"),
        ({"max_axial_mm": None}, "max_axial_mm"),
        ({"location": "x" * 65}, "location"),
        ({"location": 7}, "location"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_nodule_input_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        ThyroidFindings.from_json({"nodules": [BENIGN, {**BENIGN, **changes}]})
    assert caught.value.code == "invalid_request"
    assert f"nodules[1].{field}" in caught.value.message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"nodules": {}}, "nodules"),
        ({"nodules": [BENIGN] * 51}, "nodules"),
        ({"comment": 5}, "comment"),
        ({"nodules": ["x"]}, "nodules[0]"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_exam_input_names_the_field(body: Any, field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        ThyroidFindings.from_json(body)
    assert field in caught.value.message


# ---- contradictions and likely slips (issue 12 part 8) --------------------------------------------------------------


def test_no_foci_together_with_other_foci_is_flagged() -> None:
    both = ACR_TIRADS.score(nodule(echogenic_foci=["none_or_comet_tail", "punctate_echogenic_foci"]))
    assert both.flags == ("foci_none_with_others",)
    assert ACR_TIRADS.score(nodule(echogenic_foci=["punctate_echogenic_foci"])).flags == ()


def test_solid_composition_with_anechoic_echogenicity_is_flagged() -> None:
    assert ACR_TIRADS.score(nodule(composition="solid", echogenicity="anechoic")).flags == ("solid_anechoic",)
    assert ACR_TIRADS.score(nodule(composition="cystic", echogenicity="anechoic")).flags == ()


def test_a_diameter_under_2_mm_asks_whether_it_was_entered_in_cm() -> None:
    from signaling_server.reports.tirads import unit_warnings

    slip = nodule(max_axial_mm=1.6, perpendicular_axial_mm=1.1, craniocaudal_mm=1.4)
    assert english(unit_warnings(slip, 3)) == ["Nodule 3: largest diameter 1.6 mm: entered in cm? Confirm or correct"]
    assert unit_warnings(nodule(max_axial_mm=2, perpendicular_axial_mm=1, craniocaudal_mm=1), 1) == ()


def test_sizes_never_round_across_a_threshold() -> None:
    # 14.9999 mm is below the TR4 FNA size of 1.5 cm: no FNA, and the text must not say "1.5 cm"
    score = ACR_TIRADS.score(nodule(**TR4, max_axial_mm=14.9999))
    assert not score.fna_recommended and score.follow_up_recommended
    assert not any("1.5 cm ≥" in n for n in english(score.notes))
    assert score.to_json()["largest_diameter_text"] == "1.49999"
