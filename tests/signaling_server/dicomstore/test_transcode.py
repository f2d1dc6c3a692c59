"""Transcoding to Explicit VR Little Endian: same object, same pixels, new encoding."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit

from signaling_server import errors
from signaling_server.dicomstore.parsing import parse_instance, quiet_pydicom
from signaling_server.dicomstore.transcode import can_convert, transcode

from .objects import read, real_file


def test_jpeg_decodes_to_the_same_object() -> None:
    raw = real_file("SC_rgb_jpeg_dcmtk.dcm")  # JPEG Baseline, YBR_FULL_422 (the cine's codec, smaller)
    out = transcode(raw, ExplicitVRLittleEndian)
    with quiet_pydicom():
        before, after = read(raw), read(out)
        assert before.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
        assert after.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert after.SOPInstanceUID == before.SOPInstanceUID and after.PatientName == before.PatientName
        assert after.PhotometricInterpretation == "RGB"
        assert np.array_equal(after.pixel_array, before.pixel_array)
    assert parse_instance(out).sop_uid == before.SOPInstanceUID


def test_implicit_vr_becomes_explicit_and_explicit_is_untouched() -> None:
    implicit = real_file("gdcm-US-ALOKA-16.dcm")
    out = transcode(implicit, ExplicitVRLittleEndian)
    with quiet_pydicom():
        assert np.array_equal(read(out).pixel_array, read(implicit).pixel_array)
    explicit = real_file("US1_UNCR.dcm")
    assert transcode(explicit, ExplicitVRLittleEndian) is explicit


def test_only_explicit_little_endian_is_offered() -> None:
    assert can_convert(JPEGBaseline8Bit, ExplicitVRLittleEndian)
    assert can_convert(JPEGBaseline8Bit, JPEGBaseline8Bit)
    assert not can_convert(ExplicitVRLittleEndian, JPEGBaseline8Bit)
    with pytest.raises(errors.NotAcceptable):
        transcode(real_file("US1_UNCR.dcm"), JPEGBaseline8Bit)
