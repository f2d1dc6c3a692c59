"""parse_instance() on real and broken objects: what the index gets, and what is refused with which code."""

from __future__ import annotations

import pytest

from signaling_server import errors
from signaling_server.dicomstore.parsing import parse_instance

from .objects import image, real_file


def test_real_files_give_the_index_its_attributes() -> None:
    cine = parse_instance(real_file("color3d_jpeg_baseline.dcm"))
    assert (cine.modality, cine.frames, cine.rows, cine.columns) == ("US", 120, 480, 640)
    assert cine.transfer_syntax_uid == "1.2.840.10008.1.2.4.50"
    assert cine.sop_class_uid == "1.2.840.10008.5.1.4.1.1.3.1"
    ct = parse_instance(real_file("CT_small.dcm"))
    assert (ct.modality, ct.patient.local_id, ct.study_date) == ("CT", "1CT1", "20040119")
    palette = parse_instance(real_file("gdcm-US-ALOKA-16.dcm"))  # Implicit VR Little Endian
    assert palette.transfer_syntax_uid == "1.2.840.10008.1.2" and len(palette.sha256) == 64


def test_a_chinese_name_and_the_shared_ids() -> None:
    parsed = parse_instance(image(name="Zhang^San=张^三", other_ids=(("CN-RESIDENT-ID", "1101"), ("X", "9"))))
    assert parsed.patient.name == "Zhang^San=张^三"
    assert parsed.patient.other_ids == (("CN-RESIDENT-ID", "1101"), ("X", "9"))
    assert parsed.patient.regional_id("CN-RESIDENT-ID") == "1101"


@pytest.mark.parametrize(
    ("raw", "error", "words"),
    [
        (b"", errors.InvalidDicom, "not a DICOM"),
        (b"GIF89a" + bytes(500), errors.InvalidDicom, "not a DICOM"),
        (real_file("US1_UNCR.dcm")[:500_000], errors.InvalidDicom, "truncated"),
        (real_file("color3d_jpeg_baseline.dcm")[:3_000_000], errors.InvalidDicom, "truncated"),
        (real_file("CT_small.dcm")[:39_205], errors.InvalidDicom, "truncated"),
        (real_file("CT_small.dcm") + b"junk", errors.InvalidDicom, "trailing"),
        (image(without=("SOPInstanceUID",)), errors.MissingAttribute, "SOPInstanceUID"),
        (image(without=("StudyInstanceUID",)), errors.MissingAttribute, "StudyInstanceUID"),
        (image(without=("SeriesInstanceUID",)), errors.MissingAttribute, "SeriesInstanceUID"),
        (image(without=("SOPClassUID",)), errors.MissingAttribute, "SOPClassUID"),
        (image(without=("PixelData",)), errors.InvalidDicom, "without pixel data"),
    ],
)
def test_refusals(raw: bytes, error: type[errors.TeleusError], words: str) -> None:
    with pytest.raises(error, match=words) as caught:
        parse_instance(raw)
    assert caught.value.code == error.code


def test_an_invalid_uid_is_refused() -> None:
    with pytest.warns(UserWarning, match="Invalid value for VR UI"):
        raw = image(sop_uid="1.2.3.abc")
    with pytest.raises(errors.InvalidDicom, match="not a valid UID"):
        parse_instance(raw)


def test_truncation_is_seen_wherever_the_cut_falls_in_an_image() -> None:
    raw = real_file("US1_UNCR.dcm")
    for cut in range(133, len(raw) - 1, 7919):
        with pytest.raises(errors.InvalidDicom):
            parse_instance(raw[:cut])
