"""The field of view: which pixels of a scanner screen are the ultrasound image (QC.md §1).

Every image metric is computed inside this mask only: the black border, the banner, the parameter panel and the
depth scale are 30–85 % of a captured screen and would swamp every statistic. Four ways to find it, best first:

- :func:`temporal_fov`: pixels that change over a few frames (speckle decorrelates, tissue moves) against
  user-interface pixels that never change. The largest changing blob is filled by its convex hull (a linear
  probe's box and a curved or phased array's sector are both convex) and snapped to its bounding box when it is
  nearly rectangular.
- :func:`region_fov`: the 2D regions of a DICOM image's US Region Calibration (a box, also around a sector).
- :func:`grown_fov`: one frame, grown from the centre while pixels are brighter than the background.
- :func:`default_fov`: a central box, when nothing better is known (a frozen or black feed from the start).

Each returns a boolean mask of the input's shape (True inside) or None when it finds nothing plausible.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

MIN_AREA_FRACTION = 0.05  # a field of view smaller than this share of the screen is not believed
RECTANGLE_FILL = 0.92  # a blob filling this share of its bounding box is a linear probe's box
TISSUE_DATA_TYPES = frozenset({1, 2})  # RegionDataType: tissue, colour flow


class Region(Protocol):
    """What :func:`region_fov` needs of a US region (qc.regions.UltrasoundRegion fits)."""

    @property
    def min_x0(self) -> int: ...
    @property
    def min_y0(self) -> int: ...
    @property
    def max_x1(self) -> int: ...
    @property
    def max_y1(self) -> int: ...
    @property
    def spatial_format(self) -> int: ...
    @property
    def data_type(self) -> int: ...


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels: columns x..x+w, rows y..y+h."""

    x: int
    y: int
    w: int
    h: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y, self.y + self.h), slice(self.x, self.x + self.w)


def bounding_box(mask: np.ndarray) -> Box:
    """The smallest box holding every True pixel of `mask` (the whole mask when it is empty)."""
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    if w == 0 or h == 0:
        return Box(0, 0, mask.shape[1], mask.shape[0])
    return Box(x, y, w, h)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of one shape. Range 0–1, higher = more alike."""
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 1.0


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A boolean mask resampled (nearest) to `shape` (rows, columns)."""
    if mask.shape[:2] == shape:
        return mask
    resized = cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return resized.astype(bool)


def _fill_convex(component: np.ndarray) -> np.ndarray:
    """The blob's convex hull, or its bounding box when the hull nearly fills the box."""
    points = cv2.findNonZero(component.astype(np.uint8))
    hull = cv2.convexHull(points)
    filled = np.zeros(component.shape, np.uint8)
    cv2.fillConvexPoly(filled, hull, 1)
    box = bounding_box(filled)
    if np.count_nonzero(filled) >= RECTANGLE_FILL * box.w * box.h:
        filled[box.slices] = 1
    return filled.astype(bool)


def _plausible(mask: np.ndarray | None) -> np.ndarray | None:
    if mask is None or np.count_nonzero(mask) < MIN_AREA_FRACTION * mask.size:
        return None
    return mask


def _largest_blob(binary: np.ndarray) -> np.ndarray | None:
    """The largest 8-connected blob (None when nothing is lit)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    if count <= 1:
        return None
    largest: np.ndarray = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return largest


def _close(binary: np.ndarray, fraction: float) -> np.ndarray:
    """Morphological closing with a disc of `fraction` of the image's smaller side, on a zero-padded copy:
    OpenCV's erosion treats the outside as lit, which would glue any blob near the edge onto the edge."""
    size = max(3, round(fraction * min(binary.shape[:2])) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    padded = cv2.copyMakeBorder(binary, size, size, size, size, cv2.BORDER_CONSTANT, value=0)
    closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, kernel)
    return closed[size:-size, size:-size]


def _open(binary: np.ndarray, size: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)


def temporal_fov(frames: Sequence[np.ndarray], min_change: int = 10) -> np.ndarray | None:
    """The field of view from pixels whose grey level spans at least `min_change` over `frames`.

    `frames`: two or more grey uint8 images of one shape (downsampled copies work as well and cost less). The
    banner clock also changes, but it is a small blob of its own: only the largest changing blob is kept.
    """
    if len(frames) < 2:
        return None
    stack = np.stack(frames)
    spread = stack.max(axis=0) - stack.min(axis=0)
    live = (spread >= min_change).astype(np.uint8)
    live = _close(_open(live, 3), 0.04)
    blob = _largest_blob(live)
    return _plausible(None if blob is None else _fill_convex(blob))


def grown_fov(grey: np.ndarray, background: int = 8, min_blob: float = 0.02) -> np.ndarray | None:
    """The field of view of a single frame: the bright blobs of at least `min_blob` of the frame (text, scale
    ticks and the grey bar are opened away or too small), filled by their common hull. Anechoic anatomy may
    split the image (a vessel across a longitudinal view): the hull joins the parts again."""
    lit = (cv2.medianBlur(grey, 5) > background).astype(np.uint8)
    lit = _close(_open(lit, max(3, int(0.01 * min(grey.shape[:2])) | 1)), 0.02)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(lit, connectivity=8)
    big = [k for k in range(1, count) if stats[k, cv2.CC_STAT_AREA] >= min_blob * lit.size]
    if not big:
        return None
    return _plausible(_fill_convex(np.isin(labels, big)))


def region_fov(shape: tuple[int, int], regions: Iterable[Region]) -> np.ndarray | None:
    """The union of the 2D tissue and colour-flow regions' boxes (inclusive corners) on a `shape` frame."""
    mask = np.zeros(shape, bool)
    for r in regions:
        if r.spatial_format == 1 and r.data_type in TISSUE_DATA_TYPES:
            mask[r.min_y0 : r.max_y1 + 1, r.min_x0 : r.max_x1 + 1] = True
    return _plausible(mask)


def default_fov(shape: tuple[int, int]) -> np.ndarray:
    """A central box (20–80 % across, 15–90 % down): inside the image on the scanner screens we know."""
    rows, cols = shape
    mask = np.zeros(shape, bool)
    mask[int(0.15 * rows) : int(0.9 * rows), int(0.2 * cols) : int(0.8 * cols)] = True
    return mask


def best_fov(
    shape: tuple[int, int],
    frames: Sequence[np.ndarray] = (),
    regions: Iterable[Region] = (),
) -> tuple[np.ndarray, str]:
    """The best mask at `shape` from what is known, and how it was found ("temporal", "region", "grown",
    "default"). `frames` are grey and may be smaller than `shape` (they are downsampled copies); a temporal
    mask is kept inside the calibrated regions when there are some."""
    region = region_fov(shape, regions)
    temporal = temporal_fov(frames)
    if temporal is not None:
        inside = resize_mask(temporal, shape) if region is None else _plausible(resize_mask(temporal, shape) & region)
        if inside is not None:
            return inside, "temporal"
    if region is not None:
        return region, "region"
    grown = grown_fov(frames[-1]) if frames else None
    if grown is not None:
        return resize_mask(grown, shape), "grown"
    return default_fov(shape), "default"
