"""The per-frame metric set, fast: everything of QC.md §1 that needs one frame, on a downsampled grey FOV.

A :class:`FrameAnalyser` is prepared once per field of view (the crop box, the masks at the working scale,
the eroded mask for gradients) and then measures frames: crop to the field of view's box, convert to grey,
halve with area averaging, and compute the histogram metrics from one histogram. Halving keeps every property
the metrics are for (blur still lowers both sharpness measures, saturation and dark shares are unchanged up to
the edge pixels) at a quarter of the cost.

Frames are H×W×3 BGR (a `SourceFrame.image`) or H×W grey (a decoded video's luma plane), full size.
:meth:`FrameAnalyser.thumbnail` is the cheaper view used to compare consecutive frames for freezes: every
fourth pixel of the box, not averaged, so that its mean absolute difference estimates the full image's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from qc import contact, exposure, sharpness
from qc.contact import DEFAULT_CONTACT, ContactThresholds
from qc.fov import Box, bounding_box, resize_mask

SCALE = 2  # metrics on a 1/2 × 1/2 copy
THUMB_STRIDE = 4  # freeze differences on every 4th pixel


@dataclass(frozen=True)
class FrameMetrics:
    mean: float  # mean grey, 0–255
    saturation: float  # share ≥ 250, 0–1, lower is better
    dark_fraction: float  # share ≤ 5, 0–1
    dynamic_range: float  # p99 − p1, 0–255, higher is better
    grey_levels: int  # 0–256, higher is better
    tgc_slope: float  # grey per FOV depth, −255…255, 0 is balanced
    tenengrad: float  # ≥ 0, higher is sharper (per preset and scale)
    laplacian_variance: float  # ≥ 0, higher is sharper (per preset and scale)
    near_field_share: float  # 0–1; computed only for mostly dark frames (0 otherwise), the no-contact gate
    no_contact: bool

    def to_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


def to_grey(image: np.ndarray) -> np.ndarray:
    """Grey uint8 from BGR (luma weights) or grey (as is)."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


class FrameAnalyser:
    """Measures frames inside one field of view (a boolean mask of the full frame's size)."""

    def __init__(
        self,
        fov_mask: np.ndarray,
        scale: int = SCALE,
        contact: ContactThresholds = DEFAULT_CONTACT,
        levels: np.ndarray | None = None,
    ) -> None:
        self.fov_mask = fov_mask
        self.levels = levels  # a 256-entry table applied to grey (limited-range video luma to full range)
        self.frame_shape = fov_mask.shape[:2]
        self.scale = scale
        self.contact = contact
        box = bounding_box(fov_mask)
        # an even box keeps the halving exact
        self.box = Box(box.x, box.y, max(scale, box.w - box.w % scale), max(scale, box.h - box.h % scale))
        crop = fov_mask[self.box.slices]
        self.size = (self.box.w // scale, self.box.h // scale)  # (width, height) at the working scale
        self.mask = resize_mask(crop, (self.size[1], self.size[0]))
        self.mask_u8 = self.mask.astype(np.uint8)
        self.inner_u8 = cv2.erode(self.mask_u8, np.ones((3, 3), np.uint8), iterations=2)
        self.thumb_mask = np.ascontiguousarray(crop[::THUMB_STRIDE, ::THUMB_STRIDE])
        self.thumb_mask_u8 = self.thumb_mask.astype(np.uint8)
        self.thumb_area = int(np.count_nonzero(self.thumb_mask))

    def grey(self, image: np.ndarray) -> np.ndarray:
        """The field of view's box, grey, at the working scale."""
        if image.shape[:2] != self.frame_shape:
            raise ValueError(f"frame {image.shape[:2]} does not match the field of view {self.frame_shape}")
        crop = to_grey(image[self.box.slices])
        if self.scale == 1:
            small = np.ascontiguousarray(crop)
        else:
            small = cv2.resize(crop, self.size, interpolation=cv2.INTER_AREA)
        return small if self.levels is None else cv2.LUT(small, self.levels)

    def thumbnail(self, image: np.ndarray) -> np.ndarray:
        """Every 4th pixel of the field of view's box, grey (compare with :attr:`thumb_mask`)."""
        thumb = to_grey(np.ascontiguousarray(image[self.box.slices][::THUMB_STRIDE, ::THUMB_STRIDE]))
        return thumb if self.levels is None else cv2.LUT(thumb, self.levels)

    def difference(self, a: np.ndarray, b: np.ndarray) -> float:
        """Mean absolute difference of two thumbnails inside the field of view (0–255)."""
        return float(cv2.mean(cv2.absdiff(a, b), mask=self.thumb_mask_u8)[0])

    def dark_share(self, thumb: np.ndarray) -> float:
        """Share of a thumbnail's field-of-view pixels that are dark (≤ 5), 0–1."""
        dark = cv2.countNonZero(cv2.bitwise_and(self.thumb_mask_u8, (thumb <= exposure.DARK).view(np.uint8)))
        return dark / max(1, self.thumb_area)

    def measure(self, image: np.ndarray) -> FrameMetrics:
        return self.measure_grey(self.grey(image))

    def measure_grey(self, grey: np.ndarray) -> FrameMetrics:
        """The metric set of a frame already reduced by :meth:`grey`."""
        hist = cv2.calcHist([grey], [0], self.mask_u8, [256], [0, 256]).ravel().astype(np.float64)
        total = hist.sum()
        dark = exposure.dark_fraction_of(hist)
        t = self.contact
        near = contact.near_field_share(grey, self.mask, t.near_depth) if dark >= t.dark_share else 0.0
        return FrameMetrics(
            mean=float(np.dot(hist, np.arange(256)) / total) if total else 0.0,
            saturation=exposure.saturation_of(hist),
            dark_fraction=dark,
            dynamic_range=exposure.dynamic_range_of(hist),
            grey_levels=exposure.grey_levels_of(hist),
            tgc_slope=exposure.tgc_slope(grey, self.mask),
            tenengrad=sharpness.tenengrad(grey, self.inner_u8, erode=0),
            laplacian_variance=sharpness.laplacian_variance(grey, self.inner_u8, erode=0),
            near_field_share=near,
            no_contact=near >= t.near_share and contact.no_contact(grey, self.mask, dark, t),
        )


def summarise(samples: Sequence[FrameMetrics]) -> dict[str, dict[str, float]]:
    """Per metric over the samples: mean, p5, median, p95 (no_contact: the share of samples flagged)."""
    if not samples:
        return {}
    summary: dict[str, dict[str, float]] = {}
    for name in FrameMetrics.__dataclass_fields__:
        values = np.array([float(getattr(m, name)) for m in samples])
        if name == "no_contact":
            summary[name] = {"share": round(float(values.mean()), 4)}
            continue
        p5, p50, p95 = np.percentile(values, [5, 50, 95])
        summary[name] = {k: round(float(v), 4) for k, v in
                         (("mean", values.mean()), ("p5", p5), ("median", p50), ("p95", p95))}  # fmt: skip
    return summary
