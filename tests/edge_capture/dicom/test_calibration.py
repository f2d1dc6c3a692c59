"""US Region Calibration: the synthetic ground truth in mm, a validated configuration, real files' regions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pydicom
import pytest

from edge_capture.dicom.calibration import (
    PresetCalibration,
    calibration_for,
    for_synthetic,
    load_calibrations,
    parse_calibrations,
    to_dataset_sequence,
)
from edge_capture.sources.synthetic import SyntheticSource
from qc.regions import CalibrationError, UltrasoundRegion, distance_mm, regions_from_dataset


def test_synthetic_calibration_is_its_field_of_view(thyroid: SyntheticSource) -> None:
    calibration = for_synthetic(thyroid)
    (region,) = calibration.regions
    fov = thyroid.fov
    assert (region.min_x0, region.min_y0, region.max_x1, region.max_y1) == (fov.x, fov.y, fov.right - 1, fov.bottom - 1)
    assert region.physical_delta_x == region.physical_delta_y == pytest.approx(thyroid.mm_per_pixel / 10)
    assert calibration.frame_size == (thyroid.width, thyroid.height)
    assert calibration.fits(thyroid.width, thyroid.height)
    assert not calibration.fits(thyroid.width * 2, thyroid.height * 2)


@pytest.mark.parametrize("preset", ["thyroid", "carotid"])
def test_distance_between_known_points_is_the_ground_truth(preset: str, request: pytest.FixtureRequest) -> None:
    source: SyntheticSource = request.getfixturevalue(preset)
    calibration = for_synthetic(source)
    # two points given in mm from the field of view's corner; the source maps them to pixels
    p0, p1 = source.to_pixels(4.0, 6.0), source.to_pixels(22.0, 30.0)
    truth = math.hypot(22.0 - 4.0, 30.0 - 6.0)
    assert distance_mm(calibration.regions, p0, p1) == pytest.approx(truth, abs=source.mm_per_pixel)
    # on whole pixels, as a viewer's caliper lands: within one pixel
    q0, q1 = ((float(round(p[0])), float(round(p[1]))) for p in (p0, p1))
    assert distance_mm(calibration.regions, q0, q1) == pytest.approx(truth, abs=source.mm_per_pixel)


def test_thyroid_nodule_diameter_in_mm(thyroid: SyntheticSource) -> None:
    centre = thyroid.nodule_centre_px
    assert centre is not None
    radius = thyroid.nodule_radius_px
    left, right = (centre[0] - radius, centre[1]), (centre[0] + radius, centre[1])
    measured = distance_mm(for_synthetic(thyroid).regions, left, right)
    expected = 2 * thyroid.scene.landmarks.nodule_radius_mm
    assert measured == pytest.approx(expected, abs=thyroid.mm_per_pixel)


def test_points_outside_the_region_are_refused(thyroid: SyntheticSource) -> None:
    regions = for_synthetic(thyroid).regions
    with pytest.raises(CalibrationError, match="in no calibrated region"):
        distance_mm(regions, (0, 0), (10, 10))
    inside = thyroid.to_pixels(1.0, 1.0)
    with pytest.raises(CalibrationError, match="not both inside"):
        regions[0].distance_mm(inside, (0, 0))






def test_dataset_sequence_round_trips_and_puts_the_doppler_angle_in_doppler_regions() -> None:
    tissue = UltrasoundRegion(10, 20, 629, 299, 0.01, 0.01, reference_pixel=(310, 0))
    spectral = UltrasoundRegion(10, 300, 629, 470, 0.02, -2.5, 4, 7, 3, 3, flags=2, reference_pixel=(0, 80))
    calibration = PresetCalibration("carotid-pw", (tissue, spectral))
    items = to_dataset_sequence(calibration, doppler_angle=60.0)
    assert "DopplerCorrectionAngle" not in items[0]
    assert items[1].DopplerCorrectionAngle == 60.0
    holder = pydicom.Dataset()
    holder.SequenceOfUltrasoundRegions = items
    assert regions_from_dataset(holder) == (tissue, spectral)
    assert calibration.region_at(100, 400) == spectral
    assert calibration.region_at(0, 0) is None


CONFIG = {
    "thyroid": {
        "frame": [640, 480],
        "regions": [{"box": [109, 39, 556, 462], "delta": [0.0094, 0.0094]}],
    },
    "carotid-pw": [
        {"box": [10, 20, 629, 299], "delta": [0.01, 0.01], "units": ["cm", "cm"], "reference_pixel": [310, 0]},
        {
            "box": [10, 300, 629, 470],
            "delta": [0.02, -2.5],
            "units": ["s", "cm/s"],
            "spatial_format": "spectral",
            "data_type": 3,
            "flags": 2,
            "reference_pixel": [0, 80],
        },
    ],
}


def test_load_calibrations_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(CONFIG), encoding="utf-8")
    calibrations = load_calibrations(path)
    assert set(calibrations) == {"thyroid", "carotid-pw"}
    thyroid = calibrations["thyroid"]
    assert thyroid.frame_size == (640, 480)
    assert thyroid.regions[0] == UltrasoundRegion(109, 39, 556, 462, 0.0094, 0.0094)
    spectral = calibrations["carotid-pw"].regions[1]
    assert (spectral.physical_units_x, spectral.physical_units_y, spectral.spatial_format) == (4, 7, 3)
    assert calibration_for(calibrations, "thyroid", 640, 480) is thyroid
    assert calibration_for(calibrations, "thyroid", 1280, 720) is None  # measured on another capture size
    assert calibration_for(calibrations, "breast", 640, 480) is None  # unknown preset: never guessed
    assert calibration_for(calibrations, None, 640, 480) is None
    assert calibration_for(calibrations, "carotid-pw", 320, 240) is None  # boxes outside the frame


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "the calibration file must map preset names to regions"),
        ({"t": {"regions": "x"}}, "t: regions must be a list"),
        ({"t": []}, "preset 't' has no regions"),
        ({"t": [{"box": [1, 2, 3, 4]}]}, "t: a region needs a box and a delta"),
        ({"t": [{"box": [1, 2, 3], "delta": [1, 1]}]}, "t: box must be [min_x0, min_y0, max_x1, max_y1]"),
        ({"t": [{"box": [5, 2, 3, 4], "delta": [1, 1]}]}, "t: region box (5, 2, 3, 4) has its corners swapped"),
        ({"t": [{"box": [1.5, 2, 3, 4], "delta": [1, 1]}]}, "t: region box (1.5, 2, 3, 4) must be whole pixels"),
        ({"t": [{"box": [1, 2, 3, 4], "delta": [0, 1]}]}, "t: physical delta 0 must be finite and non-zero"),
        ({"t": [{"box": [1, 2, 3, 4], "delta": [1, 1], "units": ["mm", "cm"]}]}, "t: unknown units 'mm'"),
        ({"t": [{"box": [1, 2, 3, 4], "delta": [1, 1], "data_type": 99}]}, "t: unknown data type 99"),
        ({"t": [{"box": [1, 2, 3, 4], "delta": [1, 1], "flags": 64}]}, "t: region flags must be 0..31"),
        ({"t": [{"box": [1, 2, 3, 4], "delta": [1, 1], "depth": 4}]}, "t: unknown region field 'depth'"),
        ({"t": {"frame": [640], "regions": []}}, "t: frame must be a list of two values"),
    ],
)
def test_malformed_calibrations_are_refused_clearly(document: object, message: str) -> None:
    with pytest.raises(CalibrationError) as caught:
        parse_calibrations(document)
    assert caught.value.code == "invalid_calibration"
    assert caught.value.message.startswith(message)


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="cannot read"):
        load_calibrations(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(CalibrationError, match="is not JSON"):
        load_calibrations(broken)
