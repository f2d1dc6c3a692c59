"""Ultrasound Image (a still) and Ultrasound Multi-frame Image (a clip) from the edge's source frames.

Stills are stored losslessly, uncompressed (Explicit VR Little Endian): MONOCHROME2 when every pixel is grey
(all three channels equal), RGB otherwise. Uncompressed costs no CPU and every archive and viewer reads it.
A still taken from the source before any video encoder is not lossy unless the source itself was
(``source_lossy``: an MJPEG or H.264 capture card, a replayed JPEG cine).

Clips are JPEG Baseline (ISO 10918-1, quality 90): YBR_FULL_422 (Pillow reads the BGR frame as it is and
subsamples 4:2:2, exact on the even sizes the ring holds), or one MONOCHROME2 component when every frame is
grey. Measured on the edge box (Xeon, 2 cores, synthetic carotid screen, Pillow 13 / libjpeg-turbo), per frame:

    ======================  ==============  ===============  ====================================
    encoding                720p            1080p            10 s at 30 fps, 1080p
    ======================  ==============  ===============  ====================================
    uncompressed RGB        2.76 MB, 0 ms   6.22 MB, 0 ms    1.9 GB: cannot be spooled or uploaded
    RLE Lossless (pydicom)  1.6 MB, 290 ms  3.5 MB, 690 ms   1 GB, 3.5 min of pure Python (GIL held)
    JPEG-LS lossless        640 kB, 27 ms   1.06 MB, 51 ms   320 MB (pyjpegls: not a declared dep)
    JPEG q90 4:2:2 (chosen) 149 kB, 4.3 ms  264 kB, 8.8 ms   79 MB, 2.6 s of one core
    ======================  ==============  ===============  ====================================

(JPEG times are the whole clip build divided by its frames; a real 640×480 colour cine from pydicom-data
takes 1.3 ms and 35 kB a frame.) So a clip becomes lossy here: LossyImageCompression 01, method ISO_10918_1
and the measured ratio (18.5:1 at 720p, 23.6:1 at 1080p, 26:1 on the real cine), Image Type value 1 DERIVED.
The encode runs off the event loop (:func:`build_clip_async`: :func:`asyncio.to_thread`; libjpeg releases
the GIL, the loop saw at most 11-15 ms stalls while 60 1080p frames were encoded) and may be paced with
``duty_cycle`` (0.5 rests as long as it worked) so that it leaves CPU to the live video encoders.

Labels go into standard attributes: side into the series' Laterality (carotid only: the thyroid is not a
paired organ; one series per side, since Laterality is a series attribute), structure into Primary Anatomic
Structure Sequence, plane into View Code Sequence (CID 6), the mode into Image Type value 4, the Doppler angle
into Doppler Correction Angle of calibrated Doppler regions; the whole summary into Image Comments.

Errors (edge_capture/errors.py)::

    CaptureError
    └── DicomBuildError(code, message)
          code "invalid_study_context": a StudyContext field is malformed
          code "laterality_required": a carotid capture without a side
          code "bad_frames": no frames, too few for a clip, or frames of different sizes
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cv2
import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence as DicomSequence
from pydicom.sr.codedict import codes
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)

from edge_capture.dicom.calibration import PresetCalibration, to_dataset_sequence
from edge_capture.errors import DicomBuildError
from edge_capture.frames import SourceFrame
from qc.labels import CaptureLabels

logger = logging.getLogger(__name__)

MANUFACTURER = "teleus"
MODEL = "teleus edge"
JPEG_QUALITY = 90
JPEG_METHOD = "ISO_10918_1"
FRAME_TIME_TAG = 0x00181063
SERIES_NUMBERS = {"still": 1, "clip": 2, "marks": 3}
SIDE_SERIES_OFFSET = {"none": 0, "R": 10, "L": 20}


@dataclass(frozen=True)
class Exam:
    body_part: str
    image_type: str  # ultrasound Image Type value 3
    region: Any  # pydicom.sr Code
    paired: bool


EXAMS = {
    "thyroid": Exam("THYROID", "THYROID", codes.SCT.Thyroid, paired=False),
    "carotid": Exam("CAROTID", "VASCULAR", codes.SCT.CarotidArtery, paired=True),
}
STRUCTURE_CODES = {
    "thyroid right lobe": codes.SCT.RightLobeOfThyroid,
    "thyroid left lobe": codes.SCT.LeftLobeOfThyroid,
    "thyroid isthmus": codes.SCT.ThyroidIsthmus,
    "CCA": codes.SCT.CommonCarotidArtery,
    "ICA": codes.SCT.InternalCarotidArtery,
    "ECA": codes.SCT.ExternalCarotidArtery,
    "bulb": codes.SCT.CarotidBulb,
    "vertebral": codes.SCT.VertebralArtery,
}
PLANE_CODES = {"transverse": codes.SCT.Transverse, "longitudinal": codes.SCT.Longitudinal}
_DATE = re.compile(r"\d{8}")
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+")
_TIME = re.compile(r"\d{6}(\.\d{1,6})?")


def is_valid_uid(value: object) -> bool:
    """A UID's syntax (PS3.5 §9.1), checked without pydicom's warning; also safe as a file name."""
    return isinstance(value, str) and len(value) <= 64 and _UID.fullmatch(value) is not None


@dataclass(frozen=True)
class StudyContext:
    """Who and what the captures belong to; comes from the consultation. Validated when built."""

    patient_name: str
    patient_id: str
    study_instance_uid: str
    study_date: str  # YYYYMMDD
    study_time: str  # HHMMSS[.ffffff]
    exam_type: str  # thyroid | carotid
    patient_birth_date: str = ""  # YYYYMMDD or empty
    patient_sex: str = ""  # M, F, O or empty
    accession_number: str = ""
    study_id: str = ""
    referring_physician_name: str = ""
    expert_name: str = ""
    institution_name: str = ""
    device_name: str = ""
    device_serial_number: str = ""

    def __post_init__(self) -> None:
        def bad(message: str) -> DicomBuildError:
            return DicomBuildError("invalid_study_context", message)

        if self.exam_type not in EXAMS:
            raise bad(f"exam_type must be one of {', '.join(EXAMS)}")
        if not is_valid_uid(self.study_instance_uid):
            raise bad("study_instance_uid is not a valid UID")
        if not _DATE.fullmatch(self.study_date) or not _TIME.fullmatch(self.study_time):
            raise bad("study_date must be YYYYMMDD and study_time HHMMSS")
        if self.patient_birth_date and not _DATE.fullmatch(self.patient_birth_date):
            raise bad("patient_birth_date must be YYYYMMDD or empty")
        if self.patient_sex not in ("", "M", "F", "O"):
            raise bad("patient_sex must be M, F, O or empty")
        for name, limit in (
            ("patient_id", 64),
            ("accession_number", 16),
            ("study_id", 16),
            ("device_name", 16),
            ("device_serial_number", 64),
            ("institution_name", 64),
            ("patient_name", 64),
        ):
            value = getattr(self, name)
            if len(value) > limit or "\\" in value:
                raise bad(f"{name} must be at most {limit} characters without a backslash")

    @property
    def exam(self) -> Exam:
        return EXAMS[self.exam_type]


@dataclass(frozen=True)
class LossyHistory:
    """A lossy step the pixels went through before the edge saw them (e.g. an H.264 capture card)."""

    method: str  # ISO_10918_1, ISO_14496_10, ...
    ratio: float | None = None


def series_instance_uid(context: StudyContext, kind: str, side: str = "none") -> str:
    """The same series for every capture of one kind (still, clip, marks) and side in a study."""
    return generate_uid(entropy_srcs=[context.study_instance_uid, "teleus", kind, side])


def series_number(kind: str, side: str = "none") -> int:
    return SERIES_NUMBERS[kind] + SIDE_SERIES_OFFSET[side]


def is_grey(image: np.ndarray) -> bool:
    """True when all three channels are equal; a sparse look first, so a colour frame is refused fast."""
    sample = image[::8, ::8]
    if not (np.array_equal(sample[..., 0], sample[..., 1]) and np.array_equal(sample[..., 1], sample[..., 2])):
        return False
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]))


def _local(capture_time_ns: int) -> datetime:
    return datetime.fromtimestamp(capture_time_ns / 1e9).astimezone()


def _code_item(code: Any) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code.value, code.scheme_designator, code.meaning
    return item


def common_dataset(context: StudyContext, sop_class: str, sop_uid: str, kind: str, side: str, when_ns: int) -> Dataset:
    """Patient, General Study, General Series, General Equipment and SOP Common, shared with the marks."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_uid
    ds.StudyDate, ds.StudyTime = context.study_date, context.study_time
    when = _local(when_ns)
    ds.ContentDate, ds.ContentTime = when.strftime("%Y%m%d"), when.strftime("%H%M%S.%f")
    ds.TimezoneOffsetFromUTC = when.strftime("%z")
    ds.AccessionNumber = context.accession_number
    ds.Manufacturer, ds.ManufacturerModelName = MANUFACTURER, MODEL
    if context.institution_name:
        ds.InstitutionName = context.institution_name
    ds.ReferringPhysicianName = context.referring_physician_name
    if context.device_name:
        ds.StationName = context.device_name
    if context.expert_name:
        ds.NameOfPhysiciansReadingStudy = context.expert_name
    ds.PatientName, ds.PatientID = context.patient_name, context.patient_id
    ds.PatientBirthDate, ds.PatientSex = context.patient_birth_date, context.patient_sex
    if context.device_serial_number:
        ds.DeviceSerialNumber = context.device_serial_number
    ds.StudyInstanceUID = context.study_instance_uid
    ds.SeriesInstanceUID = series_instance_uid(context, kind, side)
    ds.StudyID = context.study_id or context.accession_number or context.study_instance_uid[-16:].strip(".")
    ds.SeriesNumber = series_number(kind, side)
    return ds


def _image_dataset(
    frames: Sequence[SourceFrame],
    context: StudyContext,
    labels: CaptureLabels,
    calibration: PresetCalibration | None,
    sop_class: str,
    sop_uid: str | None,
    instance_number: int,
    kind: str,
) -> Dataset:
    if not frames:
        raise DicomBuildError("bad_frames", "no frame to store")
    exam = context.exam
    if exam.paired and labels.side == "none":
        raise DicomBuildError("laterality_required", f"a {context.exam_type} capture needs a side (R or L)")
    side = labels.side if exam.paired else "none"
    first = frames[0]
    ds = common_dataset(context, sop_class, sop_uid or generate_uid(), kind, side, first.capture_time_ns)
    ds.AcquisitionDateTime = _local(first.capture_time_ns).strftime("%Y%m%d%H%M%S.%f%z")
    ds.Modality = "US"
    ds.SeriesDescription = f"{'Stills' if kind == 'still' else 'Clips'}{'' if side == 'none' else ' ' + side}"
    ds.BodyPartExamined = exam.body_part
    if exam.paired:
        ds.Laterality = side
    ds.InstanceNumber = instance_number
    ds.PatientOrientation = ""
    ds.ImageComments = labels.describe()
    ds.BurnedInAnnotation = "YES"  # a screen grab: the scanner wrote the patient's name into the pixels
    ds.AnatomicRegionSequence = DicomSequence([_code_item(exam.region)])
    if labels.structure is not None:
        ds.PrimaryAnatomicStructureSequence = DicomSequence([_code_item(STRUCTURE_CODES[labels.structure])])
    if labels.plane is not None:
        ds.ViewCodeSequence = DicomSequence([_code_item(PLANE_CODES[labels.plane])])
    height, width = first.height, first.width
    if any(f.image.shape != first.image.shape for f in frames):
        raise DicomBuildError("bad_frames", "all frames of a clip must have the same size")
    if calibration is not None:
        if calibration.fits(width, height):
            ds.SequenceOfUltrasoundRegions = to_dataset_sequence(calibration, labels.doppler_angle)
        else:
            logger.warning("calibration of %s does not fit a %s×%s frame: left out", calibration.preset, width, height)
    return ds


def _set_lossy(ds: Dataset, history: list[LossyHistory], image_type: list[str]) -> None:
    if not history:
        ds.LossyImageCompression = "00"
        return
    image_type[0] = "DERIVED"
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = [step.method for step in history]
    if all(step.ratio is not None for step in history):
        ds.LossyImageCompressionRatio = [f"{step.ratio:.2f}" for step in history]


def _finish(
    ds: Dataset, context: StudyContext, labels: CaptureLabels, grey: bool, lossy: list[LossyHistory], syntax: UID
) -> Dataset:
    image_type = ["ORIGINAL", "PRIMARY", context.exam.image_type, labels.mode_bitmap]
    _set_lossy(ds, lossy, image_type)
    ds.ImageType = image_type
    ds.UltrasoundColorDataPresent = int(not grey and labels.has_colour_flow)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def _pixels(image: np.ndarray, grey: bool) -> np.ndarray:
    """The frame as DICOM wants it: one channel when grey, else RGB (OpenCV: 5× a numpy strided copy)."""
    return cv2.extractChannel(image, 0) if grey else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def build_still(
    frame: SourceFrame,
    context: StudyContext,
    labels: CaptureLabels,
    *,
    calibration: PresetCalibration | None = None,
    source_lossy: LossyHistory | None = None,
    sop_instance_uid: str | None = None,
    instance_number: int = 1,
) -> Dataset:
    """An Ultrasound Image of one source frame, lossless and uncompressed."""
    ds = _image_dataset(
        [frame], context, labels, calibration, UltrasoundImageStorage, sop_instance_uid, instance_number, "still"
    )
    grey = is_grey(frame.image)
    ds.set_pixel_data(_pixels(frame.image, grey), "MONOCHROME2" if grey else "RGB", 8, generate_instance_uid=False)
    return _finish(ds, context, labels, grey, [source_lossy] if source_lossy else [], ExplicitVRLittleEndian)


def encode_jpeg(image: np.ndarray, grey: bool, quality: int = JPEG_QUALITY) -> bytes:
    """One baseline JPEG of a BGR frame: grey as one component, else YCbCr 4:2:2 (DICOM YBR_FULL_422).

    Pillow reads the BGR bytes as they are (raw mode "BGR"): no RGB copy of the frame is made.
    """
    out = io.BytesIO()
    size = (image.shape[1], image.shape[0])
    if grey:
        Image.fromarray(cv2.extractChannel(image, 0), "L").save(out, "JPEG", quality=quality)
    else:
        picture = Image.frombuffer("RGB", size, np.ascontiguousarray(image), "raw", "BGR", 0, 1)
        picture.save(out, "JPEG", quality=quality, subsampling="4:2:2")
    return out.getvalue()


def build_clip(
    frames: Sequence[SourceFrame],
    context: StudyContext,
    labels: CaptureLabels,
    *,
    calibration: PresetCalibration | None = None,
    source_lossy: LossyHistory | None = None,
    sop_instance_uid: str | None = None,
    instance_number: int = 1,
    quality: int = JPEG_QUALITY,
    duty_cycle: float = 1.0,
) -> Dataset:
    """An Ultrasound Multi-frame Image (JPEG Baseline) of consecutive source frames, oldest first.

    Frame Time is the mean interval between the frames' capture times (monotonic clock). ``duty_cycle`` below 1 sleeps
    between frames so that the encode uses at most that fraction of one core.
    """
    if len(frames) < 2:
        raise DicomBuildError("bad_frames", f"a clip needs at least two frames, got {len(frames)}")
    if not 0 < duty_cycle <= 1:
        raise ValueError("duty_cycle must be within (0, 1]")
    # the monotonic capture clock: a wall clock stepped by NTP mid-clip would lie about the interval
    frame_time_ms = (frames[-1].monotonic_ns - frames[0].monotonic_ns) / 1e6 / (len(frames) - 1)
    if frame_time_ms <= 0:
        raise DicomBuildError("bad_frames", "a clip's frames must be in capture order")
    ds = _image_dataset(
        frames,
        context,
        labels,
        calibration,
        UltrasoundMultiFrameImageStorage,
        sop_instance_uid,
        instance_number,
        "clip",
    )
    grey = all(is_grey(f.image) for f in frames)
    encoded = []
    for frame in frames:
        started = time.perf_counter()
        encoded.append(encode_jpeg(frame.image, grey, quality))
        if duty_cycle < 1:
            time.sleep((time.perf_counter() - started) * (1 / duty_cycle - 1))
    first = frames[0]
    samples = 1 if grey else 3
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = "MONOCHROME2" if grey else "YBR_FULL_422"
    if not grey:
        ds.PlanarConfiguration = 0
    ds.NumberOfFrames = len(frames)
    ds.FrameIncrementPointer = FRAME_TIME_TAG
    ds.Rows, ds.Columns = first.height, first.width
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.FrameTime = f"{frame_time_ms:.3f}"
    ds.CineRate = ds.RecommendedDisplayFrameRate = round(1000 / frame_time_ms)
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    ratio = len(frames) * first.height * first.width * samples / sum(len(e) for e in encoded)
    ds.DerivationDescription = f"JPEG Baseline quality {quality}{'' if grey else ', YCbCr 4:2:2'} of source frames"
    history = ([source_lossy] if source_lossy else []) + [LossyHistory(JPEG_METHOD, ratio)]
    logger.info("clip %s: %s frames, %.1f MB, %.1f:1", ds.SOPInstanceUID, len(frames), len(ds.PixelData) / 1e6, ratio)
    return _finish(ds, context, labels, grey, history, JPEGBaseline8Bit)


async def build_still_async(
    frame: SourceFrame, context: StudyContext, labels: CaptureLabels, **options: Any
) -> Dataset:
    """:func:`build_still` on a worker thread."""
    return await asyncio.to_thread(build_still, frame, context, labels, **options)


async def build_clip_async(
    frames: Sequence[SourceFrame], context: StudyContext, labels: CaptureLabels, **options: Any
) -> Dataset:
    """:func:`build_clip` on a worker thread (the JPEG encoder releases the GIL)."""
    return await asyncio.to_thread(build_clip, frames, context, labels, **options)
