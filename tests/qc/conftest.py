"""Fixtures for the QC tests: the two synthetic scanners and the media files, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from edge_capture.sources.synthetic import SyntheticSource
from tests.qc.clips import faulty_clip, synthetic, write_mp4

CINE = "color3d_jpeg_baseline.dcm"  # pydicom-data: a real 120-frame 30 fps cine with single repeated frames
PROBE_IN_AIR = "OBXXXX1A.dcm"  # pydicom-data: a Philips convex probe held in air


@pytest.fixture(scope="session")
def thyroid() -> SyntheticSource:
    return synthetic("thyroid")


@pytest.fixture(scope="session")
def carotid() -> SyntheticSource:
    return synthetic("carotid")


@pytest.fixture(scope="session")
def faulty_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mp4(tmp_path_factory.mktemp("media") / "faulty.mp4", faulty_clip())


@pytest.fixture(scope="session")
def cine() -> Path:
    return Path(get_testdata_file(CINE))


@pytest.fixture(scope="session")
def probe_in_air() -> Path:
    return Path(get_testdata_file(PROBE_IN_AIR))
