"""No contact: the probe held in air or lifted off the skin (QC.md §1).

Without coupling, the beam never leaves the lens: the field of view is black except for the echoes ringing
between the lens layers, a stack of bright bands right below the probe face. So a frame is *no contact* when

- at least `dark_share` (80 %) of the field of view is dark, and
- at least `near_share` (80 %) of the pixels that are not dark lie in the top `near_depth` (30 %) of it, and
- the near-field echoes are bright (their profile peaks at `min_peak` grey or more), and
- they reverberate: echoes of at least a tenth of the peak reach `min_layer` (5 %) of the depth below the face,
  where a lone skin line under far too little gain is one thin line.

The bands follow the probe face, straight for a linear array and curved for a convex one, so each column's
profile is aligned on its first echo before they are averaged (:func:`near_field_profile`); :func:`count_bands`
counts the bands in it (reported; weak bands, as in the Philips probe-in-air file, blur into one lobe).
A black frame (lost signal) and a frame with far too little gain are *dark*, not no contact.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from qc.exposure import DARK


@dataclass(frozen=True)
class ContactThresholds:
    dark_share: float = 0.8
    near_share: float = 0.8
    near_depth: float = 0.3
    min_peak: float = 40.0
    min_layer: float = 0.05


DEFAULT_CONTACT = ContactThresholds()


def _masked(grey: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return grey if mask is None else np.where(mask, grey, 0).astype(np.uint8)


def near_field_share(grey: np.ndarray, mask: np.ndarray | None = None, depth: float = 0.3, dark: int = DARK) -> float:
    """Share of the field of view's non-dark pixels lying in its top `depth` fraction. Range 0–1; about
    `depth` for tissue evenly bright with depth, near 1 when only the near field echoes (0 when all is dark)."""
    lit = (_masked(grey, mask) > dark).astype(np.uint8)
    per_row = cv2.reduce(lit, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32F).ravel()
    rows = np.arange(grey.shape[0]) if mask is None else np.flatnonzero(mask.any(axis=1))
    total = float(per_row.sum())
    if not total or not rows.size:
        return 0.0
    cut = rows[0] + round(depth * (rows[-1] - rows[0] + 1))
    return float(per_row[:cut].sum() / total)


def _fov_rows(grey: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, int]:
    """The masked image cropped to the field of view's rows, and its depth in rows."""
    if mask is None:
        return grey, grey.shape[0]
    rows = np.flatnonzero(mask.any(axis=1))
    if not rows.size:
        return grey[:0], 0
    return _masked(grey, mask)[rows[0] : rows[-1] + 1], int(rows[-1] - rows[0] + 1)


def near_field_profile(
    grey: np.ndarray, mask: np.ndarray | None = None, depth: float = 0.35, dark: int = DARK
) -> np.ndarray:
    """Mean grey against distance below the first echo (`depth` of the field of view long), over the columns
    that echo within the top `depth` of it; empty when fewer than 5 % of the columns do."""
    image, rows = _fov_rows(grey, mask)
    span = max(1, int(depth * rows))
    if not rows:
        return np.zeros(0, np.float32)
    lit = image > dark
    first = np.argmax(lit, axis=0)
    active = np.flatnonzero(lit.any(axis=0) & (first < span))
    if active.size < 0.05 * image.shape[1]:
        return np.zeros(0, np.float32)
    index = np.minimum(first[active][None, :] + np.arange(span)[:, None], rows - 1)
    profile: np.ndarray = image[index, active[None, :]].astype(np.float32).mean(axis=1)
    return profile


def count_bands(profile: np.ndarray) -> int:
    """Number of bright lobes standing out of a profile's local trend (a moving average over 1/8 of it)."""
    if profile.size < 8:
        return 0
    window = max(5, (profile.size // 8) | 1)
    trend = cv2.blur(profile.reshape(-1, 1).astype(np.float32), (1, window)).ravel()
    above = (profile - trend) > max(3.0, 0.05 * float(profile.max()))
    return int(np.count_nonzero(above[1:] & ~above[:-1]) + int(above[0]))


def near_field_bands(grey: np.ndarray, mask: np.ndarray | None = None) -> int:
    """Number of reverberation bands below the probe face. Range ≥ 0; tissue shows a few as well, so it
    means something only together with a dark field of view."""
    return count_bands(near_field_profile(grey, mask))


def echo_layer(profile: np.ndarray, fov_rows: int) -> float:
    """How deep below the face echoes of at least a tenth of the profile's peak reach, as a share of the field
    of view's depth. Range 0–1 (0 for an empty profile)."""
    if not profile.size or not fov_rows:
        return 0.0
    strong = np.flatnonzero(profile >= 0.1 * float(profile.max()))
    return float((strong[-1] + 1) / fov_rows) if strong.size else 0.0


def no_contact(
    grey: np.ndarray,
    mask: np.ndarray | None = None,
    dark_fraction: float | None = None,
    thresholds: ContactThresholds = DEFAULT_CONTACT,
) -> bool:
    """True when the frame looks like a probe in air (the rule in the module docstring). `dark_fraction`
    may be passed when the caller already has it."""
    t = thresholds
    if dark_fraction is None:
        values = grey if mask is None else grey[mask]
        dark_fraction = float(np.count_nonzero(values <= DARK) / max(1, values.size))
    if dark_fraction < t.dark_share or near_field_share(grey, mask, t.near_depth) < t.near_share:
        return False
    profile = near_field_profile(grey, mask)
    if not profile.size or profile.max() < t.min_peak:
        return False
    return echo_layer(profile, _fov_rows(grey, mask)[1]) >= t.min_layer
