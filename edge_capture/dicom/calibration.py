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

The region model itself (UltrasoundRegion, read from and written to a dataset) is qc.regions: QC and the
teaching export read it back from any image.

Errors: qc.regions.CalibrationError(code="invalid_calibration") for a malformed file or region.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom.sequence import Sequence

from qc.regions import DATA_TYPES, SPATIAL_FORMATS, UNITS, CalibrationError, UltrasoundRegion

if TYPE_CHECKING:
    from edge_capture.sources.synthetic import SyntheticSource


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
