"""Ultrasound regions (PS3.3 C.8.5.5, Sequence of Ultrasound Regions): where the image regions of a frame are and
how many centimetres (seconds, cm/s…) one pixel spans. Plain records, read from and written to a DICOM dataset.

The regions are what makes calipers measure in mm, what gives the imaging depth (qc.depth) and what bounds the field
of view (qc.fov). The edge writes them into the images it captures from its per-preset configuration
(edge_capture/dicom/calibration.py); QC, the teaching export and the viewer read them back.

Error tree::

    ValueError
    └── CalibrationError(code="invalid_calibration", message): a region is malformed
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from pydicom.dataset import Dataset

# PS3.3 C.8.5.5.1.1-1.4
SPATIAL_FORMATS = {"none": 0, "2d": 1, "m_mode": 2, "spectral": 3, "waveform": 4, "graphics": 5}
DATA_TYPES = {
    "none": 0, "tissue": 1, "colour_flow": 2, "pw_spectral": 3, "cw_spectral": 4, "doppler_mean_trace": 5,
    "doppler_mode_trace": 6, "doppler_max_trace": 7, "volume_trace": 8, "ecg": 10, "pulse": 11,
    "phonocardiogram": 12, "grey_bar": 13, "colour_bar": 14,
}  # fmt: skip
UNITS = {
    "none": 0, "percent": 1, "dB": 2, "cm": 3, "s": 4, "Hz": 5, "dB/s": 6, "cm/s": 7, "cm2": 8, "cm2/s": 9,
    "cm3": 10, "cm3/s": 11, "degrees": 12,
}  # fmt: skip
CM = UNITS["cm"]
SPATIAL_2D = SPATIAL_FORMATS["2d"]
DOPPLER_DATA_TYPES = frozenset({2, 3, 4})
MAX_FLAGS = 0b11111  # priority, scaling protection, Doppler scale type, two bits of scrolling


class CalibrationError(ValueError):
    def __init__(self, message: str, code: str = "invalid_calibration") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class UltrasoundRegion:
    """One item of Sequence of Ultrasound Regions; pixel box corners inclusive, as DICOM has them."""

    min_x0: int
    min_y0: int
    max_x1: int
    max_y1: int
    physical_delta_x: float
    physical_delta_y: float
    physical_units_x: int = CM
    physical_units_y: int = CM
    spatial_format: int = SPATIAL_2D
    data_type: int = DATA_TYPES["tissue"]
    flags: int = 0
    reference_pixel: tuple[int, int] | None = None  # relative to (min_x0, min_y0)
    reference_value: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        box = (self.min_x0, self.min_y0, self.max_x1, self.max_y1)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in box):
            raise CalibrationError(f"region box {box} must be whole pixels >= 0")
        if self.min_x0 > self.max_x1 or self.min_y0 > self.max_y1:
            raise CalibrationError(f"region box {box} has its corners swapped")
        for name, value, codes in (
            ("spatial format", self.spatial_format, SPATIAL_FORMATS.values()),
            ("data type", self.data_type, DATA_TYPES.values()),
            ("units x", self.physical_units_x, UNITS.values()),
            ("units y", self.physical_units_y, UNITS.values()),
        ):
            if value not in codes:
                raise CalibrationError(f"unknown {name} {value!r}")
        reference = self.reference_pixel
        if reference is not None and not all(isinstance(v, int) and not isinstance(v, bool) for v in reference):
            raise CalibrationError(f"reference pixel {reference} must be whole pixels")
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in self.reference_value):
            raise CalibrationError(f"reference value {self.reference_value} must be finite numbers")
        if not isinstance(self.flags, int) or not 0 <= self.flags <= MAX_FLAGS:
            raise CalibrationError(f"region flags must be 0..{MAX_FLAGS}")
        for units, delta in (
            (self.physical_units_x, self.physical_delta_x),
            (self.physical_units_y, self.physical_delta_y),
        ):
            if not isinstance(delta, int | float) or not math.isfinite(delta) or (units and delta == 0):
                raise CalibrationError(f"physical delta {delta!r} must be finite and non-zero where units are set")

    def contains(self, x: float, y: float) -> bool:
        return self.min_x0 <= x <= self.max_x1 and self.min_y0 <= y <= self.max_y1

    def fits(self, width: int, height: int) -> bool:
        return self.max_x1 < width and self.max_y1 < height

    def distance_mm(self, p0: tuple[float, float], p1: tuple[float, float]) -> float:
        """Distance in mm between two (x, y) pixel points of this 2D region calibrated in cm."""
        if self.spatial_format != SPATIAL_2D or (self.physical_units_x, self.physical_units_y) != (CM, CM):
            raise CalibrationError("distances are measured in a 2D region calibrated in cm")
        if not (self.contains(*p0) and self.contains(*p1)):
            raise CalibrationError(f"points {p0} and {p1} are not both inside the region")
        dx = (p1[0] - p0[0]) * self.physical_delta_x
        dy = (p1[1] - p0[1]) * self.physical_delta_y
        return 10.0 * math.hypot(dx, dy)

    def to_dataset(self, doppler_angle: float | None = None) -> Dataset:
        item = Dataset()
        item.RegionSpatialFormat = self.spatial_format
        item.RegionDataType = self.data_type
        item.RegionFlags = self.flags
        item.RegionLocationMinX0 = self.min_x0
        item.RegionLocationMinY0 = self.min_y0
        item.RegionLocationMaxX1 = self.max_x1
        item.RegionLocationMaxY1 = self.max_y1
        if self.reference_pixel is not None:
            item.ReferencePixelX0, item.ReferencePixelY0 = self.reference_pixel
        item.PhysicalUnitsXDirection = self.physical_units_x
        item.PhysicalUnitsYDirection = self.physical_units_y
        if self.reference_pixel is not None:
            item.ReferencePixelPhysicalValueX, item.ReferencePixelPhysicalValueY = self.reference_value
        item.PhysicalDeltaX = float(self.physical_delta_x)
        item.PhysicalDeltaY = float(self.physical_delta_y)
        if doppler_angle is not None and self.data_type in DOPPLER_DATA_TYPES:
            item.DopplerCorrectionAngle = float(doppler_angle)
        return item

    @classmethod
    def from_dataset(cls, item: Dataset) -> UltrasoundRegion:
        reference = None
        if "ReferencePixelX0" in item and "ReferencePixelY0" in item:
            reference = (int(item.ReferencePixelX0), int(item.ReferencePixelY0))
        return cls(
            int(item.RegionLocationMinX0),
            int(item.RegionLocationMinY0),
            int(item.RegionLocationMaxX1),
            int(item.RegionLocationMaxY1),
            float(item.PhysicalDeltaX),
            float(item.PhysicalDeltaY),
            int(item.PhysicalUnitsXDirection),
            int(item.PhysicalUnitsYDirection),
            int(item.RegionSpatialFormat),
            int(item.RegionDataType),
            int(item.RegionFlags),
            reference,
            (
                float(item.get("ReferencePixelPhysicalValueX", 0.0)),
                float(item.get("ReferencePixelPhysicalValueY", 0.0)),
            ),
        )


def regions_from_dataset(ds: Dataset) -> tuple[UltrasoundRegion, ...]:
    """The calibrated regions of an ultrasound image (empty when it has none)."""
    return tuple(UltrasoundRegion.from_dataset(item) for item in ds.get("SequenceOfUltrasoundRegions", []))


def distance_mm(regions: Iterable[UltrasoundRegion], p0: tuple[float, float], p1: tuple[float, float]) -> float:
    """Distance in mm between two pixel points, measured in the region holding the first point."""
    region = next((r for r in regions if r.contains(*p0)), None)
    if region is None:
        raise CalibrationError(f"point {p0} is in no calibrated region")
    return region.distance_mm(p0, p1)
