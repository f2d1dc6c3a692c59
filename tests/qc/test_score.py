"""The session score: parts to 0–1, weights shown and renormalised, items backed by metrics."""

from __future__ import annotations

import pytest

from qc.completeness import completeness
from qc.link import LinkSample, link_summary
from qc.score import DEFAULT_WEIGHTS, OSAUS_ITEMS, image_items, osaus_part, parse_weights, rate, session_score

GOOD = {"saturation": 0.0, "dark_fraction": 0.1, "tgc_slope": -20.0, "tenengrad": 2700.0,
        "laplacian_variance": 770.0, "dynamic_range": 170.0}  # fmt: skip
POOR = {"saturation": 0.2, "dark_fraction": 0.1, "tgc_slope": -150.0, "tenengrad": 500.0,
        "laplacian_variance": 90.0, "dynamic_range": 40.0}  # fmt: skip


def test_rate_maps_between_limits_either_way() -> None:
    assert rate(0.0, 0.0, 1.0) == 5.0 and rate(1.0, 0.0, 1.0) == 1.0 and rate(0.5, 0.0, 1.0) == 3.0
    assert rate(200.0, 150.0, 50.0) == 5.0 and rate(0.0, 150.0, 50.0) == 1.0


def test_image_items_follow_the_metrics() -> None:
    good = image_items(GOOD, "thyroid", depth_mm=40.0)
    poor = image_items(POOR, "thyroid", depth_mm=90.0)
    for key in ("gain", "tgc", "depth", "focus", "visibility"):
        assert good[key]["score"] > poor[key]["score"]  # type: ignore[index]
        assert 1 <= poor[key]["score"] <= 5  # type: ignore[index]
    assert good["gain"]["metrics"] == {"saturation": 0.0, "dark_fraction": 0.1}  # type: ignore[index]
    assert image_items(GOOD, preset=None)["depth"] is None  # no depth known
    assert image_items(GOOD, "thyroid", target_gcnr=0.9)["visibility"]["score"] == 5.0  # type: ignore[index]


def test_total_weights_and_missing_parts() -> None:
    exam = completeness("thyroid", [{"id": "a", "labels": {"structure": "thyroid isthmus", "plane": "transverse"}}])
    link = link_summary([LinkSample(float(s), fps=30, rtt_ms=50, loss_pct=0.0) for s in range(1, 11)], 30)
    osaus = dict.fromkeys(OSAUS_ITEMS, 4)
    full = session_score(exam, image_items(GOOD, "thyroid", 40.0), link, osaus)
    assert full["weights"] == DEFAULT_WEIGHTS
    assert sum(full["weights_used"].values()) == pytest.approx(1.0)
    assert 0 <= full["total"] <= 1
    expected = sum(DEFAULT_WEIGHTS[k] * full["parts"][k]["value"] for k in DEFAULT_WEIGHTS)
    assert full["total"] == pytest.approx(expected, abs=1e-3)
    partial = session_score(exam, None, None, None)
    assert partial["weights_used"] == {"completeness": 1.0}
    assert partial["total"] == pytest.approx(exam.value, abs=1e-4)
    assert session_score()["total"] is None


def test_better_images_score_higher() -> None:
    good = session_score(image=image_items(GOOD, "thyroid", 40.0))
    poor = session_score(image=image_items(POOR, "thyroid", 40.0))
    assert good["total"] > poor["total"]


def test_osaus_validation() -> None:
    part = osaus_part(dict.fromkeys(OSAUS_ITEMS, 3))
    assert part["value"] == 0.5 and part["passed"]
    with pytest.raises(ValueError, match="rated 1–5"):
        osaus_part({**dict.fromkeys(OSAUS_ITEMS, 3), "documentation": 6})
    with pytest.raises(ValueError, match="unknown"):
        osaus_part({**dict.fromkeys(OSAUS_ITEMS, 3), "charm": 5})
    with pytest.raises(ValueError, match="weights"):
        session_score(weights={"luck": 1.0})


def test_weights_are_configuration() -> None:
    assert parse_weights("") == DEFAULT_WEIGHTS
    weights = parse_weights('{"osaus": 0, "link": 0.5}')
    assert weights == {**DEFAULT_WEIGHTS, "osaus": 0.0, "link": 0.5}
    score = session_score(osaus=dict.fromkeys(OSAUS_ITEMS, 5), weights=weights)
    assert score["total"] is None and score["weights"] == weights  # OSAUS alone, weighted 0: no total
    for bad, message in (("[1]", "JSON object"), ("{", "JSON object"), ('{"luck": 1}', "no part 'luck'"),
                         ('{"link": -1}', "number >= 0"), ('{"link": true}', "number >= 0"),
                         ('{"completeness": 0, "image": 0, "link": 0, "osaus": 0}', "above 0")):
        with pytest.raises(ValueError, match=message):
            parse_weights(bad)
