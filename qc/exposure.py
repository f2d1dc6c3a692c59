"""Exposure of the field of view: gain saturation, dark fraction, dynamic-range use and TGC balance (QC.md §1).

Every metric takes a grey uint8 image and an optional boolean mask of the same shape (the field of view; the
whole image when None). The histogram-based ones also come as ``*_of(hist)`` for a 256-bin histogram that the
caller computed once (:func:`fov_histogram`), so the per-frame set pays for one histogram, not four.
"""

from __future__ import annotations

import cv2
import numpy as np

SATURATED = 250  # 8-bit grey at or above which a pixel is saturated
DARK = 5  # at or below which it is dark
LEVEL_SHARE = 1e-4  # a grey level "is used" when at least this share of the pixels has it


def _mask_u8(mask: np.ndarray | None) -> np.ndarray | None:
    return None if mask is None else mask.astype(np.uint8)


def fov_histogram(grey: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Counts of each grey level 0–255 inside the mask, float64 of length 256."""
    hist = cv2.calcHist([grey], [0], _mask_u8(mask), [256], [0, 256])
    return hist.ravel().astype(np.float64)


def saturation_of(hist: np.ndarray, level: int = SATURATED) -> float:
    total = hist.sum()
    return float(hist[level:].sum() / total) if total else 0.0


def dark_fraction_of(hist: np.ndarray, level: int = DARK) -> float:
    total = hist.sum()
    return float(hist[: level + 1].sum() / total) if total else 0.0


def percentile_of(hist: np.ndarray, q: float) -> float:
    """The grey level below which `q` % (0–100) of the pixels lie (lower rank, no interpolation)."""
    total = hist.sum()
    if not total:
        return 0.0
    rank = q / 100.0 * (total - 1)
    return float(np.searchsorted(np.cumsum(hist), rank, side="right"))


def dynamic_range_of(hist: np.ndarray) -> float:
    return percentile_of(hist, 99.0) - percentile_of(hist, 1.0)


def grey_levels_of(hist: np.ndarray, min_share: float = LEVEL_SHARE) -> int:
    total = hist.sum()
    return int(np.count_nonzero(hist >= max(1.0, min_share * total))) if total else 0


def saturation(grey: np.ndarray, mask: np.ndarray | None = None, level: int = SATURATED) -> float:
    """Share of field-of-view pixels at or above `level` (250). Range 0–1; higher = more over-gained."""
    return saturation_of(fov_histogram(grey, mask), level)


def dark_fraction(grey: np.ndarray, mask: np.ndarray | None = None, level: int = DARK) -> float:
    """Share of field-of-view pixels at or below `level` (5). Range 0–1; higher = too little gain, or no
    contact. Anechoic anatomy (vessels, cysts, shadows) is dark too, so a normal image scores above 0."""
    return dark_fraction_of(fov_histogram(grey, mask), level)


def dynamic_range(grey: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Grey spread p99 − p1 inside the field of view. Range 0–255; higher = more of the display range used,
    a compressed histogram (low) means poor gain or dynamic-range settings."""
    return dynamic_range_of(fov_histogram(grey, mask))


def grey_levels(grey: np.ndarray, mask: np.ndarray | None = None, min_share: float = LEVEL_SHARE) -> int:
    """Number of grey levels held by at least `min_share` of the pixels. Range 0–256; higher = richer."""
    return grey_levels_of(fov_histogram(grey, mask), min_share)


def row_means(grey: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(rows, means): the mean grey of each image row holding field-of-view pixels, top to bottom."""
    if mask is None:
        return np.arange(grey.shape[0]), grey.mean(axis=1)
    m = mask.astype(np.uint8)
    sums = cv2.reduce(cv2.bitwise_and(grey, grey, mask=m), 1, cv2.REDUCE_SUM, dtype=cv2.CV_32F).ravel()
    counts = cv2.reduce(m, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32F).ravel()
    rows = np.flatnonzero(counts)
    return rows, sums[rows] / counts[rows]


def tgc_slope(grey: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Least-squares slope of the row-mean brightness against depth, in grey levels per field-of-view depth
    (top row to bottom row = 1). Range −255…255; 0 = balanced, strongly negative = the image fades with depth
    (time-gain compensation too low in the far field), strongly positive = the far field is over-gained."""
    rows, means = row_means(grey, mask)
    if rows.size < 2:
        return 0.0
    depth = (rows - rows[0]) / float(rows[-1] - rows[0])
    centred = depth - depth.mean()
    return float(np.dot(centred, means - means.mean()) / np.dot(centred, centred))
