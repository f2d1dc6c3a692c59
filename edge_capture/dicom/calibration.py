"""US Region Calibration (PS3.3 C.8.5.5) per scanner preset: what makes a viewer's calipers measure in mm.

A screen-grabbed frame carries no geometry, so the edge is told, per scanner preset and capture size, where
the image regions are on the screen and how many centimetres (seconds, cm/s…) one pixel spans. The
configuration is a JSON file mapping each preset name to its regions::

    {"thyroid": {"frame": [1280, 720],
                 "regions": [{"box": [224, 64, 1119, 697],          # min x0, min y0, max x1, max y1 (inclusive)
                              "delta": [0.00632, 0.00632],           # physical units per pixel, x and y
                              "units": ["cm", "cm"],                 # default cm, cm
                              "spatial_format": "2d",                # default 2d
                              "data_type": "tissue",                 # default tissue
                              "flags": 0}]}}                         # default 0

A preset may also map straight to its list of regions; "frame" (the capture size the boxes were measured
on) is optional but recommended: a calibration measured at 1080p is refused on a 720p capture. Names and
the raw DICOM codes are both accepted for units, spatial format and data type. A preset that is not
configured, or does not fit the frame, gets no calibration at all: the module is left out, never guessed.

The synthetic source knows its exact geometry: :func:`for_synthetic` computes its calibration.

Error tree::

    ValueError
    └── CalibrationError(code="invalid_calibration", message): the file or a region is malformed
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

if TYPE_CHECKING:
    from edge_capture.sources.synthetic import SyntheticSource

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


@dataclass(frozen=True)
class PresetCalibration:
    """The regions of one scanner preset, measured on a capture of `frame_size` (width, height) if given."""

    preset: str
    regions: tuple[UltrasoundRegion, ...]
    frame_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not self.regions:
            raise CalibrationError(f"preset {self.preset!r} has no regions")

    def fits(self, width: int, height: int) -> bool:
        """True when this calibration applies to a width×height frame."""
        if self.frame_size is not None and self.frame_size != (width, height):
            return False
        return all(region.fits(width, height) for region in self.regions)

    def region_at(self, x: float, y: float) -> UltrasoundRegion | None:
        """The first (highest-priority) region holding the point, or None."""
        return next((region for region in self.regions if region.contains(x, y)), None)


def to_dataset_sequence(calibration: PresetCalibration, doppler_angle: float | None = None) -> Sequence:
    """Sequence of Ultrasound Regions items; the Doppler angle goes into Doppler regions' correction angle."""
    return Sequence([region.to_dataset(doppler_angle) for region in calibration.regions])


def regions_from_dataset(ds: Dataset) -> tuple[UltrasoundRegion, ...]:
    """The calibrated regions of an ultrasound image (empty when it has none)."""
    return tuple(UltrasoundRegion.from_dataset(item) for item in ds.get("SequenceOfUltrasoundRegions", []))


def distance_mm(regions: Iterable[UltrasoundRegion], p0: tuple[float, float], p1: tuple[float, float]) -> float:
    """Distance in mm between two pixel points, measured in the region holding the first point."""
    region = next((r for r in regions if r.contains(*p0)), None)
    if region is None:
        raise CalibrationError(f"point {p0} is in no calibrated region")
    return region.distance_mm(p0, p1)


def for_synthetic(source: SyntheticSource) -> PresetCalibration:
    """The synthetic scanner's exact calibration: its field of view, mm_per_pixel in both directions."""
    fov = source.fov
    delta_cm = source.mm_per_pixel / 10.0
    region = UltrasoundRegion(
        fov.x, fov.y, fov.right - 1, fov.bottom - 1, delta_cm, delta_cm, reference_pixel=(fov.w // 2, 0)
    )
    return PresetCalibration(source.preset, (region,), (source.width, source.height))


def calibration_for(
    calibrations: Mapping[str, PresetCalibration], preset: str | None, width: int, height: int
) -> PresetCalibration | None:
    """The preset's calibration when it is known and fits the frame; None (no module) otherwise."""
    calibration = calibrations.get(preset) if preset else None
    if calibration is None or not calibration.fits(width, height):
        return None
    return calibration


def _code(value: Any, names: Mapping[str, int], what: str) -> int:
    if isinstance(value, str) and value in names:
        return names[value]
    if isinstance(value, int) and not isinstance(value, bool) and value in names.values():
        return value
    raise CalibrationError(f"unknown {what} {value!r} (one of {', '.join(names)})")


def _pair(value: Any, what: str) -> tuple[Any, Any]:
    if not isinstance(value, list) or len(value) != 2:
        raise CalibrationError(f"{what} must be a list of two values")
    return value[0], value[1]


def _region(data: Any) -> UltrasoundRegion:
    if not isinstance(data, dict):
        raise CalibrationError("a region must be an object")
    unknown = set(data) - {
        "box",
        "delta",
        "units",
        "spatial_format",
        "data_type",
        "flags",
        "reference_pixel",
        "reference_value",
    }
    if unknown:
        raise CalibrationError(f"unknown region field {sorted(unknown)[0]!r}")
    if "box" not in data or "delta" not in data:
        raise CalibrationError("a region needs a box and a delta")
    box = data["box"]
    if not isinstance(box, list) or len(box) != 4:
        raise CalibrationError("box must be [min_x0, min_y0, max_x1, max_y1]")
    delta = _pair(data["delta"], "delta")
    units = _pair(data.get("units", ["cm", "cm"]), "units")
    reference = data.get("reference_pixel")
    return UltrasoundRegion(
        min_x0=box[0],
        min_y0=box[1],
        max_x1=box[2],
        max_y1=box[3],
        physical_delta_x=delta[0],
        physical_delta_y=delta[1],
        physical_units_x=_code(units[0], UNITS, "units"),
        physical_units_y=_code(units[1], UNITS, "units"),
        spatial_format=_code(data.get("spatial_format", "2d"), SPATIAL_FORMATS, "spatial format"),
        data_type=_code(data.get("data_type", "tissue"), DATA_TYPES, "data type"),
        flags=data.get("flags", 0),
        reference_pixel=None if reference is None else _pair(reference, "reference_pixel"),
        reference_value=_pair(data.get("reference_value", [0.0, 0.0]), "reference_value"),
    )


def parse_calibrations(data: Any) -> dict[str, PresetCalibration]:
    """Calibrations from the decoded JSON document (see the module docstring)."""
    if not isinstance(data, dict):
        raise CalibrationError("the calibration file must map preset names to regions")
    result = {}
    for preset, entry in data.items():
        frame = None
        if isinstance(entry, dict):
            frame = entry.get("frame")
            if frame is not None:
                width, height = _pair(frame, f"{preset}: frame")
                if not all(isinstance(v, int) and v > 0 for v in (width, height)):
                    raise CalibrationError(f"{preset}: frame must be [width, height] in pixels")
                frame = (width, height)
            entry = entry.get("regions")
        if not isinstance(entry, list):
            raise CalibrationError(f"{preset}: regions must be a list")
        try:
            regions = tuple(_region(item) for item in entry)
        except CalibrationError as error:
            raise CalibrationError(f"{preset}: {error.message}") from None
        result[preset] = PresetCalibration(preset, regions, frame)
    return result


def load_calibrations(path: str | Path) -> dict[str, PresetCalibration]:
    """Read and validate a calibration file; raises CalibrationError naming the preset and the problem."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise CalibrationError(f"cannot read {path}: {error.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CalibrationError(f"{path} is not JSON: {error}") from None
    return parse_calibrations(data)
