"""Ultrasound Image and Ultrasound Multi-frame Image: valid per dciodvfy, lossless stills, honest lossy clips."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from pydicom.pixels import pixel_array

from edge_capture.dicom.calibration import PresetCalibration, for_synthetic
from edge_capture.dicom.ultrasound import (
    DicomBuildError,
    LossyHistory,
    build_clip,
    build_clip_async,
    build_still,
    build_still_async,
    is_grey,
    series_instance_uid,
)
from edge_capture.frames import SourceFrame
from edge_capture.sources.synthetic import SyntheticSource
from qc.labels import CaptureLabels
from qc.regions import UltrasoundRegion, distance_mm, regions_from_dataset
from tests.edge_capture.dicom.conftest import context, real_us_frames, save_and_validate, synthetic_frames

THYROID = CaptureLabels(structure="thyroid right lobe", plane="transverse")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return float(10 * np.log10(255**2 / error))


def test_thyroid_still_is_lossless_uncalibrated_without_laterality(thyroid: SyntheticSource, tmp_path: Path) -> None:
    (frame,) = synthetic_frames(thyroid, 1)
    ds = save_and_validate(build_still(frame, context("thyroid"), THYROID), tmp_path / "still.dcm")
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.6.1"
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.SpecificCharacterSet == "ISO_IR 192" and ds.PatientName == "张^三"
    assert ds.ReferringPhysicianName == "王^医生"
    assert ds.BodyPartExamined == "THYROID" and "Laterality" not in ds
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "THYROID", "0001"]
    assert ds.LossyImageCompression == "00" and ds.BurnedInAnnotation == "YES"
    # the synthetic screen has an amber focus marker: colour, but no ultrasound colour data
    assert ds.PhotometricInterpretation == "RGB" and ds.UltrasoundColorDataPresent == 0
    assert np.array_equal(ds.pixel_array, frame.image[..., ::-1])
    assert "SequenceOfUltrasoundRegions" not in ds
    assert ds.PrimaryAnatomicStructureSequence[0].CodeValue == "29565003"  # right lobe of thyroid
    assert ds.ViewCodeSequence[0].CodeMeaning == "Transverse"
    assert ds.ImageComments == "thyroid right lobe, transverse, B-mode"


def test_content_time_is_the_frame_capture_time(thyroid: SyntheticSource) -> None:
    (frame,) = synthetic_frames(thyroid, 1, start_ns=1_780_000_000_123_456_000)
    ds = build_still(frame, context("thyroid"), THYROID)
    when = time.localtime(1_780_000_000)
    assert ds.ContentDate == time.strftime("%Y%m%d", when)
    assert ds.ContentTime == time.strftime("%H%M%S", when) + ".123456"
    assert ds.AcquisitionDateTime.startswith(ds.ContentDate + ds.ContentTime)


def test_grey_still_is_monochrome2(carotid: SyntheticSource, tmp_path: Path) -> None:
    (frame,) = synthetic_frames(carotid, 1, grey=True)
    assert is_grey(frame.image)
    labels = CaptureLabels(side="L", structure="CCA", plane="longitudinal")
    ds = save_and_validate(build_still(frame, context("carotid"), labels), tmp_path / "grey.dcm")
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.SamplesPerPixel == 1
    assert ds.UltrasoundColorDataPresent == 0
    assert np.array_equal(ds.pixel_array, frame.image[..., 0])


@pytest.mark.parametrize("side", ["R", "L"])
def test_carotid_still_carries_its_side_and_calibration(carotid: SyntheticSource, side: str, tmp_path: Path) -> None:
    (frame,) = synthetic_frames(carotid, 1)
    labels = CaptureLabels(side=side, structure="bulb", plane="longitudinal")
    ds = build_still(frame, context("carotid"), labels, calibration=for_synthetic(carotid), instance_number=7)
    ds = save_and_validate(ds, tmp_path / f"carotid-{side}.dcm")
    assert ds.BodyPartExamined == "CAROTID" and ds.Laterality == side
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "VASCULAR", "0001"]
    assert ds.SeriesInstanceUID == series_instance_uid(context("carotid"), "still", side)
    assert ds.SeriesNumber == {"R": 11, "L": 21}[side] and ds.InstanceNumber == 7
    # calipers work on the stored file: the ground truth in mm, within one pixel
    regions = regions_from_dataset(ds)
    p0, p1 = carotid.to_pixels(3.0, 5.0), carotid.to_pixels(27.0, 12.0)
    assert distance_mm(regions, p0, p1) == pytest.approx(np.hypot(24.0, 7.0), abs=carotid.mm_per_pixel)


def test_the_two_sides_go_to_two_series() -> None:
    study = context("carotid")
    assert series_instance_uid(study, "still", "R") != series_instance_uid(study, "still", "L")
    assert series_instance_uid(study, "still", "R") == series_instance_uid(context("carotid"), "still", "R")


def test_a_carotid_capture_needs_a_side(carotid: SyntheticSource) -> None:
    (frame,) = synthetic_frames(carotid, 1)
    with pytest.raises(DicomBuildError) as caught:
        build_still(frame, context("carotid"), CaptureLabels(structure="CCA"))
    assert caught.value.code == "laterality_required"


def test_calibration_for_another_frame_size_is_left_out(thyroid: SyntheticSource) -> None:
    (frame,) = synthetic_frames(thyroid, 1)
    wrong = PresetCalibration("thyroid", (UltrasoundRegion(0, 0, 10, 10, 0.01, 0.01),), (1920, 1080))
    assert "SequenceOfUltrasoundRegions" not in build_still(frame, context(), THYROID, calibration=wrong)


def test_real_power_doppler_still(tmp_path: Path) -> None:
    (frame,) = real_us_frames("US1_UNCR.dcm")  # GE small parts, power Doppler, 640×480 RGB
    labels = CaptureLabels(structure="thyroid left lobe", plane="longitudinal", mode="power_doppler")
    ds = save_and_validate(build_still(frame, context("thyroid"), labels), tmp_path / "us1.dcm")
    assert ds.PhotometricInterpretation == "RGB" and ds.UltrasoundColorDataPresent == 1
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "THYROID", "0101"]
    assert np.array_equal(ds.pixel_array, frame.image[..., ::-1])


def test_a_lossy_source_is_never_reported_lossless(tmp_path: Path) -> None:
    (frame,) = real_us_frames("US1_UNCR.dcm")
    card = LossyHistory("ISO_14496_10")  # an H.264 capture card, ratio unknown
    ds = save_and_validate(build_still(frame, context(), THYROID, source_lossy=card), tmp_path / "h264.dcm")
    assert ds.LossyImageCompression == "01" and ds.LossyImageCompressionMethod == "ISO_14496_10"
    assert "LossyImageCompressionRatio" not in ds
    assert ds.ImageType[0] == "DERIVED"


def test_synthetic_clip_is_jpeg_with_frame_time_from_the_capture_clock(
    carotid: SyntheticSource, tmp_path: Path
) -> None:
    frames = synthetic_frames(carotid, 12, step_ns=40_000_000)  # a 25 fps source
    labels = CaptureLabels(side="R", structure="ICA", plane="longitudinal", mode="colour_doppler")
    ds = build_clip(frames, context("carotid"), labels, calibration=for_synthetic(carotid))
    ds = save_and_validate(ds, tmp_path / "clip.dcm")
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.3.1"
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    assert ds.NumberOfFrames == 12 and ds.FrameTime == 40.0 and ds.CineRate == 25
    assert ds.FrameIncrementPointer == 0x00181063
    assert ds.PhotometricInterpretation == "YBR_FULL_422"
    assert list(ds.ImageType) == ["DERIVED", "PRIMARY", "VASCULAR", "0011"]
    assert ds.LossyImageCompression == "01" and ds.LossyImageCompressionMethod == "ISO_10918_1"
    assert float(ds.LossyImageCompressionRatio) > 5
    assert ds.Laterality == "R" and "SequenceOfUltrasoundRegions" in ds
    decoded = pixel_array(ds, as_rgb=True)
    assert decoded.shape == (12, carotid.height, carotid.width, 3)
    for k in (0, 11):
        assert psnr(decoded[k], frames[k].image[..., ::-1]) > 35


def test_frame_time_is_the_mean_of_uneven_intervals(thyroid: SyntheticSource) -> None:
    frames = synthetic_frames(thyroid, 3)
    times = [1_000_000_000, 1_030_000_000, 1_070_000_000]
    frames = [SourceFrame(f.index, f.capture_time_ns, t, f.image) for f, t in zip(frames, times, strict=True)]
    assert build_clip(frames, context(), THYROID).FrameTime == 35.0
    backwards = [SourceFrame(f.index, f.capture_time_ns, -f.index, f.image) for f in frames]
    with pytest.raises(DicomBuildError, match="capture order"):
        build_clip(backwards, context(), THYROID)


def test_grey_clip_is_single_component(carotid: SyntheticSource, tmp_path: Path) -> None:
    frames = synthetic_frames(carotid, 4, grey=True)
    ds = save_and_validate(build_clip(frames, context("carotid"), CaptureLabels(side="L")), tmp_path / "grey.dcm")
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.SamplesPerPixel == 1
    assert psnr(ds.pixel_array[2], frames[2].image[..., 0]) > 35


def test_real_lossy_cine_keeps_its_history(tmp_path: Path) -> None:
    frames = real_us_frames("color3d_jpeg_baseline.dcm", 10)  # a 30 fps JPEG cine, ratio 19
    source = LossyHistory("ISO_10918_1", 19.0)
    ds = build_clip(frames, context(), CaptureLabels(mode="colour_doppler"), source_lossy=source)
    ds = save_and_validate(ds, tmp_path / "cine.dcm")
    assert list(ds.LossyImageCompressionMethod) == ["ISO_10918_1", "ISO_10918_1"]
    assert float(ds.LossyImageCompressionRatio[0]) == 19.0 and float(ds.LossyImageCompressionRatio[1]) > 1


def test_a_clip_needs_two_frames_of_one_size(thyroid: SyntheticSource) -> None:
    with pytest.raises(DicomBuildError) as caught:
        build_clip(synthetic_frames(thyroid, 1), context(), THYROID)
    assert caught.value.code == "bad_frames"
    (frame,) = synthetic_frames(thyroid, 1)
    smaller = SourceFrame(1, frame.capture_time_ns + 1, frame.monotonic_ns + 1, np.zeros((240, 320, 3), np.uint8))
    with pytest.raises(DicomBuildError, match="same size"):
        build_clip([frame, smaller], context(), THYROID)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"exam_type": "breast"}, "exam_type must be one of thyroid, carotid"),
        ({"study_instance_uid": "not-a-uid"}, "study_instance_uid is not a valid UID"),
        ({"study_date": "2026-03-01"}, "study_date must be YYYYMMDD"),
        ({"patient_birth_date": "1970"}, "patient_birth_date must be YYYYMMDD or empty"),
        ({"patient_sex": "X"}, "patient_sex must be M, F, O or empty"),
        ({"device_name": "a-very-long-station-name"}, "device_name must be at most 16 characters"),
    ],
)
def test_study_context_is_validated(change: dict[str, str], message: str) -> None:
    with pytest.raises(DicomBuildError) as caught:
        context(**change)
    assert caught.value.code == "invalid_study_context"
    assert caught.value.message.startswith(message)


async def test_async_builders_keep_the_event_loop_responsive(carotid: SyntheticSource) -> None:
    frames = synthetic_frames(carotid, 30)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    labels = CaptureLabels(side="R")
    clip = await build_clip_async(frames, context("carotid"), labels, duty_cycle=0.5)
    during_clip = ticks
    still = await build_still_async(frames[0], context("carotid"), labels)
    ticking.cancel()
    assert clip.NumberOfFrames == 30 and still.SOPClassUID == "1.2.840.10008.5.1.4.1.1.6.1"
    # The loop went on while the encoder worked (a builder on the loop's thread would have let it tick not once).
    # How long each tick waited on a busy machine is not this test's business.
    assert during_clip >= 2


def test_doppler_angle_goes_to_the_spectral_region(tmp_path: Path) -> None:
    (frame,) = real_us_frames("US1_UNCR.dcm")
    tissue = UltrasoundRegion(10, 20, 629, 299, 0.01, 0.01, reference_pixel=(310, 0))
    spectral = UltrasoundRegion(10, 300, 629, 470, 0.02, -2.5, 4, 7, 3, 3, reference_pixel=(0, 80))
    calibration = PresetCalibration("carotid-duplex", (tissue, spectral), (640, 480))
    labels = CaptureLabels(side="R", structure="ICA", mode="pw_doppler", doppler_angle=58)
    ds = build_still(frame, context("carotid"), labels, calibration=calibration)
    ds = save_and_validate(ds, tmp_path / "duplex.dcm")
    tissue_item, spectral_item = ds.SequenceOfUltrasoundRegions
    assert "DopplerCorrectionAngle" not in tissue_item and spectral_item.DopplerCorrectionAngle == 58.0
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "VASCULAR", "0009"]
    assert ds.ImageComments == "R, ICA, PW Doppler, Doppler angle 58°"
