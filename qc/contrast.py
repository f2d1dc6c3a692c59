"""Speckle statistics and target visibility (QC.md §1): speckle SNR, gCNR and CNR for a pair of regions.

Regions are given as the pixel values they hold (``image[mask]``), so any shape of region works: a disc on a
nodule against a ring around it, two patches of parenchyma. :func:`disc` and :func:`ring` build such masks.
"""

from __future__ import annotations

import math

import numpy as np

RAYLEIGH_SNR = math.sqrt(math.pi / (4 - math.pi))  # 1.91: mean/std of fully developed speckle's envelope
LOG_SPECKLE_STD_DB = 5.57  # std of fully developed speckle after log compression, in dB


def speckle_snr(values: np.ndarray) -> float:
    """Mean / standard deviation of a homogeneous region. Range ≥ 0; 1.91 for fully developed speckle on
    linear (envelope) data, higher where the region is smoothed or not speckle. 0 for an empty or flat region."""
    v = np.asarray(values, np.float64)
    std = float(v.std()) if v.size else 0.0
    return float(v.mean()) / std if std > 0 else 0.0


def speckle_std_db(values: np.ndarray, dynamic_range_db: float) -> float:
    """Grey-level standard deviation of a homogeneous region of log-compressed data, in dB, for a display that
    maps `dynamic_range_db` onto 0–255. Range ≥ 0; theory 5.57 dB for fully developed speckle, lower when the
    image is smoothed (persistence, speckle reduction), higher where the region is not homogeneous."""
    v = np.asarray(values, np.float64)
    return float(v.std()) * dynamic_range_db / 255.0 if v.size else 0.0


def gcnr(
    inside: np.ndarray, outside: np.ndarray, bins: int = 256, value_range: tuple[float, float] = (0, 256)
) -> float:
    """Generalised contrast-to-noise ratio: 1 − the overlap of the two regions' normalised histograms.
    Range 0–1; 0 = indistinguishable, 1 = perfectly separable. Invariant to any monotonic grey mapping (gain,
    dynamic range, log compression), so it is the one to compare across video and scanners."""
    a = np.asarray(inside).ravel()
    b = np.asarray(outside).ravel()
    if not a.size or not b.size:
        return 0.0
    ha = np.histogram(a, bins=bins, range=value_range)[0] / a.size
    hb = np.histogram(b, bins=bins, range=value_range)[0] / b.size
    return float(1.0 - np.minimum(ha, hb).sum())


def cnr(inside: np.ndarray, outside: np.ndarray) -> float:
    """Contrast-to-noise ratio |μi − μo| / sqrt(σi² + σo²). Range ≥ 0; higher = more visible target. Changes
    with the grey mapping, unlike gCNR."""
    a = np.asarray(inside, np.float64).ravel()
    b = np.asarray(outside, np.float64).ravel()
    if not a.size or not b.size:
        return 0.0
    noise = math.sqrt(float(a.var()) + float(b.var()))
    return abs(float(a.mean()) - float(b.mean())) / noise if noise > 0 else 0.0


def disc(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    """Boolean mask of the pixels within `radius` of `centre` (x, y)."""
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return np.hypot(xx - centre[0], yy - centre[1]) < radius


def ring(shape: tuple[int, int], centre: tuple[float, float], inner: float, outer: float) -> np.ndarray:
    """Boolean mask of the pixels between `inner` and `outer` radii of `centre` (x, y)."""
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    distance = np.hypot(xx - centre[0], yy - centre[1])
    return (distance >= inner) & (distance < outer)
