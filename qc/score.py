"""The session score (QC.md §4): completeness, five image-quality items, link quality and the trainer's OSAUS.

Each part is brought to 0–1 (higher is better): completeness as it is; the image items (1–5 each, from the
metrics, see below) and the OSAUS items (1–5, CLINICAL.md §5) as (mean − 1) / 4; the link's `value`. The total is
the weighted mean of the parts that are present, the weights renormalised over them; the configured weights and
the ones used are both returned, so that the page shows them beside the total.

Image items, each 1–5 by a linear map between a `good` and a `bad` limit (5 at or beyond good, 1 at or beyond
bad), from the medians over the frames that show tissue (not dark, not no-contact):

- gain: the worse of saturation (good 0.5 %, bad 5 %) and dark fraction (good 30 %, bad 80 %);
- TGC: |row-mean slope| (good 40, bad 120 grey per depth);
- depth: inside the preset's range (thyroid and carotid 30–50 mm) is 5, down to 1 at half or twice it;
- focus: the geometric mean of Tenengrad and Laplacian variance against the preset's reference values
  (good 0.8 × reference, bad 0.25 ×): calibrate the reference per probe, preset and source (a compressed
  recording is softer than the live picture);
- target visibility: the gCNR of a target against its surround when one is given (good 0.6, bad 0.1), else
  the dynamic range used (p99 − p1, good 150, bad 50 grey).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qc.completeness import Completeness
from qc.link import LinkSummary

DEFAULT_WEIGHTS: dict[str, float] = {"completeness": 0.3, "image": 0.3, "link": 0.2, "osaus": 0.2}


def parse_weights(text: str) -> dict[str, float]:
    """The session score's part weights from a JSON object (QC.md §4: configuration): the parts it names replace
    the defaults, the others keep theirs; "" gives the defaults. ValueError for anything else: not an object, an
    unknown part, a weight that is not a number >= 0, or all weights 0."""
    weights = dict(DEFAULT_WEIGHTS)
    if not text.strip():
        return weights
    try:
        given = json.loads(text)
    except ValueError:
        raise ValueError("the weights are a JSON object, e.g. {\"completeness\": 0.4}") from None
    if not isinstance(given, dict):
        raise ValueError("the weights are a JSON object, e.g. {\"completeness\": 0.4}")
    for part, weight in given.items():
        if part not in DEFAULT_WEIGHTS:
            raise ValueError(f"no part {part!r}: the parts are {', '.join(DEFAULT_WEIGHTS)}")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"the weight of {part} is a number >= 0")
        weights[part] = float(weight)
    if not any(weights.values()):
        raise ValueError("at least one weight is above 0")
    return weights
OSAUS_ITEMS = (
    "indication",
    "equipment",
    "image_optimisation",
    "systematic_examination",
    "interpretation",
    "documentation",
    "decision_making",
)
OSAUS_PASS_MARK = 2.5
# preset -> (shallowest, deepest) good depth in mm
DEPTH_RANGES_MM: dict[str, tuple[float, float]] = {"thyroid": (30.0, 50.0), "carotid": (30.0, 50.0)}
# preset -> reference sharpness at the analysers' working scale (the synthetic source's live picture)
SHARPNESS_REFERENCES: dict[str, dict[str, float]] = {
    "thyroid": {"tenengrad": 2700.0, "laplacian_variance": 770.0},
    "carotid": {"tenengrad": 1950.0, "laplacian_variance": 720.0},
}


@dataclass(frozen=True)
class ImageLimits:
    saturation: tuple[float, float] = (0.005, 0.05)
    dark_fraction: tuple[float, float] = (0.3, 0.8)
    tgc_abs_slope: tuple[float, float] = (40.0, 120.0)
    sharpness_ratio: tuple[float, float] = (0.8, 0.25)
    gcnr: tuple[float, float] = (0.6, 0.1)
    dynamic_range: tuple[float, float] = (150.0, 50.0)
    depth_ranges_mm: Mapping[str, tuple[float, float]] = field(default_factory=lambda: dict(DEPTH_RANGES_MM))
    sharpness_references: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: dict(SHARPNESS_REFERENCES))


def rate(value: float, good: float, bad: float) -> float:
    """1–5: 5 at or beyond `good`, 1 at or beyond `bad`, linear between (either direction)."""
    share = (value - bad) / (good - bad)
    return 1.0 + 4.0 * min(1.0, max(0.0, share))


def _item(score: float | None, **metrics: float | None) -> dict[str, Any] | None:
    if score is None:
        return None
    return {"score": round(score, 2), "metrics": {k: v for k, v in metrics.items() if v is not None}}


def _depth_score(depth_mm: float, low: float, high: float) -> float:
    if depth_mm < low:
        return rate(depth_mm, low, low / 2)
    return rate(depth_mm, high, 2 * high) if depth_mm > high else 5.0


def image_items(
    metrics: Mapping[str, float],
    preset: str | None = None,
    depth_mm: float | None = None,
    target_gcnr: float | None = None,
    limits: ImageLimits = ImageLimits(),
) -> dict[str, dict[str, Any] | None]:
    """The five image items (gain, tgc, depth, focus, visibility) from the medians of the frame metrics
    (keys of qc.frame.FrameMetrics); an item that cannot be scored is None."""
    sat, dark = metrics.get("saturation"), metrics.get("dark_fraction")
    gain = None
    if sat is not None and dark is not None:
        gain = min(rate(sat, *limits.saturation), rate(dark, *limits.dark_fraction))
    slope = metrics.get("tgc_slope")
    depth_range = limits.depth_ranges_mm.get(preset or "")
    depth = None if depth_mm is None or depth_range is None else _depth_score(depth_mm, *depth_range)
    reference = limits.sharpness_references.get(preset or "")
    focus = ratio = None
    ten, lap = metrics.get("tenengrad"), metrics.get("laplacian_variance")
    if reference and ten is not None and lap is not None:
        ratio = math.sqrt(max(ten, 0.0) / reference["tenengrad"] * max(lap, 0.0) / reference["laplacian_variance"])
        focus = rate(ratio, *limits.sharpness_ratio)
    spread = metrics.get("dynamic_range")
    if target_gcnr is not None:
        visibility: float | None = rate(target_gcnr, *limits.gcnr)
    else:
        visibility = None if spread is None else rate(spread, *limits.dynamic_range)
    return {
        "gain": _item(gain, saturation=sat, dark_fraction=dark),
        "tgc": _item(None if slope is None else rate(abs(slope), *limits.tgc_abs_slope), tgc_slope=slope),
        "depth": _item(depth, depth_mm=depth_mm),
        "focus": _item(focus, tenengrad=ten, laplacian_variance=lap, sharpness_ratio=ratio),
        "visibility": _item(visibility, gcnr=target_gcnr, dynamic_range=spread),
    }


def osaus_part(ratings: Mapping[str, float]) -> dict[str, Any]:
    """The trainer's OSAUS: seven items 1–5 (:data:`OSAUS_ITEMS`). Raises ValueError on a missing or
    out-of-range item."""
    unknown = set(ratings) - set(OSAUS_ITEMS)
    if unknown:
        raise ValueError(f"unknown OSAUS item {sorted(unknown)[0]!r}")
    for key in OSAUS_ITEMS:
        value = ratings.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 5:
            raise ValueError(f"OSAUS item {key!r} must be rated 1–5")
    mean = sum(float(ratings[k]) for k in OSAUS_ITEMS) / len(OSAUS_ITEMS)
    return {
        "value": round((mean - 1) / 4, 4),
        "mean": round(mean, 3),
        "pass_mark": OSAUS_PASS_MARK,
        "passed": mean >= OSAUS_PASS_MARK,
        "items": {k: ratings[k] for k in OSAUS_ITEMS},
    }


def session_score(
    completeness: Completeness | None = None,
    image: Mapping[str, dict[str, Any] | None] | None = None,
    link: LinkSummary | None = None,
    osaus: Mapping[str, float] | None = None,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> dict[str, Any]:
    """The score's JSON: ``total`` (0–1, None when no part is present), ``weights`` (as configured),
    ``weights_used`` (renormalised over the present parts) and ``parts`` (each with its ``value`` 0–1)."""
    if set(weights) - set(DEFAULT_WEIGHTS) or any(w < 0 for w in weights.values()):
        raise ValueError(f"weights are non-negative numbers for {', '.join(DEFAULT_WEIGHTS)}")
    parts: dict[str, dict[str, Any] | None] = {"completeness": None, "image": None, "link": None, "osaus": None}
    if completeness is not None:
        parts["completeness"] = completeness.to_dict()
    scored = {k: v for k, v in (image or {}).items() if v is not None}
    if scored:
        mean = sum(v["score"] for v in scored.values()) / len(scored)
        parts["image"] = {"value": round((mean - 1) / 4, 4), "mean": round(mean, 3), "items": dict(image or {})}
    if link is not None and link.value is not None:
        parts["link"] = link.to_dict()
    if osaus is not None:
        parts["osaus"] = osaus_part(osaus)
    values = {k: float(part["value"]) for k, part in parts.items() if part is not None}
    present = {k: float(weights.get(k, 0.0)) for k in values}
    total_weight = sum(present.values())
    used = {k: round(w / total_weight, 4) for k, w in present.items()} if total_weight else {}
    total = sum(w * values[k] for k, w in present.items()) / total_weight if total_weight else None
    return {
        "total": None if total is None else round(total, 4),
        "scale": "0-1, higher is better",
        "weights": dict(weights),
        "weights_used": used,
        "parts": parts,
    }
