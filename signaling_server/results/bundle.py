"""A study's images as one download (docs/RESULTS.md): pure file work, run in a thread.

DICOM: every stored object of the study as it was stored, laid out by pydicom's `FileSet` with a DICOMDIR (a
media file-set any viewer or PACS import reads; an empty Study ID, which its study record needs, is given the
accession number in the copy); an object `FileSet` cannot index (a required attribute missing)
leaves the DICOMDIR out and the archive holds the objects by SOP Instance UID. JPEG: the first frame of each image
rendered as the viewer shows it (clips give their first frame); objects without pixels (the report's SR) are left
out. Both are written to a temporary file in the store's own private folder and streamed from it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pydicom.fileset import FileSet

from recordings.media import quiet_pydicom
from signaling_server import errors
from signaling_server.dicomstore import render
from signaling_server.dicomstore.parsing import read_dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredObject:
    path: Path  # the blob
    sop_uid: str
    series_number: int
    instance_number: int
    has_pixels: bool


def dicom_zip(objects: list[StoredObject], tmp: Path) -> IO[bytes]:
    """The objects as a zip with a DICOMDIR; the returned file is already unlinked (read it, then close it)."""
    work = Path(tempfile.mkdtemp(dir=tmp))
    try:
        folder = work / "fileset"
        try:
            _file_set(objects, folder)
        except (ValueError, KeyError, AttributeError, TypeError) as exc:
            log.info("no DICOMDIR for this download (%s): the objects alone", exc)
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            for n, obj in enumerate(objects, start=1):
                shutil.copyfile(obj.path, folder / f"{n:04d}-{obj.sop_uid}.dcm")
        return _zipped(folder, tmp, zipfile.ZIP_STORED)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _file_set(objects: list[StoredObject], folder: Path) -> None:
    file_set = FileSet()
    # FileSet stages its copies in a TemporaryDirectory of the system's /tmp; patient data stays in the server's
    # private folder (docs/SECURITY.md §9), so its stage moves next to `folder`, and is removed when done.
    file_set._stage["t"].cleanup()
    file_set._stage["t"] = tempfile.TemporaryDirectory(dir=folder.parent)
    file_set._stage["path"] = Path(file_set._stage["t"].name)
    try:
        with quiet_pydicom():
            file_set.ID = "TELEUS"
            for obj in objects:
                ds = read_dataset(obj.path.read_bytes())
                if not ds.get("StudyID"):  # type 2 in the objects, required by the DICOMDIR's study record
                    ds.StudyID = (ds.get("AccessionNumber") or "1")[:16]
                file_set.add(ds)
            file_set.write(folder)
    finally:
        file_set._stage["t"].cleanup()


def jpeg_zip(objects: list[StoredObject], tmp: Path) -> IO[bytes]:
    """The first frame of each image as JPEG, named by series and instance number."""
    work = Path(tempfile.mkdtemp(dir=tmp))
    try:
        for obj in objects:
            if not obj.has_pixels:
                continue
            try:
                with quiet_pydicom():
                    data = render.render(read_dataset(obj.path.read_bytes()), 0, media_type=render.JPEG, quality=92)
            except errors.TeleusError as exc:
                log.info("image %s left out of the JPEG download: %s", obj.sop_uid, exc.message)
                continue
            name = f"S{obj.series_number:03d}-I{obj.instance_number:04d}-{obj.sop_uid[-12:]}.jpg"
            (work / name).write_bytes(data)
        return _zipped(work, tmp, zipfile.ZIP_STORED)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _zipped(folder: Path, tmp: Path, compression: int) -> IO[bytes]:
    out = tempfile.TemporaryFile(dir=tmp)  # unlinked at once: nothing is left behind if the server dies
    with zipfile.ZipFile(out, "w", compression) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(folder).as_posix())
    out.seek(0)
    return out
