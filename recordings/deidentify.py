"""De-identification for teaching export: the burned-in patient banner, and DICOM metadata. Pure functions.

Pixels. A captured scanner screen carries the patient's name and ID burned into a banner at the top (or the
bottom) of every frame. :func:`find_banners` finds it as the *static text* of a frame sequence: pixels that never
change across the frames (the image does, and so does the clock), drawn as high-contrast strokes, outside the
field of view, grouped into lines of text; a banner is the band of rows from the frame's edge to the last such
line above (or below) the field of view, over the full width (the clock and the date with it), never entering the
field of view. :func:`mask_frames` blacks the banners out in every frame. Text elsewhere (the parameter panel,
the depth scale) is left: it is not about the patient and teaching needs it; :func:`static_text_boxes` lists it
for an exporter that wants more masked. A single frame (a still) has no evidence of what is static:
:func:`still_banners` takes every line of high-contrast text above (below) the field of view instead, so it wants
the field of view exact (from the image's ultrasound regions; estimated from the frame when it has none).

Metadata. :func:`scrub` applies a PS3.15 Annex E basic-profile flavour to a copy of a dataset, recursing into
every sequence: patient name and ID replaced by pseudonyms; birth date, sex, accession, study ID, physicians and
operators emptied; institution, station, device serial, addresses, comments and descriptions removed; every
person name (PN) emptied; dates shifted by a fixed number of days (or emptied) with times kept only when shifted;
every non-standard UID remapped through a :class:`UidMap` shared across the files of one export, so references
between them still hold; private elements removed; then any text that still holds the original name or ID is
emptied. It records PatientIdentityRemoved YES, the method (text and codes) and, only when the caller says the
pixels were masked, BurnedInAnnotation NO.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

from qc.fov import Box, best_fov, region_fov
from qc.frame import THUMB_STRIDE, to_grey
from qc.regions import CalibrationError, regions_from_dataset

STATIC_TOLERANCE = 6  # grey levels a static pixel may wander (video coding noise)
STROKE_CONTRAST = 60  # morphological gradient of a text stroke
LIT_LEVEL, LIT_SHARE = 8, 0.3  # a row of a still's image has this share of its pixels above this grey level
STANDARD_UID_ROOT = "1.2.840.10008."
EMPTIED = (
    "PatientBirthDate", "PatientSex", "ReferringPhysicianName", "AccessionNumber", "StudyID", "ContentCreatorName",
)  # fmt: skip
REMOVED = (
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "InstitutionCodeSequence",
    "StationName", "DeviceSerialNumber", "PerformingPhysicianName", "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord", "OperatorsName", "RequestingPhysician", "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers", "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames",
    "IssuerOfPatientID", "PatientBirthTime", "PatientAge", "PatientSize", "PatientWeight", "PatientAddress",
    "PatientTelephoneNumbers", "PatientMotherBirthName", "MedicalRecordLocator", "EthnicGroup", "Occupation",
    "AdditionalPatientHistory", "PatientComments", "ImageComments", "StudyComments", "StudyDescription",
    "SeriesDescription", "ProtocolName", "DerivationDescription", "RequestAttributesSequence",
    "ReferencedPatientSequence", "ReferencedStudySequence", "ReferencedPerformedProcedureStepSequence",
    "PerformedProcedureStepID", "PerformedProcedureStepDescription", "AdmissionID", "CountryOfResidence",
    "RegionOfResidence", "PatientReligiousPreference", "MilitaryRank", "BranchOfService",
)  # fmt: skip
REMOVED_SET = frozenset(REMOVED)
KEPT_UIDS = ("TransferSyntaxUID", "ImplementationClassUID")


# ---- pixels -------------------------------------------------------------------------------------------------------


def static_mask(frames: Sequence[np.ndarray], tolerance: int = STATIC_TOLERANCE) -> np.ndarray:
    """Pixels whose grey level stays within `tolerance` over every frame (frames BGR or grey, one size)."""
    greys = [to_grey(f) for f in frames]
    low, high = greys[0].copy(), greys[0].copy()
    for g in greys[1:]:
        np.minimum(low, g, out=low)
        np.maximum(high, g, out=high)
    still: np.ndarray = (high - low) <= tolerance
    return still


def static_text_boxes(frames: Sequence[np.ndarray], fov_mask: np.ndarray | None = None) -> list[Box]:
    """Boxes of the lines of static text outside the field of view (estimated when not given)."""
    if len(frames) < 2:
        raise ValueError("static text needs two frames or more")
    fov = fov_mask if fov_mask is not None else _fov(frames)
    return _text_boxes(to_grey(frames[-1]), fov, static_mask(frames))


def text_boxes(frame: np.ndarray, fov_mask: np.ndarray | None = None) -> list[Box]:
    """Boxes of the lines of high-contrast text outside the field of view of a single frame (a still), where
    nothing says what is static: every stroke counts, so keep `fov_mask` exact when it is known."""
    fov = fov_mask if fov_mask is not None else _still_fov(frame)
    return _text_boxes(to_grey(frame), fov, None)


def _text_boxes(grey: np.ndarray, fov: np.ndarray, keep: np.ndarray | None) -> list[Box]:
    """Strokes (those in `keep` only, when given) outside the field of view, joined into lines of text."""
    height, width = grey.shape[:2]
    gradient = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    margin = cv2.dilate(fov.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    strokes = (gradient >= STROKE_CONTRAST) & ~margin
    if keep is not None:
        strokes &= keep
    reach = max(3, round(0.015 * width))
    lines = cv2.dilate(strokes.astype(np.uint8), np.ones((3, reach), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
    low, high = max(6, round(0.008 * height)), round(0.08 * height)
    boxes = []
    for k in range(1, count):
        x, y, w, h, _ = (int(v) for v in stats[k])
        if low <= h <= high and w >= h:
            boxes.append(Box(x, y, w, h))
    return boxes


def _fov(frames: Sequence[np.ndarray]) -> np.ndarray:
    thumbs = [to_grey(np.ascontiguousarray(f[::THUMB_STRIDE, ::THUMB_STRIDE])) for f in frames]
    mask, _ = best_fov(frames[0].shape[:2], thumbs)
    return mask


def _still_fov(frame: np.ndarray) -> np.ndarray:
    """One frame's field of view, estimated, without its top and bottom rows that are mostly dark: the estimate
    closes bright blobs together, and so takes in the line of text next to the image."""
    fov = _fov([frame])
    lit = (cv2.medianBlur(to_grey(frame), 5) > LIT_LEVEL) & fov
    share = lit.sum(axis=1) / np.maximum(fov.sum(axis=1), 1)
    dense = np.flatnonzero(share >= LIT_SHARE)
    if dense.size == 0:
        return fov
    trimmed = fov.copy()
    trimmed[: dense[0]] = False
    trimmed[dense[-1] + 1 :] = False
    return trimmed


def find_banners(frames: Sequence[np.ndarray], fov_mask: np.ndarray | None = None) -> list[Box]:
    """The banners: full-width bands of rows from the frame's top (bottom) edge down (up) to a line's height past
    the static text above (below) the field of view, never entering it; [] when there is no such text."""
    fov = fov_mask if fov_mask is not None else _fov(frames)
    return _bands(static_text_boxes(frames, fov), fov)


def still_banners(frame: np.ndarray, fov_mask: np.ndarray | None = None) -> list[Box]:
    """:func:`find_banners` for a single frame: the bands around the text above (below) the field of view. With
    one frame there is no evidence of what is static, so any high-contrast text there counts; the field of view
    should come from the image's calibrated regions when it has some (estimated from the frame otherwise)."""
    fov = fov_mask if fov_mask is not None else _still_fov(frame)
    return _bands(text_boxes(frame, fov), fov)


def _bands(boxes: Sequence[Box], fov: np.ndarray) -> list[Box]:
    height, width = fov.shape[:2]
    rows = np.flatnonzero(fov.any(axis=1))
    top, bottom = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (height // 2, height // 2)
    banners = []
    above = [b for b in boxes if b.y + b.h <= top]
    if above:
        banners.append(Box(0, 0, width, min(top, max(b.y + 2 * b.h for b in above))))
    below = [b for b in boxes if b.y >= bottom]
    if below:
        start = max(bottom, min(b.y - b.h for b in below))
        banners.append(Box(0, start, width, height - start))
    return banners


def dataset_fov(ds: Dataset, shape: tuple[int, int]) -> np.ndarray | None:
    """The field of view of a DICOM image's 2D tissue regions (US Region Calibration) at `shape`, or None: what
    :func:`still_banners` wants as `fov_mask` for an image that has regions."""
    try:
        regions = regions_from_dataset(ds)
    except (CalibrationError, AttributeError, TypeError, ValueError):
        return None
    return region_fov(shape, regions) if regions else None


def mask_frame(frame: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
    """A copy of `frame` with every box black."""
    out = frame.copy()
    for box in boxes:
        out[box.slices] = 0
    return out


def mask_frames(frames: Sequence[np.ndarray], boxes: Sequence[Box]) -> list[np.ndarray]:
    return [mask_frame(f, boxes) for f in frames]


# ---- metadata -----------------------------------------------------------------------------------------------------


@dataclass
class UidMap:
    """Original UID → new UID, one map per export so that the same study and series stay one."""

    mapping: dict[str, str] = field(default_factory=dict)

    def __call__(self, uid: str) -> str:
        if uid not in self.mapping:
            self.mapping[uid] = generate_uid()
        return self.mapping[uid]


def _shift_date(value: str, days: int) -> str:
    try:
        day = dt.datetime.strptime(value[:8], "%Y%m%d") + dt.timedelta(days=days)
    except ValueError:
        return ""
    return day.strftime("%Y%m%d") + value[8:]


def _each(value: object, change: Callable[[str], str]) -> str | list[str]:
    if isinstance(value, MultiValue | list):
        return [change(str(v)) for v in value]
    return change(str(value))


def _identifiers(ds: Dataset) -> list[str]:
    """The patient's ID, each name part of 3 letters or more, and the whole name run together (张三)."""
    parts = str(ds.get("PatientName", "") or "").replace("^", " ").replace("=", " ").split()
    tokens = [str(ds.get("PatientID", "") or ""), "".join(parts), " ".join(parts)]
    tokens += [part for part in parts if len(part) >= 3]
    return sorted({t.casefold() for t in tokens if len(t) >= 2})


def scrub(
    ds: Dataset,
    uids: UidMap,
    *,
    patient_name: str = "ANONYMOUS",
    patient_id: str = "ANON",
    date_shift_days: int | None = None,
    pixels_masked: bool = False,
) -> Dataset:
    """A de-identified copy of `ds` (see the module docstring); `ds` itself is not changed."""
    out = copy.deepcopy(ds)
    identifiers = _identifiers(ds)
    out.walk(_remove)
    out.remove_private_tags()

    def clean(d: Dataset, e: DataElement) -> None:
        if e.value is None or e.value == "":
            return
        if e.VR == "PN":
            e.value = ""
        elif e.VR in ("DA", "DT"):
            e.value = "" if date_shift_days is None else _each(e.value, lambda v: _shift_date(v, date_shift_days))
        elif e.VR == "TM" and date_shift_days is None:
            e.value = ""
        elif e.VR == "UI" and e.keyword not in KEPT_UIDS and not e.keyword.endswith("ClassUID"):
            e.value = _each(e.value, lambda v: v if v.startswith(STANDARD_UID_ROOT) else uids(v))
        elif e.VR in ("LO", "SH", "ST", "LT", "UT", "UC") and any(i in str(e.value).casefold() for i in identifiers):
            e.value = ""

    out.walk(clean)
    for keyword in EMPTIED:
        if keyword in out:
            setattr(out, keyword, "")
    out.PatientName = patient_name
    out.PatientID = patient_id
    if "SOPInstanceUID" in out and getattr(out, "file_meta", None) is not None:
        out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    _record_method(out, date_shift_days, pixels_masked)
    return out


def _remove(ds: Dataset, element: DataElement) -> None:
    if element.keyword in REMOVED_SET:
        del ds[element.tag]


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
    return item


def _record_method(ds: Dataset, date_shift_days: int | None, pixels_masked: bool) -> None:
    ds.PatientIdentityRemoved = "YES"
    methods = ["teleus basic profile", "private tags removed", "UIDs remapped"]
    codes = [_code("113100", "Basic Application Confidentiality Profile")]
    if date_shift_days is None:
        methods.append("dates removed")
        ds.LongitudinalTemporalInformationModified = "REMOVED"
    else:
        methods.append(f"dates shifted {date_shift_days:+d} days")
        codes.append(_code("113107", "Retain Longitudinal Temporal Information Modified Dates Option"))
        ds.LongitudinalTemporalInformationModified = "MODIFIED"
    if pixels_masked:
        methods.append("burned-in banner masked")
        codes.append(_code("113101", "Clean Pixel Data Option"))
        ds.BurnedInAnnotation = "NO"
    ds.DeidentificationMethod = methods
    ds.DeidentificationMethodCodeSequence = DicomSequence(codes)
