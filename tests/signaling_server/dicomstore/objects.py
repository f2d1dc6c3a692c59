"""DICOM objects for the store's tests: small synthetic images with chosen patients and UIDs, real test files by
exact name, multipart bodies, and a snapshot of everything the store holds (to prove a refusal left no trace).
"""

from __future__ import annotations

import io
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from aiohttp import web
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid
from sqlalchemy import func, select

from signaling_server.appkeys import DB
from signaling_server.db.models import ForwardJob, Instance, Patient, PatientIdentifier, Series, Study, StudyEvent
from signaling_server.dicomstore.blobs import BLOBS

SOP_CLASSES = {
    "US": "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image Storage
    "CR": "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
}


def real_file(name: str) -> bytes:
    """A pydicom / pydicom-data test file by its exact name (never a pattern: that asks the network)."""
    path = get_testdata_file(name)
    assert path is not None, name
    return Path(str(path)).read_bytes()


def image(
    *,
    patient_id: str = "P-1",
    name: str = "Test^Patient",
    birth_date: str = "19700101",
    sex: str = "F",
    issuer: str = "",
    other_ids: tuple[tuple[str, str], ...] = (),
    modality: str = "US",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    accession: str = "ACC1",
    study_date: str = "20250102",
    rows: int = 48,
    columns: int = 64,
    rgb: bool = False,
    seed: int = 0,
    without: tuple[str, ...] = (),
) -> bytes:
    """A small, complete Part 10 image (UTF-8 character set) with the given patient and UIDs."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = SOP_CLASSES[modality]
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = name, patient_id, birth_date, sex
    if issuer:
        ds.IssuerOfPatientID = issuer
    if other_ids:
        ds.OtherPatientIDsSequence = [_other_id(i, v) for i, v in other_ids]
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = study_date, "101500", accession, "1"
    ds.ReferringPhysicianName, ds.StudyDescription = "", f"{modality} test"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer = modality, 1, 1, "teleus tests"
    pixels = np.random.default_rng(seed).integers(0, 256, (rows, columns, 3) if rgb else (rows, columns), np.uint8)
    ds.set_pixel_data(pixels, "RGB" if rgb else "MONOCHROME2", 8, generate_instance_uid=False)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword in without:
        delattr(ds, keyword)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def with_transfer_syntax(raw: bytes, uid: str) -> bytes:
    """The object with its file meta naming `uid` as its transfer syntax, whatever that is (pydicom refuses to
    write an unknown or truncated one); the dataset stays Explicit VR Little Endian."""
    ds = read(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about an invalid UI value: that is the point
        ds.file_meta.TransferSyntaxUID = uid
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    out.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(out, ds.file_meta, enforce_standard=False)
    write_dataset(out, ds)
    return out.getvalue()


def lying_image(rows: int, columns: int, pixel_data: bytes, frames: int | None = None, **changes: Any) -> bytes:
    """A small image whose header claims rows × columns (× frames) while its Pixel Data is `pixel_data`."""
    ds = read(image())
    ds.Rows, ds.Columns, ds.PixelData = rows, columns, pixel_data
    if frames is not None:
        ds.NumberOfFrames = frames
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def rle_image(rows: int, columns: int, frames: int = 1) -> bytes:
    """An RLE Lossless image of one grey value: a few KB on the wire, rows × columns × frames bytes decoded."""
    ds = read(image())
    ds.Rows, ds.Columns = rows, columns
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.PixelData = encapsulate([_rle_frame(rows, columns)] * frames)
    ds["PixelData"].VR = "OB"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _rle_frame(rows: int, columns: int) -> bytes:
    """One 8-bit RLE segment of zeros (PS3.5 G.3: runs of up to 128 equal bytes, header byte 257 - n)."""
    runs, rest = divmod(rows * columns, 128)
    segment = bytes([0x81, 0]) * runs + (bytes([257 - rest, 0]) if rest else b"")
    segment += b"\0" * (len(segment) % 2)
    header = (1).to_bytes(4, "little") + (64).to_bytes(4, "little") + b"\0" * 56
    return header + segment


def _other_id(issuer: str, value: str) -> Dataset:
    item = Dataset()
    item.PatientID, item.IssuerOfPatientID, item.TypeOfPatientID = value, issuer, "TEXT"
    return item


def read(raw: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(raw))


def multipart(parts: list[bytes | tuple[str, bytes]], boundary: str | None = None) -> tuple[str, bytes]:
    """(Content-Type, body) of a STOW-RS request; a part is bytes (application/dicom) or (content type, bytes)."""
    boundary = boundary or uuid.uuid4().hex
    chunks = []
    for part in parts:
        kind, data = part if isinstance(part, tuple) else ("application/dicom", part)
        chunks += [f"--{boundary}\r\nContent-Type: {kind}\r\n\r\n".encode(), data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return f'multipart/related; type="application/dicom"; boundary={boundary}', b"".join(chunks)


def split_multipart(content_type: str, body: bytes) -> list[bytes]:
    """The part bodies of a multipart/related answer (a simple reader, independent of the server's)."""
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"').encode()
    parts = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, rest = chunk.partition(b"\r\n\r\n")
        parts.append(rest[:-2])  # the CRLF before the next delimiter
    return parts


def failure(item: dict[str, Any]) -> tuple[int, str]:
    """(FailureReason, teleus error code) of one FailedSOPSequence item."""
    return item["00081197"]["Value"][0], item["00091001"]["Value"][0]


def value(ds_json: dict[str, Any], tag: str) -> Any:
    return ds_json[tag]["Value"][0] if ds_json.get(tag, {}).get("Value") else None


@dataclass(frozen=True)
class Snapshot:
    """Everything the store holds: blob files and row counts (a refused object must change none of it)."""

    blobs: frozenset[str]
    counts: tuple[int, ...]
    queue: tuple[tuple[str, str, int], ...]


async def snapshot(app: web.Application) -> Snapshot:
    root = app[BLOBS].root
    files = frozenset(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    async with app[DB]() as db:
        counts = []
        for model in (Patient, PatientIdentifier, Study, Series, Instance, StudyEvent, ForwardJob):
            counts.append(await db.scalar(select(func.count()).select_from(model)) or 0)
        queue = tuple((s.study_uid, s.state, s.instance_count) for s in await db.scalars(select(Study)))
    return Snapshot(files, tuple(counts), tuple(sorted(queue)))
