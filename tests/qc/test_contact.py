"""No contact: the probe in air, synthetic and a real Philips frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

from edge_capture.sources.dicom import to_bgr
from qc.contact import count_bands, echo_layer, near_field_bands, near_field_profile, near_field_share, no_contact
from qc.fov import region_fov
from qc.regions import regions_from_dataset
from tests.qc.clips import CLOCK, synthetic


def fov_grey(fault: str | None) -> np.ndarray:
    source = synthetic("thyroid", fault)
    return cv2.cvtColor(source.render(0, CLOCK), cv2.COLOR_BGR2GRAY)[source.fov.slices]


def test_synthetic_probe_in_air_is_no_contact() -> None:
    grey = fov_grey("no_contact")
    assert no_contact(grey)
    assert near_field_share(grey) > 0.9
    assert near_field_bands(grey) >= 4
    assert echo_layer(near_field_profile(grey), grey.shape[0]) > 0.1


@pytest.mark.parametrize("fault", [None, "dark", "black", "saturated"])
def test_other_pictures_are_not(fault: str | None) -> None:
    grey = fov_grey(fault)
    assert not no_contact(grey)


def test_tissue_spreads_echoes_over_depth() -> None:
    assert near_field_share(fov_grey(None)) < 0.5
    assert near_field_share(np.zeros((40, 40), np.uint8)) == 0.0


def test_the_philips_probe_in_air_frame(probe_in_air: Path) -> None:
    ds = pydicom.dcmread(probe_in_air)
    grey = cv2.cvtColor(to_bgr(ds.pixel_array, ds), cv2.COLOR_BGR2GRAY)
    mask = region_fov(grey.shape, regions_from_dataset(ds))
    assert mask is not None
    assert no_contact(grey, mask)


def test_bands_follow_a_curved_probe_face() -> None:
    # bands along arcs, as under a convex array: aligned on the first echo, they still count
    yy, xx = np.mgrid[:200, :300]
    face = 8 + ((xx - 150) / 150.0) ** 2 * 20
    depth = yy - face
    image = np.where((depth >= 0) & (depth < 30), 200 * (np.cos(depth / 30 * 6 * np.pi) > 0.3), 0).astype(np.uint8)
    profile = near_field_profile(image)
    assert profile.size > 0
    assert count_bands(profile) >= 3
    assert no_contact(image)
    assert count_bands(np.zeros(4)) == 0


def test_a_lone_bright_line_is_not_reverberation() -> None:
    image = np.zeros((200, 300), np.uint8)
    image[10:13] = 220  # a skin line under far too little gain: bright, near, thin
    assert near_field_share(image) == 1.0
    assert not no_contact(image)
    image[13:40] = 90  # ringing below it
    assert no_contact(image)
