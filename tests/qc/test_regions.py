"""qc.regions: the US region model (PS3.3 C.8.5.5) as plain records, measured and read back from real files."""

from __future__ import annotations

import pydicom
import pytest

from qc.regions import CalibrationError, UltrasoundRegion, distance_mm, regions_from_dataset
from tests.edge_capture.dicom.conftest import pydicom_file


def test_a_spectral_region_does_not_measure_distance() -> None:
    spectral = UltrasoundRegion(0, 300, 639, 479, 0.01, -0.5, 4, 7, 3, 3)
    with pytest.raises(CalibrationError, match="2D region calibrated in cm"):
        spectral.distance_mm((10, 310), (20, 320))


def test_regions_of_real_scanner_files_read_back_and_measure() -> None:
    aloka = pydicom.dcmread(pydicom_file("gdcm-US-ALOKA-16.dcm"))
    regions = regions_from_dataset(aloka)
    assert len(regions) == 3 and regions[0].spatial_format == 1 and regions[2].data_type == 13  # grey bar
    # 100 pixels down in the left B-mode image: 100 × 0.0383 cm
    assert distance_mm(regions, (100, 100), (100, 200)) == pytest.approx(100 * 0.3826530650258064)
    # the same in the right image is measured with the right image's own region
    assert distance_mm(regions, (400, 100), (400, 200)) == pytest.approx(100 * 0.3826530650258064)
    ob = pydicom.dcmread(pydicom_file("OBXXXX1A.dcm"))
    assert [r.data_type for r in regions_from_dataset(ob)] == [1, 10]


def test_a_region_round_trips_through_its_dataset_item() -> None:
    region = UltrasoundRegion(224, 64, 1119, 697, 0.00632, 0.00632, flags=1, reference_pixel=(447, 0))
    assert UltrasoundRegion.from_dataset(region.to_dataset()) == region
    # 100 pixels straight down: 100 × 0.0632 mm
    assert region.distance_mm((500, 100), (500, 200)) == pytest.approx(6.32)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"min_x0": 10, "max_x1": 5}, "corners swapped"),
        ({"min_x0": -1}, "whole pixels >= 0"),
        ({"spatial_format": 9}, "unknown spatial format"),
        ({"physical_delta_x": 0.0}, "finite and non-zero"),
        ({"flags": 64}, "region flags"),
    ],
)
def test_a_malformed_region_is_refused_with_its_code(fields: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"min_x0": 0, "min_y0": 0, "max_x1": 99, "max_y1": 99, "physical_delta_x": 0.01,
                                 "physical_delta_y": 0.01} | fields  # fmt: skip
    with pytest.raises(CalibrationError, match=message) as refused:
        UltrasoundRegion(**values)  # type: ignore[arg-type]
    assert refused.value.code == "invalid_calibration"
