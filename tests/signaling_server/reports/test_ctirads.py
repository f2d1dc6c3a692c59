"""C-TIRADS against CLINICAL.md §1 (Zhou et al. 2020): the counting rules, every category boundary, the FNA sizes
(strictly greater), and properties: a suspicious feature never lowers the category, comet-tail never raises it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling_server.reports import ctirads
from signaling_server.reports.ctirads import C_TIRADS, CTiRads, level
from signaling_server.reports.tirads import (
    ACR_TIRADS,
    Composition,
    EchogenicFocus,
    Echogenicity,
    Margin,
    Nodule,
    Shape,
    ThyroidFindings,
    ThyroidSystem,
    score_exam,
)
from signaling_server.reports.wording import english

PLAIN: dict[str, Any] = {
    "composition": "cystic",
    "echogenicity": "hyper_or_isoechoic",
    "shape": "wider_than_tall",
    "margin": "smooth",
    "echogenic_foci": ["none_or_comet_tail"],
    "max_axial_mm": 8,
    "perpendicular_axial_mm": 6,
    "craniocaudal_mm": 7,
}


def nodule(**changes: Any) -> Nodule:
    return Nodule.from_json({**PLAIN, **changes})


# each +1 feature of the guideline, as an input change
FEATURES: dict[str, dict[str, Any]] = {
    "taller_than_wide": {"shape": "taller_than_wide"},
    "solid": {"composition": "solid"},
    "very_hypoechoic": {"echogenicity": "very_hypoechoic"},
    "punctate": {"echogenic_foci": ["punctate_echogenic_foci"]},
    "margin": {"margin": "lobulated_or_irregular"},
}


@pytest.mark.parametrize(
    ("changes", "score", "category"),
    [
        ({"echogenic_foci": ["comet_tail"]}, -1, "C-TR2"),
        ({}, 0, "C-TR3"),
        (FEATURES["solid"], 1, "C-TR4A"),
        ({**FEATURES["solid"], **FEATURES["taller_than_wide"]}, 2, "C-TR4B"),
        ({**FEATURES["solid"], **FEATURES["taller_than_wide"], **FEATURES["margin"]}, 3, "C-TR4C"),
        (
            {**FEATURES["solid"], **FEATURES["taller_than_wide"], **FEATURES["margin"], **FEATURES["punctate"]},
            4,
            "C-TR4C",
        ),
        ({k: v for f in FEATURES.values() for k, v in f.items()}, 5, "C-TR5"),
        # comet-tail offsets one feature: solid (+1) with comet-tail (-1) is 0
        ({**FEATURES["solid"], "echogenic_foci": ["comet_tail"]}, 0, "C-TR3"),
    ],
)
def test_every_category_boundary(changes: dict[str, Any], score: int, category: str) -> None:
    scored = C_TIRADS.score(nodule(**changes))
    assert (scored.total, scored.level, scored.system) == (score, category, ThyroidSystem.C_TIRADS)


@pytest.mark.parametrize("margin", ["ill_defined", "lobulated_or_irregular", "extrathyroidal_extension"])
def test_ill_defined_irregular_or_extension_count_one_point_together(margin: str) -> None:
    assert C_TIRADS.score(nodule(margin=margin)).points.margin == 1
    assert C_TIRADS.score(nodule(margin="smooth")).points.margin == 0
    assert C_TIRADS.score(nodule(margin="cannot_determine")).points.margin == 0


def test_only_what_the_guideline_counts_counts() -> None:
    # hypoechoic (not markedly), mixed composition, macro and rim calcifications: no C-TIRADS point
    plain = nodule(
        composition="mixed_cystic_solid",
        echogenicity="hypoechoic",
        echogenic_foci=["macrocalcifications", "peripheral_calcifications"],
    )
    assert C_TIRADS.score(plain).total == 0
    # the same nodule is TR4 under ACR: the systems differ, which is why the report records its system
    assert ACR_TIRADS.score(plain).level == "TR4"
    # "none or comet-tail" is none to C-TIRADS: only the separate comet-tail choice subtracts
    assert C_TIRADS.score(nodule(echogenic_foci=["none_or_comet_tail"])).total == 0
    # "cannot be determined" composition is not counted as solid, and says so
    obscured = C_TIRADS.score(nodule(composition="cannot_determine"))
    assert obscured.total == 0 and any("not counted as solid" in n for n in english(obscured.notes))


def test_scores_outside_the_scale_are_refused() -> None:
    for impossible in (-2, 6):
        with pytest.raises(ValueError):
            level(impossible)


def test_biopsy_proven_is_c_tr6_and_ranks_first() -> None:
    proven = nodule(biopsy_proven_malignant=True)
    assert C_TIRADS.score(proven).level == "C-TR6"
    result = score_exam(ThyroidFindings((nodule(**FEATURES["solid"]), proven), system=ThyroidSystem.C_TIRADS))
    assert [s.level for s in result.nodules] == ["C-TR6", "C-TR4A"]


def test_no_nodule_is_c_tr1() -> None:
    result = score_exam(ThyroidFindings(system=ThyroidSystem.C_TIRADS))
    assert english(result.notes) == ["No nodules reported (C-TR1)."]


# FNA sizes from the guideline's table: C-TR3 > 2 cm, C-TR4A > 1.5 cm, C-TR4B/4C/5 > 1 cm, strictly greater
@pytest.mark.parametrize(
    ("changes", "largest_mm", "fna"),
    [
        ({}, 20.0, False),
        ({}, 20.1, True),
        (FEATURES["solid"], 15.0, False),
        (FEATURES["solid"], 15.1, True),
        ({**FEATURES["solid"], **FEATURES["taller_than_wide"]}, 10.0, False),
        ({**FEATURES["solid"], **FEATURES["taller_than_wide"]}, 10.1, True),
        ({**FEATURES["solid"], **FEATURES["taller_than_wide"], **FEATURES["margin"]}, 10.0, False),
        ({**FEATURES["solid"], **FEATURES["taller_than_wide"], **FEATURES["margin"]}, 10.1, True),
        ({k: v for f in FEATURES.values() for k, v in f.items()}, 10.1, True),
        ({"echogenic_foci": ["comet_tail"]}, 60.0, False),  # C-TR2: benign, never FNA
    ],
)
def test_fna_size_thresholds_are_strict(changes: dict[str, Any], largest_mm: float, fna: bool) -> None:
    scored = C_TIRADS.score(nodule(**changes, max_axial_mm=largest_mm))
    assert scored.fna_recommended is fna
    assert scored.follow_up_recommended is (not fna and scored.level != "C-TR2")


def test_fna_thresholds_are_configurable_and_checked() -> None:
    strict = CTiRads(fna_cm={**ctirads.DEFAULT_FNA_CM, "C-TR3": 3.0})
    assert not strict.score(nodule(max_axial_mm=25)).fna_recommended
    assert C_TIRADS.score(nodule(max_axial_mm=25)).fna_recommended
    with pytest.raises(ValueError):
        CTiRads(fna_cm={"C-TR3": 2.0})


def test_a_small_highly_suspicious_nodule_mentions_the_5_mm_exceptions() -> None:
    scored = C_TIRADS.score(nodule(**{k: v for f in FEATURES.values() for k, v in f.items()}, max_axial_mm=8))
    assert not scored.fna_recommended
    assert any("from 5 mm" in n for n in english(scored.notes))


def test_the_findings_choose_the_system_and_the_json_records_it() -> None:
    findings = ThyroidFindings.from_json({"system": "c_tirads", "nodules": [{**PLAIN, "composition": "solid"}]})
    computed = score_exam(findings).to_json()
    assert computed["system"] == "c_tirads" and computed["system_name"] == "C-TIRADS"
    assert computed["nodules"][0]["level"] == "C-TR4A"
    assert ThyroidFindings.from_json(findings.to_json()) == findings
    assert ThyroidFindings.from_json({"nodules": []}).system is ThyroidSystem.ACR_TIRADS  # older reports


nodules = st.builds(
    Nodule,
    composition=st.sampled_from(Composition),
    echogenicity=st.sampled_from(Echogenicity),
    shape=st.sampled_from(Shape),
    margin=st.sampled_from(Margin),
    echogenic_foci=st.frozensets(st.sampled_from(EchogenicFocus), min_size=1),
    max_axial_mm=st.floats(0.5, 60),
    perpendicular_axial_mm=st.floats(0.5, 60),
    craniocaudal_mm=st.floats(0.5, 60),
)
ORDER = ["C-TR2", "C-TR3", "C-TR4A", "C-TR4B", "C-TR4C", "C-TR5"]
SUSPICIOUS = [
    {"shape": Shape.TALLER_THAN_WIDE},
    {"composition": Composition.SOLID},
    {"echogenicity": Echogenicity.VERY_HYPOECHOIC},
    {"margin": Margin.LOBULATED_OR_IRREGULAR},
]


@given(nodules, st.integers(0, len(SUSPICIOUS)))
def test_adding_a_suspicious_feature_never_lowers_the_category(n: Nodule, which: int) -> None:
    from dataclasses import replace

    before = C_TIRADS.score(n)
    if which == len(SUSPICIOUS):
        after = C_TIRADS.score(replace(n, echogenic_foci=n.echogenic_foci | {EchogenicFocus.PUNCTATE}))
    else:
        after = C_TIRADS.score(replace(n, **SUSPICIOUS[which]))  # type: ignore[arg-type]
    assert ORDER.index(after.level) >= ORDER.index(before.level)
    assert after.total >= before.total


@given(nodules)
def test_comet_tail_never_raises_the_category_and_fna_follows_the_category(n: Nodule) -> None:
    from dataclasses import replace

    with_tail = C_TIRADS.score(replace(n, echogenic_foci=n.echogenic_foci | {EchogenicFocus.COMET_TAIL}))
    plain = C_TIRADS.score(
        replace(n, echogenic_foci=n.echogenic_foci - {EchogenicFocus.COMET_TAIL} or {EchogenicFocus.NONE_OR_COMET_TAIL})
    )
    assert ORDER.index(with_tail.level) <= ORDER.index(plain.level)
    if plain.fna_recommended:  # same size, higher or equal category: FNA is never withdrawn by a worse finding
        worse = C_TIRADS.score(replace(n, composition=Composition.SOLID, echogenic_foci=plain.nodule.echogenic_foci))
        assert worse.fna_recommended
