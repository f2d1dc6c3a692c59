"""The teaching export: a de-identified copy of a session recording or of a still (docs/SESSIONS.md).

A recording (a folder of segments, RECORDINGS.md) becomes a folder of the same names:

- ``media[.k].mp4``: every frame decoded, the burned-in banner blacked out, re-encoded (H.264, yuv420p) at the
  same size, rate and timestamps, so the timeline still lines up (recordings/masked_video.py, which the server's
  review copy for trainers uses too). The voice track is left out: what is said cannot be checked for names.
- ``timeline[.k].jsonl``: the same events without identifying content (:func:`deidentify_timeline`).
- ``manifest.json``, written last and atomically: the files with their SHA-256, the banner boxes per segment
  and what was removed. A folder without it is an export that did not finish.

A still (an Ultrasound Image or Multi-frame Image) becomes a de-identified copy (:func:`export_still`): the banner
masked (found over its frames for a clip, by :func:`recordings.deidentify.still_banners` for a single frame, in
the field of view of its ultrasound regions when it has some), the metadata scrubbed, written uncompressed
(Explicit VR Little Endian; Lossy Image Compression keeps the source's history).

Everything here blocks (decoding, encoding, disk): the server runs it in a thread. Errors are recordings.errors (the
server answers them with its own of the same code): ``invalid_dicom`` (not a DICOM object),
``not_renderable`` (media that cannot be decoded or has no pixels), ``not_found`` (a folder with no media).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels.processing import apply_color_lut
from pydicom.pixels.utils import pixel_array
from pydicom.uid import ExplicitVRLittleEndian

from qc.fov import Box
from recordings import errors
from recordings import timeline as tl
from recordings.deidentify import UidMap, dataset_fov, find_banners, scrub, still_banners
from recordings.masked_video import SAMPLE_FRAMES, count_frames, reencode, sample_frames, spread
from recordings.media import quiet_pydicom
from recordings.private_files import FILE_MODE, make_private_dirs, private_opener, write_private
from recordings.store import file_name, parse_name

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
VERSION = 1
EXPORT_ID = "teaching-export"  # the consultation id every exported timeline carries
REMOVED_CHAT_TEXT = "(removed)"
NO_BANNER = "no burned-in banner found (no static text above or below the image): check the pixels by eye"
LABEL_KEYS = frozenset({"side", "structure", "plane", "mode", "doppler_angle"})  # qc/labels.py
RECORDING_REMOVED = (
    "burned-in patient banner (masked in every frame)",
    "voice track (spoken names cannot be checked)",
    "consultation id",
    "wall-clock start time (segments keep their offsets from the first)",
    "participant names (replaced by their role)",
    "chat text (it may name the patient) and its sender's user id",
    "capture SOP Instance UIDs (remapped)",
    "capture labels other than side, structure, plane, mode and Doppler angle",
)
STILL_REMOVED = (
    "burned-in patient banner (masked in every frame)",
    "patient name and ID (replaced by TEACHING^CASE and TEACHING)",
    "birth date, sex, accession number, study ID (emptied)",
    "every person name: physicians, operators, readers (emptied or removed)",
    "institution, station, device serial number, addresses, comments and descriptions",
    "dates and times",
    "private elements",
    "UIDs (remapped)",
    "file meta information other than the SOP and transfer syntax UIDs",
)
TEACHING_NAME, TEACHING_ID = "TEACHING^CASE", "TEACHING"
_PIXEL_TAGS = (0x7FE00010, 0x7FE00001, 0x7FE00002)  # Pixel Data, Extended Offset Table and its Lengths
_PALETTE = (0x00281101, 0x00281102, 0x00281103, 0x00281199, 0x00281201, 0x00281202, 0x00281203,
            0x00281221, 0x00281222, 0x00281223)  # fmt: skip
_EMPTY_MEANS_ABSENT = (  # attributes of type 1C or 3: once scrubbed empty, left out rather than sent empty
    "AcquisitionDateTime", "AcquisitionDate", "AcquisitionTime", "SeriesDate", "SeriesTime",
    "InstanceCreationDate", "InstanceCreationTime",
)  # fmt: skip
Progress = Callable[[float], None]


@dataclass(frozen=True)
class ExportedFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class SegmentReport:
    segment: int
    media: str
    timeline: str | None
    width: int
    height: int
    fps: float
    frames: int
    duration_s: float
    banners: tuple[Box, ...]
    removed_events: dict[str, int] = dataclasses.field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class StillReport:
    frames: int
    width: int
    height: int
    banners: tuple[Box, ...]
    fov: str  # "region": from the ultrasound regions; "estimated": from the pixels


@dataclass(frozen=True)
class Manifest:
    kind: str  # "recording" | "still"
    created_at: str
    files: tuple[ExportedFile, ...]
    removed: tuple[str, ...]
    segments: tuple[SegmentReport, ...] = ()
    still: StillReport | None = None
    warnings: tuple[str, ...] = ()  # what a person should check before teaching with the export
    version: int = VERSION

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for segment in data["segments"]:
            segment["banners"] = [_box(b) for b in segment["banners"]]
        if data["still"] is not None:
            data["still"]["banners"] = [_box(b) for b in data["still"]["banners"]]
        else:
            del data["still"]
        return data


def _box(box: dict[str, int]) -> dict[str, int]:
    return {"x": box["x"], "y": box["y"], "w": box["w"], "h": box["h"]}


# ---- the recording -----------------------------------------------------------------------------------------------


def export_recording(src: Path, dest: Path, progress: Progress | None = None) -> Manifest:
    """Export the recording folder `src` into `dest` (made if missing); `progress(fraction)` is called as frames
    are done and may raise to stop the export. On any failure what was written is removed and the error raised."""
    segments = media_segments(src)
    if not segments:
        raise errors.NotFound(f"{src} holds no recording media (media.mp4, media.k.mp4)")
    make_private_dirs(dest)
    written: list[Path] = []
    try:
        return _export_recording(src, dest, segments, progress or (lambda _: None), written)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def media_segments(folder: Path) -> list[int]:
    """The segments of a recording folder that have media bytes, in order."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        parsed = parse_name(path.name)
        if parsed is not None and parsed[0] == "media" and path.is_file() and path.stat().st_size > 0:
            found.append(parsed[1])
    return sorted(found)


def _export_recording(src: Path, dest: Path, segments: list[int], progress: Progress, written: list[Path]) -> Manifest:
    timelines = {k: _read_timeline(src / file_name("timeline", k)) for k in segments}
    starts = [t.header.started_at_ms for t in timelines.values() if t is not None]
    first_start = min(starts, default=0.0)
    totals = {k: count_frames(src / file_name("media", k)) for k in segments}
    grand_total, done = max(1, sum(totals.values())), 0
    uids = UidMap()
    reports, files, warnings = [], [], []
    for k in segments:
        media = file_name("media", k)

        def step(frames: int, before: int = done) -> None:
            progress(min(1.0, (before + frames) / grand_total))

        banners = find_banners(sample_frames(src / media))
        if not banners:
            warnings.append(f"segment {k}: {NO_BANNER}")
            log.warning("teaching export %s: segment %s: %s", dest.name, k, NO_BANNER)
        written.append(dest / media)
        video, _ = reencode(src / media, dest / media, banners, step)
        done += video.frames
        files.append(_file(dest / media))
        timeline_name, removed = None, Counter[str]()
        timeline = timelines[k]
        if timeline is not None:
            timeline_name = file_name("timeline", k)
            written.append(dest / timeline_name)
            lines, removed = deidentify_timeline(timeline, first_start, uids)
            (dest / timeline_name).write_text("".join(tl.encode(line) + "\n" for line in lines), encoding="utf-8")
            files.append(_file(dest / timeline_name))
        removed_events = {what: count for what, count in sorted(removed.items()) if count}
        report = SegmentReport(k, media, timeline_name, **video.as_fields(), banners=tuple(banners),
                               removed_events=removed_events)  # fmt: skip
        reports.append(report)
        log.info("teaching export %s: segment %s, %s frames, banners %s", dest.name, k, video.frames, banners)
    manifest = Manifest("recording", _now(), tuple(files), RECORDING_REMOVED, tuple(reports), warnings=tuple(warnings))
    for path in written:  # PyAV made the media with the process's umask: the export is the owner's only
        os.chmod(path, FILE_MODE)
    written.append(dest / f".{MANIFEST}.part")
    write_manifest(dest, manifest)
    progress(1.0)
    return manifest


def _read_timeline(path: Path) -> tl.Timeline | None:
    if not path.is_file() or path.stat().st_size == 0:
        return None
    try:
        return tl.decode_timeline(path.read_bytes())
    except tl.TimelineError as exc:
        raise errors.NotRenderable(f"{path.name} is not a valid timeline: {exc.message}") from None


def write_manifest(dest: Path, manifest: Manifest) -> None:
    """manifest.json, atomically: a reader sees the whole manifest or none."""
    temporary = dest / f".{MANIFEST}.part"
    with open(temporary, "w", encoding="utf-8", opener=private_opener) as out:
        json.dump(manifest.to_dict(), out, ensure_ascii=False, indent=2)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, dest / MANIFEST)


def _file(path: Path) -> ExportedFile:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
    return ExportedFile(path.name, path.stat().st_size, digest.hexdigest())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# ---- the timeline ------------------------------------------------------------------------------------------------


def deidentify_timeline(
    timeline: tl.Timeline, first_start_ms: float, uids: UidMap
) -> tuple[list[tl.Header | tl.Event], Counter[str]]:
    """The timeline's lines without identifying content, and how many of each thing were removed. The header
    loses the consultation id and its wall clock (kept as the offset from the first segment's start, so segments
    still line up); names become roles; chat keeps its time and role but not its text or sender; captures keep
    their labels (the known keys) with their SOP Instance UID remapped through `uids`. Marks, pointers, QC,
    link, state and join/leave events keep their times and peer ids (random per page)."""
    removed: Counter[str] = Counter()
    header = dataclasses.replace(
        timeline.header,
        consultation_id=EXPORT_ID,
        started_at_ms=max(0.0, timeline.header.started_at_ms - first_start_ms),
    )
    events = [_event(e, uids, removed) for e in timeline.events]
    if timeline.torn_tail:
        removed["torn_last_line"] += 1
    return [header, *events], removed


def _event(event: tl.Event, uids: UidMap, removed: Counter[str]) -> tl.Event:
    if isinstance(event, tl.Chat):
        removed["chat_text"] += 1
        return dataclasses.replace(event, text=REMOVED_CHAT_TEXT, name=event.role, from_=None)
    if isinstance(event, tl.Join):
        removed["names"] += bool(event.name)
        return dataclasses.replace(event, name=event.role)
    if isinstance(event, tl.Leave):
        removed["names"] += bool(event.name)
        return dataclasses.replace(event, name=event.role)
    if isinstance(event, tl.Capture):
        labels = {key: value for key, value in event.labels.items() if key in LABEL_KEYS}
        removed["capture_labels"] += len(event.labels) - len(labels)
        removed["capture_uids"] += 1
        return dataclasses.replace(event, sop_uid=uids(event.sop_uid), labels=labels)
    return event


# ---- stills ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StillExport:
    data: bytes  # the de-identified Part 10 object
    frames: int
    width: int
    height: int
    banners: tuple[Box, ...]
    fov: str  # "region" (from the ultrasound regions) or "estimated" (from the pixels)
    removed: tuple[str, ...] = STILL_REMOVED


def export_still(raw: bytes) -> bytes:
    """A de-identified copy of a DICOM image, Part 10 bytes in and out (:func:`deidentify_still`)."""
    return deidentify_still(raw).data


def deidentify_still(raw: bytes) -> StillExport:
    """The banner masked in every frame, the metadata scrubbed, the pixels uncompressed (Explicit VR Little
    Endian). Raises InvalidDicom (not DICOM) or NotRenderable (no pixels, or pixels this server cannot decode)."""
    ds = _read_dicom(raw)
    pixels, photometric, bits = _stored_pixels(ds)
    count, height, width = pixels.shape[:3]
    views = [_grey_view(pixels[i], photometric, bits) for i in spread(count, SAMPLE_FRAMES)]
    fov = dataset_fov(ds, (height, width))
    banners = find_banners(views, fov) if len(views) >= 2 else still_banners(views[0], fov)
    black = _black(photometric, bits, pixels.dtype)
    for box in banners:
        pixels[:, box.slices[0], box.slices[1]] = black
    for tag in (*_PIXEL_TAGS, *_PALETTE):  # the pixels are set again below, a palette as RGB
        ds.pop(tag, None)
    clean = scrub(ds, UidMap(), patient_name=TEACHING_NAME, patient_id=TEACHING_ID, pixels_masked=True)
    for keyword in _EMPTY_MEANS_ABSENT:
        if keyword in clean and not clean[keyword].value:
            del clean[keyword]
    clean.file_meta = FileMetaDataset()  # only what Part 10 needs: no sender's AE title or application
    clean.file_meta.MediaStorageSOPClassUID = clean.SOPClassUID
    clean.file_meta.MediaStorageSOPInstanceUID = clean.SOPInstanceUID
    clean.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    multi_frame = "NumberOfFrames" in ds
    clean.set_pixel_data(pixels if multi_frame else pixels[0], photometric, bits, generate_instance_uid=False)
    out = io.BytesIO()
    with quiet_pydicom():  # little endian whatever the source was (a retired big-endian object is converted)
        pydicom.dcmwrite(out, clean, implicit_vr=False, little_endian=True, enforce_file_format=True)
    how = "region" if fov is not None else "estimated"
    return StillExport(out.getvalue(), count, width, height, tuple(banners), how)


def _read_dicom(raw: bytes) -> Dataset:
    if raw[128:132] != b"DICM":
        raise errors.InvalidDicom("not a DICOM Part 10 object (no DICM after the 128-byte preamble)")
    with quiet_pydicom():
        try:
            ds = pydicom.dcmread(io.BytesIO(raw))
        except Exception as exc:  # pydicom raises many kinds on garbage: all mean the same here
            raise errors.InvalidDicom(f"not a readable DICOM object: {exc}") from None
    if "PixelData" not in ds:
        raise errors.NotRenderable("the object has no image (no Pixel Data)")
    return ds


def _stored_pixels(ds: Dataset) -> tuple[np.ndarray, str, int]:
    """(frames × rows × columns [× 3], photometric, bits stored) as they will be written: grey stays grey,
    YBR colour is converted to RGB, a palette is expanded to RGB."""
    photometric = str(ds.get("PhotometricInterpretation", ""))
    try:
        with quiet_pydicom():
            pixels = pixel_array(ds)
            if photometric == "PALETTE COLOR":
                pixels = apply_color_lut(pixels, ds)
    except Exception as exc:  # a codec this server lacks, or pixel data that does not fit its attributes
        raise errors.NotRenderable(f"the pixel data cannot be decoded: {exc}") from None
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        bits = int(ds.get("BitsStored", 8))
        grey = pixels.ndim == 3 if int(ds.get("NumberOfFrames", 1) or 1) > 1 else pixels.ndim == 2
        if not grey:
            raise errors.NotRenderable("grey pixel data with more than one sample")
    else:
        if pixels.dtype != np.uint8:
            pixels = (pixels >> (8 * pixels.dtype.itemsize - 8)).astype(np.uint8)
        photometric, bits = "RGB", 8
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames == 1:
        pixels = pixels[np.newaxis]
    return np.ascontiguousarray(pixels), photometric, bits


def _grey_view(frame: np.ndarray, photometric: str, bits: int) -> np.ndarray:
    """One frame as 8-bit grey as a screen shows it: what the text finder measures its contrast on."""
    if photometric == "RGB":
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if frame.dtype != np.uint8 or bits != 8:
        low = -(1 << (bits - 1)) if frame.dtype.kind == "i" else 0
        frame = np.clip((frame.astype(np.float32) - low) * 255.0 / ((1 << bits) - 1), 0, 255).astype(np.uint8)
    return 255 - frame if photometric == "MONOCHROME1" else frame


def _black(photometric: str, bits: int, dtype: np.dtype[Any]) -> int:
    signed = dtype.kind == "i"
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return high if photometric == "MONOCHROME1" else low


# ---- the command line --------------------------------------------------------------------------------------------


def still_manifest(exported: StillExport, name: str) -> Manifest:
    digest = hashlib.sha256(exported.data).hexdigest()
    report = StillReport(exported.frames, exported.width, exported.height, exported.banners, exported.fov)
    warnings = () if exported.banners else (NO_BANNER,)
    files = (ExportedFile(name, len(exported.data), digest),)
    return Manifest("still", _now(), files, exported.removed, still=report, warnings=warnings)


def export_path(path: Path, out: Path) -> Manifest:
    """`teleus teaching-export`: a recording folder into the folder `out` (new, or empty), or a DICOM file into
    the file `out` (into `out`/teaching.dcm when `out` is a folder)."""
    if path.is_dir():
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise errors.Conflict(f"{out} exists and is not an empty folder: the export goes into a new one")
        return export_recording(path, out)
    if not path.is_file():
        raise errors.NotFound(f"{path} is neither a recording folder nor a file")
    exported = deidentify_still(path.read_bytes())
    target = out / "teaching.dcm" if out.is_dir() else out
    make_private_dirs(target.parent)
    write_private(target, exported.data)
    return still_manifest(exported, target.name)
