"""Raw Part 10 bytes → the attributes the index needs, refusing what the store must not keep.

Refused with `invalid_dicom`: anything without the 128-byte preamble and "DICM" (PS3.10 §7.1), anything pydicom
cannot read, and truncated objects. pydicom reads a cut file without complaint (a value simply comes out shorter
than its declared length), so truncation is checked on the raw elements: every element must end inside the
object and the last one exactly at its end; an image storage object must have pixel data. A cut that falls
exactly between two elements of a non-image object (an SR, say) leaves a valid, shorter object and cannot be seen.

Refused with `missing_attribute`: no SOP Instance UID, SOP Class UID, Study Instance UID or Series Instance UID.

Refused by what they claim (`limits.py`, checked on the header before any pixel is decoded): a Transfer Syntax
UID of no standard transfer syntax (`unknown_transfer_syntax`), an image over the pixel caps (`image_too_large`),
native pixel data of another length than its header says (`pixel_data_mismatch`).
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID

from recordings.media import quiet_pydicom
from signaling_server import errors
from signaling_server.dicomstore.blobs import sha256_of
from signaling_server.dicomstore.limits import ImageLimits, check_pixels, check_transfer_syntax

UNDEFINED_LENGTH = 0xFFFFFFFF
_REQUIRED = ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID")
_PIXELS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_UID_CHARS = frozenset("0123456789.")


@dataclass(frozen=True)
class Demographics:
    """The patient module of one object, in plain words."""

    local_id: str  # PatientID: the sending site's own number
    name: str  # PatientName as written (all component groups)
    birth_date: str  # YYYYMMDD or ""
    sex: str  # M, F, O or ""
    issuer: str = ""  # IssuerOfPatientID of local_id
    other_ids: tuple[tuple[str, str], ...] = ()  # (issuer, id) items of OtherPatientIDsSequence

    def regional_id(self, issuer: str) -> str | None:
        """The ID given by `issuer` (the region's shared one), if the object carries it."""
        if self.issuer == issuer and self.local_id:
            return self.local_id
        return next((value for who, value in self.other_ids if who == issuer and value), None)


_NAME_NOISE = re.compile(r"[\s^,.\-'·]+")


def normalised_name(person_name: str) -> str:
    """A comparison key for names: first non-empty component group, NFKC, upper case, no spaces or separators.

    "Zhang^San=张^三", "ZHANG SAN" and "zhang^san^^" give the same key; "张^三" and "张三" give the same key.
    """
    groups = [g for g in person_name.split("=") if g.strip(" ^")]
    first = unicodedata.normalize("NFKC", groups[0] if groups else "")
    return _NAME_NOISE.sub("", first).upper()


@dataclass(frozen=True)
class ParsedInstance:
    sop_uid: str
    sop_class_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax_uid: str
    modality: str
    series_number: int | None
    series_description: str
    instance_number: int | None
    frames: int
    rows: int | None
    columns: int | None
    accession: str
    study_date: str
    study_time: str
    study_description: str
    priority: str
    patient: Demographics
    sha256: str
    size: int


def read_dataset(raw: bytes) -> Dataset:
    """The whole dataset of a stored or arriving object (call inside quiet_pydicom)."""
    return pydicom.dcmread(io.BytesIO(raw))


def parse_instance(raw: bytes, limits: ImageLimits | None = None) -> ParsedInstance:
    """Check and read one arriving object; raises InvalidDicom (or a subclass) or ImageTooLarge. CPU-bound: run in
    a thread. `limits` defaults to the caps of bare settings."""
    limits = limits or ImageLimits()
    limits.check_size(len(raw))
    with quiet_pydicom() as caught:
        try:
            ds = read_dataset(raw)
        except Exception as exc:  # pydicom raises many kinds on garbage: all mean the same here
            raise errors.InvalidDicom(f"not a DICOM Part 10 object: {exc}") from None
        if any("End of file" in str(w.message) for w in caught):
            raise errors.InvalidDicom("the object is truncated: it ends inside a sequence or pixel data")
        try:
            _check_complete(ds, len(raw))
            check_pixels(ds, UID(ds.file_meta.TransferSyntaxUID), limits)
            return _extract(ds, raw)
        except errors.TeleusError:  # invalid_dicom and its kinds, and the caps' own refusals (too_large...)
            raise
        except Exception as exc:  # a value pydicom reads lazily and cannot convert (a cut transfer syntax UID...)
            raise errors.InvalidDicom(f"the object cannot be read: {exc}") from None


def _check_complete(ds: Dataset, size: int) -> None:
    """Every top-level element must end inside the object, the last exactly at its end (before any value is read)."""
    if ds.file_meta.get("TransferSyntaxUID") is None:
        raise errors.InvalidDicom("the file meta information has no Transfer Syntax UID")
    check_transfer_syntax(str(ds.file_meta.TransferSyntaxUID))  # before is_deflated, which raises on a stranger
    end: int | None = None
    for tag in ds.keys():
        element = ds.get_item(tag)
        if not isinstance(element, RawDataElement) or element.value_tell is None:
            end = None  # already converted by pydicom (sequences): their items were read whole or it warned
            continue
        value = element.value if element.value is not None else b""
        if element.length == UNDEFINED_LENGTH:
            end = element.value_tell + len(value) + 8  # + the sequence delimitation item
        else:
            if len(value) != element.length:
                raise errors.InvalidDicom(f"the object is truncated inside element {tag}")
            end = element.value_tell + element.length
    deflated = UID(ds.file_meta.TransferSyntaxUID).is_deflated  # offsets then count the inflated stream
    if end is not None and end != size and not deflated:
        raise errors.InvalidDicom(f"the object is truncated or has trailing bytes ({end} of {size} read)")


def _extract(ds: Dataset, raw: bytes) -> ParsedInstance:
    for keyword in _REQUIRED:
        if not str(ds.get(keyword, "") or "").strip():
            raise errors.MissingAttribute(f"the object has no {keyword}")
    uids = {keyword: _uid(ds, keyword) for keyword in _REQUIRED}
    meta_sop = str(ds.file_meta.get("MediaStorageSOPInstanceUID", "") or "").strip()
    if meta_sop and meta_sop != uids["SOPInstanceUID"]:
        raise errors.InvalidDicom("MediaStorageSOPInstanceUID in the file meta differs from SOPInstanceUID")
    class_uid = UID(uids["SOPClassUID"])
    if "Image Storage" in class_uid.name and not any(k in ds for k in _PIXELS):
        raise errors.InvalidDicom(f"a {class_uid.name} object without pixel data (truncated?)")
    return ParsedInstance(
        sop_uid=uids["SOPInstanceUID"],
        sop_class_uid=uids["SOPClassUID"],
        study_uid=uids["StudyInstanceUID"],
        series_uid=uids["SeriesInstanceUID"],
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID)[:64],
        modality=_text(ds, "Modality", 16) or "OT",
        series_number=_int(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription", 200),
        instance_number=_int(ds, "InstanceNumber"),
        frames=max(1, _int(ds, "NumberOfFrames") or 1),
        rows=_int(ds, "Rows"),
        columns=_int(ds, "Columns"),
        accession=_text(ds, "AccessionNumber", 16),
        study_date=_date(_text(ds, "StudyDate", 8)),
        study_time=_text(ds, "StudyTime", 16),
        study_description=_text(ds, "StudyDescription", 200),
        priority=_text(ds, "RequestedProcedurePriority", 16) or _text(ds, "ReportingPriority", 16),
        patient=demographics(ds),
        sha256=sha256_of(raw),
        size=len(raw),
    )


def demographics(ds: Dataset) -> Demographics:
    others = []
    for item in ds.get("OtherPatientIDsSequence", []) or []:
        value = _text(item, "PatientID", 64)
        if value:
            others.append((_text(item, "IssuerOfPatientID", 64), value))
    sex = _text(ds, "PatientSex", 1).upper()
    return Demographics(
        local_id=_text(ds, "PatientID", 64),
        name=unicodedata.normalize("NFC", _text(ds, "PatientName", 200)),
        birth_date=_date(_text(ds, "PatientBirthDate", 8)),
        sex=sex if sex in {"M", "F", "O"} else "",
        issuer=_text(ds, "IssuerOfPatientID", 64),
        other_ids=tuple(others),
    )


def _uid(ds: Dataset, keyword: str) -> str:
    value = str(ds.get(keyword)).strip().rstrip("\0")
    if len(value) > 64 or not set(value) <= _UID_CHARS:
        raise errors.InvalidDicom(f"{keyword} {value[:80]!r} is not a valid UID (digits and dots, at most 64)")
    return value


def _text(ds: Dataset, keyword: str, limit: int) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, MultiValue | list):  # a multi-valued element: the first value is what an index needs
        value = value[0] if value else ""
    return str(value).strip()[:limit]


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _date(value: str) -> str:
    return value if len(value) == 8 and value.isdigit() else ""
