"""Exam completeness against the protocols of CLINICAL.md §3."""

from __future__ import annotations

from typing import Any

import pytest

from qc.completeness import PROTOCOLS, completeness, exam_of


def capture(capture_id: str, **labels: Any) -> dict[str, Any]:
    return {"id": capture_id, "labels": labels}


THYROID_EXAM = [
    capture("c1", structure="thyroid right lobe", plane="transverse"),
    capture("c2", structure="thyroid right lobe", plane="longitudinal"),
    capture("c3", structure="thyroid left lobe", plane="transverse"),
    capture("c4", structure="thyroid left lobe", plane="longitudinal"),
    capture("c5", structure="thyroid isthmus", plane="transverse"),
    capture("c6", structure="thyroid left lobe", plane="transverse", mode="power_doppler"),
]


def test_a_complete_thyroid_exam() -> None:
    result = completeness("thyroid", THYROID_EXAM)
    assert result.value == 1.0
    assert result.missing == ()
    assert [i.capture for i in result.items] == ["c1", "c2", "c3", "c4", "c5", "c6"]


def test_a_missing_view_is_on_the_checklist() -> None:
    result = completeness("thyroid", THYROID_EXAM[1:])
    assert result.missing == ("right_transverse",)
    assert result.value == pytest.approx(5 / 6)
    item = result.to_dict()["items"][0]
    assert item == {"key": "right_transverse", "label": "Right lobe, transverse", "required": True,
                    "weight": 1.0, "done": False, "capture": None}  # fmt: skip


def test_the_first_matching_capture_does_it() -> None:
    exam = [capture("late", structure="thyroid isthmus", plane="transverse")] * 2
    result = completeness("thyroid", [capture("early", structure="Thyroid Isthmus", plane="transverse"), *exam])
    assert {i.key: i.capture for i in result.items}["isthmus_transverse"] == "early"


def test_spectral_doppler_over_60_degrees_does_not_count() -> None:
    steep = capture("steep", side="R", structure="ICA", mode="pw_doppler", doppler_angle=62)
    right = capture("ok", side="R", structure="ICA", mode="triplex", doppler_angle=-58)
    done = {i.key: i.done for i in completeness("carotid", [steep]).items}
    assert not done["r_ica_pw"]
    done = {i.key: i.capture for i in completeness("carotid", [steep, right]).items}
    assert done["r_ica_pw"] == "ok"
    assert done["r_ica_colour"] == "ok"  # triplex carries colour flow too
    no_angle = completeness("carotid", [capture("x", side="L", structure="CCA", mode="pw_doppler")])
    assert not {i.key: i.done for i in no_angle.items}["l_cca_pw"]


def test_vertebral_flow_direction_needs_no_angle() -> None:
    result = completeness("carotid", [capture("v", side="L", structure="vertebral", mode="pw_doppler")])
    assert {i.key: i.done for i in result.items}["l_vertebral"]


def test_weights_and_sides() -> None:
    left_ica_pw = capture("a", side="L", structure="ICA", mode="pw_doppler", doppler_angle=45)
    result = completeness("carotid", [left_ica_pw])
    total = sum(i.weight for i in PROTOCOLS["carotid"].items if i.required)
    assert result.value == pytest.approx(2.0 / total)
    assert not {i.key: i.done for i in result.items}["r_ica_pw"]


def test_invalid_labels_count_for_nothing() -> None:
    bad = [
        capture("a", structure="spleen", plane="transverse"),
        capture("b", structure="thyroid isthmus", plane="transverse", doppler_angle=30),  # angle on B-mode
        {"id": "c", "labels": "not an object"},
    ]
    assert completeness("thyroid", bad).value == 0.0


def test_the_exam_from_the_structures() -> None:
    assert exam_of(THYROID_EXAM) == "thyroid"
    assert exam_of([capture("a", side="R", structure="CCA")]) == "carotid"
    assert exam_of([]) is None
    with pytest.raises(KeyError):
        completeness("abdomen", [])
