"""Capture card: no device exists here, so the clear errors are what is tested (no fake device)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_capture.sources.base import SourceError, open_source
from edge_capture.sources.device import DeviceSource, _open_target, device_path


def free_index() -> int:
    return next(i for i in range(10, 64) if not os.path.exists(f"/dev/video{i}"))


def test_missing_device_path_is_a_clear_error() -> None:
    index = free_index()
    with pytest.raises(SourceError) as error:
        open_source(f"device:/dev/video{index}")
    assert error.value.code == "no_device"
    assert f"/dev/video{index}" in error.value.message
    assert "plugged" in error.value.message


def test_missing_device_index_names_its_node() -> None:
    index = free_index()
    with pytest.raises(SourceError) as error:
        open_source(f"device:{index}")
    assert error.value.code == "no_device"
    assert f"/dev/video{index}" in error.value.message


def test_a_node_that_is_not_a_capture_device() -> None:
    with pytest.raises(SourceError) as error:
        DeviceSource("/dev/null")
    assert error.value.code == "no_device"
    assert "/dev/null" in error.value.message


def test_index_and_path_naming() -> None:
    assert device_path(3) == "/dev/video3"
    assert device_path("/dev/v4l/by-id/usb-grabber") == "/dev/v4l/by-id/usb-grabber"
    assert _open_target(2) == 2
    assert _open_target("/dev/video5") == 5
    assert _open_target("/dev/null") == "/dev/null"


def test_by_id_symlink_opens_by_index(tmp_path: Path) -> None:
    link = tmp_path / "usb-Magewell_USB_Capture_HDMI-video-index0"
    link.symlink_to("/dev/video7")
    assert _open_target(str(link)) == 7
