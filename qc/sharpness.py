"""Focus and sharpness (QC.md §1): the Tenengrad and the variance of the Laplacian.

Both rise with fine detail (a crisp speckle, sharp interfaces) and fall steeply with blur (defocus, a worn
probe, heavy smoothing or compression). Both also grow with gain and contrast, and depend on the pixel scale:
absolute values do not carry across scanners, presets or downsampling, so compare a frame with frames of the
same preset at the same scale (the scores in qc.score normalise by a per-preset reference).

The mask is eroded by `erode` pixels first, so that the field of view's own edge (image against black border)
does not count as detail.
"""

from __future__ import annotations

import cv2
import numpy as np


def _inner(mask: np.ndarray | None, erode: int) -> np.ndarray | None:
    if mask is None:
        return None
    m = mask.astype(np.uint8)
    return cv2.erode(m, np.ones((3, 3), np.uint8), iterations=erode) if erode > 0 else m


def tenengrad(grey: np.ndarray, mask: np.ndarray | None = None, erode: int = 2) -> float:
    """Mean squared lateral (x) Sobel response (3×3) inside the mask. Range ≥ 0 (grey²); higher = sharper."""
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    return float(cv2.mean(cv2.multiply(gx, gx), mask=_inner(mask, erode))[0])


def laplacian_variance(grey: np.ndarray, mask: np.ndarray | None = None, erode: int = 2) -> float:
    """Variance of the 4-neighbour Laplacian inside the mask. Range ≥ 0 (grey²); higher = sharper."""
    lap = cv2.Laplacian(grey, cv2.CV_32F, ksize=1)
    _, std = cv2.meanStdDev(lap, mask=_inner(mask, erode))
    return float(std[0, 0]) ** 2
