"""Teaching export de-identification: the burned-in banner found and masked, the metadata scrubbed everywhere."""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from edge_capture.sources.screen import FONT, TEXT
from edge_capture.sources.synthetic import SyntheticSource
from qc.fov import Box
from recordings.deidentify import (
    UidMap,
    find_banners,
    mask_frame,
    mask_frames,
    scrub,
    static_mask,
    static_text_boxes,
    still_banners,
    text_boxes,
)

CLOCK = 1_780_000_000.0
NAME, PATIENT_ID = "DOE^JANE", "TLS-004217"


@pytest.fixture(scope="module")
def scanner() -> SyntheticSource:
    return SyntheticSource("thyroid", 1280, 720, 30.0, cycle_seconds=1.0, paced=False, patient=NAME,
                           patient_id=PATIENT_ID)  # fmt: skip


@pytest.fixture(scope="module")
def frames(scanner: SyntheticSource) -> list[np.ndarray]:
    # 3 s of screen: the image moves, the clock ticks, the banner text stays
    return [scanner.render(k * 3, CLOCK + k * 0.3) for k in range(10)]


def rendered(text: str, scale: float, thickness: int) -> np.ndarray:
    """The text as the scanner draws it, grey, cropped to its ink."""
    canvas = np.zeros((80, 40 * len(text)), np.uint8)
    cv2.putText(canvas, text, (5, 50), FONT, scale, TEXT[0], thickness, cv2.LINE_AA)
    x, y, w, h = cv2.boundingRect(canvas)
    return canvas[y : y + h, x : x + w]


def best_match(frame: np.ndarray, template: np.ndarray) -> tuple[float, Box]:
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    scores = cv2.matchTemplate(grey, template, cv2.TM_CCOEFF_NORMED)
    _, score, _, (x, y) = cv2.minMaxLoc(scores)
    return float(score), Box(x, y, template.shape[1], template.shape[0])


def inside(box: Box, region: Box) -> bool:
    return (region.x <= box.x and box.x + box.w <= region.x + region.w and region.y <= box.y
            and box.y + box.h <= region.y + region.h)  # fmt: skip


def test_the_banner_with_the_patient_name_is_found(scanner: SyntheticSource, frames: list[np.ndarray]) -> None:
    (banner,) = find_banners(frames)
    truth = scanner.layout.banner
    assert (banner.x, banner.y, banner.w) == (0, 0, 1280)
    assert truth.h <= banner.h <= scanner.fov.y  # all of the banner, none of the image
    template = rendered(NAME, scanner.layout.font_scale, scanner.layout.thickness)
    score, where = best_match(frames[0], template)
    assert score > 0.9 and inside(where, banner)


def test_masking_blacks_out_the_banner_and_nothing_else(scanner: SyntheticSource, frames: list[np.ndarray]) -> None:
    banners = find_banners(frames)
    masked = mask_frames(frames, banners)
    banner = scanner.layout.banner
    fov = scanner.fov
    for before, after in zip(frames, masked, strict=True):
        assert not after[banner.slices].any()
        assert np.array_equal(before[fov.slices], after[fov.slices])
    template = rendered(NAME, scanner.layout.font_scale, scanner.layout.thickness)
    assert best_match(masked[0], template)[0] < 0.5
    assert frames[0][banner.slices].any()  # the input was not touched


def test_a_name_burned_in_at_the_bottom(frames: list[np.ndarray]) -> None:
    small = [cv2.resize(f, (640, 360), interpolation=cv2.INTER_AREA) for f in frames]
    footer = np.zeros((40, 640, 3), np.uint8)
    cv2.putText(footer, "ZHANG^SAN  88120", (12, 26), FONT, 0.5, TEXT, 1, cv2.LINE_AA)
    tall = [np.vstack([f, footer]) for f in small]
    banners = find_banners(tall)
    assert len(banners) == 2 and banners[1].y + banners[1].h == 400 and banners[1].y >= 352
    score, where = best_match(tall[0], rendered("ZHANG^SAN", 0.5, 1))
    assert score > 0.9 and inside(where, banners[1])
    assert not mask_frames(tall, banners)[3][banners[1].slices].any()


def test_static_text_is_what_never_changes(frames: list[np.ndarray], scanner: SyntheticSource) -> None:
    static = static_mask(frames)
    assert static[scanner.layout.banner.slices].mean() > 0.95
    assert static[scanner.fov.slices].mean() < 0.3
    boxes = static_text_boxes(frames)
    assert any(b.y < scanner.fov.y and b.x < 100 for b in boxes)  # the name
    assert any(b.x < scanner.fov.x and b.y > scanner.fov.y for b in boxes)  # the parameter panel
    assert find_banners([np.zeros((360, 640), np.uint8)] * 3) == []
    with pytest.raises(ValueError):
        static_text_boxes(frames[:1])


def test_a_single_frame_banner_is_the_text_above_the_field_of_view(
    scanner: SyntheticSource, frames: list[np.ndarray]
) -> None:
    frame = frames[0]
    fov = np.zeros(frame.shape[:2], bool)
    fov[scanner.fov.slices] = True
    template = rendered(NAME, scanner.layout.font_scale, scanner.layout.thickness)
    for known in (fov, None):  # from the ultrasound regions, or estimated from the one frame
        (banner,) = still_banners(frame, known)
        assert (banner.x, banner.y, banner.w) == (0, 0, 1280)
        assert scanner.layout.banner.h <= banner.h <= scanner.fov.y
        assert inside(best_match(frame, template)[1], banner)
        masked = mask_frame(frame, [banner])
        assert best_match(masked, template)[0] < 0.5
        assert np.array_equal(masked[scanner.fov.slices], frame[scanner.fov.slices])
    # the parameter panel is text too, beside the image: listed, not a banner
    assert any(b.x < scanner.fov.x and b.y > scanner.fov.y for b in text_boxes(frame, fov))
    assert still_banners(np.zeros((360, 640, 3), np.uint8)) == []


def test_a_single_frame_name_burned_in_at_the_bottom(frames: list[np.ndarray]) -> None:
    small = cv2.resize(frames[0], (640, 360), interpolation=cv2.INTER_AREA)
    footer = np.zeros((40, 640, 3), np.uint8)
    cv2.putText(footer, "ZHANG^SAN  88120", (12, 26), FONT, 0.5, TEXT, 1, cv2.LINE_AA)
    tall = np.vstack([small, footer])
    banners = still_banners(tall)
    assert len(banners) == 2 and banners[1].y + banners[1].h == 400 and banners[1].y >= 352
    assert inside(best_match(tall, rendered("ZHANG^SAN", 0.5, 1))[1], banners[1])


def test_a_real_scanner_still_loses_its_text_bands_and_keeps_its_image() -> None:
    ds = pydicom.dcmread(str(get_testdata_file("US1_UNCR.dcm")))  # GE: site and patient lines above, a label below
    frame = np.ascontiguousarray(ds.pixel_array[..., ::-1])
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    lit_rows = np.flatnonzero((grey > 20).mean(axis=1) > 0.5)  # the image: rows 108 to 336
    top, bottom = still_banners(frame)  # no ultrasound regions: the field of view is estimated
    assert (top.y, bottom.y + bottom.h) == (0, 480)
    assert 101 < top.h <= lit_rows[0]  # past "IM#2 … 78DR78" (rows 90-101), the lowest line above the image
    assert lit_rows[-1] < bottom.y <= 360  # before "LYMPH NODE" (from row 361)


# ---- metadata --------------------------------------------------------------------------------------------------

SECRET = ("Citizen", "Janka", "PID-778899")


def identified(study_uid: str = "1.2.826.0.1.3680043.8.498.1") -> Dataset:
    ds = pydicom.dcmread(get_testdata_file("US1_UNCR.dcm"))
    ds.PatientName = "Citizen^Janka^Maria"
    ds.PatientID = "PID-778899"
    ds.PatientBirthDate = "19700102"
    ds.PatientSex = "F"
    ds.AccessionNumber = "ACC1234"
    ds.InstitutionName = "North Community Health Centre"
    ds.ReferringPhysicianName = "Who^Doctor"
    ds.OperatorsName = "Sono^Grapher"
    ds.StudyDate, ds.StudyTime, ds.AcquisitionDateTime = "20190124", "113933", "20190124114254.123"
    ds.StudyInstanceUID = study_uid
    ds.ImageComments = "follow-up for Citizen, see PID-778899"
    other = Dataset()
    other.PatientID = "PID-778899"
    other.IssuerOfPatientID = "NORTH"
    ds.OtherPatientIDsSequence = Sequence([other])
    step = Dataset()
    step.ScheduledPerformingPhysicianName = "Citizen^Janka"  # a PN inside a sequence
    step.RequestedProcedureDescription = "thyroid for PID-778899"
    step.StudyInstanceUID = study_uid
    ds.ProcedureCodeSequence = Sequence([step])
    ds.private_block(0x0011, "ACME 1.0", create=True).add_new(0x01, "LO", "Citizen Janka")
    ds.BurnedInAnnotation = "YES"
    return ds


def texts(ds: Dataset) -> Iterator[str]:
    """Every value of every element, sequences included, file meta too, as text."""
    datasets = [ds, *([ds.file_meta] if hasattr(ds, "file_meta") else [])]
    for d in datasets:
        for element in d.iterall():
            if element.VR not in ("SQ", "OB", "OW", "OF", "UN"):
                yield str(element.value)


def test_no_patient_name_or_id_anywhere() -> None:
    original = identified()
    kept = copy.deepcopy(original)
    clean = scrub(original, UidMap(), patient_name="TEACHING^CASE 12", patient_id="CASE-12", date_shift_days=10)
    found = [text for text in texts(clean) if any(s.casefold() in text.casefold() for s in SECRET)]
    assert found == []
    assert (str(clean.PatientName), clean.PatientID) == ("TEACHING^CASE 12", "CASE-12")
    assert clean.PatientBirthDate == "" and clean.AccessionNumber == "" and clean.ReferringPhysicianName == ""
    assert "InstitutionName" not in clean and "OperatorsName" not in clean and "OtherPatientIDsSequence" not in clean
    assert not any(element.tag.is_private for element in clean.iterall())
    assert original == kept  # the input is left as it was


def test_dates_shifted_or_removed() -> None:
    shifted = scrub(identified(), UidMap(), date_shift_days=10)
    assert (shifted.StudyDate, shifted.StudyTime) == ("20190203", "113933")
    assert shifted.AcquisitionDateTime == "20190203114254.123"
    assert shifted.LongitudinalTemporalInformationModified == "MODIFIED"
    removed = scrub(identified(), UidMap())
    assert (removed.StudyDate, removed.StudyTime, removed.AcquisitionDateTime) == ("", "", "")
    assert removed.LongitudinalTemporalInformationModified == "REMOVED"


def test_uids_are_remapped_consistently() -> None:
    uids = UidMap()
    a, b = identified(), identified()
    b.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.99"
    clean_a, clean_b = scrub(a, uids), scrub(b, uids)
    assert clean_a.StudyInstanceUID == clean_b.StudyInstanceUID != a.StudyInstanceUID
    assert clean_a.ProcedureCodeSequence[0].StudyInstanceUID == clean_a.StudyInstanceUID
    assert clean_a.SOPInstanceUID != clean_b.SOPInstanceUID
    assert clean_a.SOPClassUID == a.SOPClassUID  # a standard UID stays
    assert clean_a.file_meta.MediaStorageSOPInstanceUID == clean_a.SOPInstanceUID
    assert clean_a.file_meta.TransferSyntaxUID == a.file_meta.TransferSyntaxUID


def test_the_method_is_recorded_and_burned_in_annotation_only_cleared_after_masking() -> None:
    plain = scrub(identified(), UidMap())
    assert plain.PatientIdentityRemoved == "YES"
    assert plain.BurnedInAnnotation == "YES"
    assert [c.CodeValue for c in plain.DeidentificationMethodCodeSequence] == ["113100"]
    masked = scrub(identified(), UidMap(), pixels_masked=True, date_shift_days=-3)
    assert masked.BurnedInAnnotation == "NO"
    assert [c.CodeValue for c in masked.DeidentificationMethodCodeSequence] == ["113100", "113107", "113101"]
    assert all(len(v) <= 64 for v in masked.DeidentificationMethod)
    buffer = io.BytesIO()
    masked.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    reread = pydicom.dcmread(buffer)
    assert reread.PatientIdentityRemoved == "YES" and reread.pixel_array.shape == (480, 640, 3)


def test_a_chinese_name_run_together_is_found_in_free_text() -> None:
    ds = identified()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "张^三"
    ds.ImageComments = "张三 复查"  # removed by name
    ds.ProcedureCodeSequence[0].RequestedProcedureDescription = "甲状腺 张三"
    clean = scrub(ds, UidMap())
    assert not any("张三" in text for text in texts(clean))
