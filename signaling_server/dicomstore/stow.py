"""STOW-RS (PS3.18 §10.5): read a multipart/related body of application/dicom parts, store each, answer per part.

The body is streamed to one anonymous file on disk and counted: a Content-Length over `max_dicom_bytes` is refused
before a byte is read, a body that grows past it as soon as it does, and a part beyond `max_stow_parts` as it
begins (`too_many_parts`); either way nothing is stored, because parts are stored only once the whole body has
arrived and parsed, and the file is gone once closed. Then each part, read back one at a time, goes through
`ingest.store_instance`, which holds it to the image caps (`limits.py`).

The answer (application/dicom+json) lists stored parts in ReferencedSOPSequence and failed ones in
FailedSOPSequence with a FailureReason; 200 when all were stored, 202 when some, 409 when none. Each failed item
also carries teleus's stable error code and message in a private block (creator "TELEUS 1.0", group 0009:
(0009,1001) LO code, (0009,1002) LT message, at most 256 characters, so the answer stays bounded by the number
of parts). See DICOMWEB.md for the FailureReason of each code.
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from aiohttp import web
from pydicom.dataset import Dataset

from recordings.media import quiet_pydicom
from signaling_server import errors
from signaling_server.dicomstore.ingest import DicomStore, StoredInstance, store_instance
from signaling_server.dicomstore.multipart import MultipartParser, Part, boundary_of, media_type

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
PRIVATE_CREATOR = "TELEUS 1.0"
PRIVATE_GROUP = 0x0009

# FailureReason (0008,1197) per error code (PS3.18 Table I.2-2 and the C-STORE statuses of PS3.4 B.2.3).
# 0110H and A7xxH say "the server's trouble, try again"; every refusal of the object itself is a Cxxx or A9xx
# (or 0124H), which senders such as the edge's outbox take as final.
PROCESSING_FAILURE = 0x0110
NOT_AUTHORIZED = 0x0124  # Refused: not authorized (the object's study belongs to another site)
OUT_OF_RESOURCES = 0xA700
DATA_SET_MISMATCH = 0xA900  # Error: data set does not match SOP class (a required attribute missing, wrong study)
CANNOT_UNDERSTAND = 0xC000  # Error: cannot understand (not DICOM, truncated, UID stored with other content)
TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122  # Referenced Transfer Syntax not supported
OUT_OF_RESOURCES_CODE, PROCESSING_FAILURE_CODE = "out_of_resources", "processing_failure"
MAX_MESSAGE = 256
FAILURE_REASONS = {
    OUT_OF_RESOURCES_CODE: OUT_OF_RESOURCES,
    PROCESSING_FAILURE_CODE: PROCESSING_FAILURE,
    "invalid_dicom": CANNOT_UNDERSTAND,
    "pixel_data_mismatch": CANNOT_UNDERSTAND,
    "unknown_transfer_syntax": TRANSFER_SYNTAX_NOT_SUPPORTED,
    # Over a cap: not A7xx "out of resources", which every sender retries; the same object is refused for ever.
    "too_large": CANNOT_UNDERSTAND,
    "image_too_large": CANNOT_UNDERSTAND,
    "unsupported_media_type": CANNOT_UNDERSTAND,
    "instance_conflict": CANNOT_UNDERSTAND,  # never 0111H "duplicate": the edge takes that as "already stored"
    "missing_attribute": DATA_SET_MISMATCH,
    "study_mismatch": DATA_SET_MISMATCH,
    "forbidden": NOT_AUTHORIZED,
    "invalid_request": CANNOT_UNDERSTAND,
}


@dataclass(frozen=True)
class Outcome:
    """One part's fate: stored (`stored`) or refused (`code`, `message`), with whatever UIDs could be read."""

    sop_class_uid: str | None
    sop_uid: str | None
    stored: StoredInstance | None = None
    code: str | None = None
    message: str = ""


async def read_parts(request: web.Request, limit: int, max_parts: int, folder: Path) -> MultipartParser:
    """The whole multipart/related body, its parts in the parser's spool file (`parser.parts`; the caller closes
    the parser); TooLarge, TooManyParts, BadMultipart or UnsupportedMediaType, with nothing left behind."""
    content_type = request.headers.get("Content-Type", "")
    boundary = boundary_of(content_type)
    declared = media_type(content_type)[1].get("type", "application/dicom").lower()
    if declared != "application/dicom":
        raise errors.UnsupportedMediaType(f'STOW-RS takes multipart/related; type="application/dicom", not {declared}')
    if request.content_length is not None and request.content_length > limit:
        raise errors.TooLarge(f"the body ({request.content_length} bytes) is over the limit of {limit} bytes")
    parser = await asyncio.to_thread(MultipartParser, boundary, folder, max_parts)
    received = 0
    try:
        async for chunk in request.content.iter_chunked(CHUNK):
            received += len(chunk)
            if received > limit:
                raise errors.TooLarge(f"the body is over the limit of {limit} bytes")
            await asyncio.to_thread(parser.feed, chunk)  # it writes to disk
        if not parser.finish():
            raise errors.BadMultipart("the body has no parts")
    except BaseException:
        parser.close()
        raise
    return parser


async def store_parts(store: DicomStore, parts: list[Part], *, site_id: str, study_uid: str | None) -> list[Outcome]:
    """Each part in turn (one in memory at a time)."""
    return [await _store_part(store, part, site_id, study_uid) for part in parts]


async def _store_part(store: DicomStore, part: Part, site_id: str, study_uid: str | None) -> Outcome:
    if part.content_type != "application/dicom":
        message = f"a part of type {part.content_type}: only application/dicom is stored"
        return Outcome(None, None, code=errors.UnsupportedMediaType.code, message=message)
    raw = await asyncio.to_thread(part.read)  # up to max_dicom_bytes from the spool file
    try:
        stored = await store_instance(store, raw, site_id=site_id, received_via="stow", study_uid=study_uid)
    except errors.TeleusError as exc:
        log.info("STOW part refused (%s): %s", exc.code, exc.message)
        return await _refused(raw, exc.code, exc.message)
    except OSError as exc:
        log.exception("STOW part could not be written")
        return await _refused(raw, OUT_OF_RESOURCES_CODE, f"storage failed: {exc.strerror or exc}")
    except Exception:
        log.exception("STOW part failed")
        return await _refused(raw, PROCESSING_FAILURE_CODE, "the server failed to store this part")
    return Outcome(stored.sop_class_uid, stored.sop_uid, stored=stored)


async def _refused(raw: bytes, code: str, message: str) -> Outcome:
    sop_class, sop = await asyncio.to_thread(_uids_of, raw)
    return Outcome(sop_class, sop, code=code, message=message)


def _uids_of(raw: bytes) -> tuple[str | None, str | None]:
    """The SOP Class and Instance UIDs of a refused part, when they can be read at all."""
    try:
        with quiet_pydicom():
            ds = pydicom.dcmread(io.BytesIO(raw), force=True, stop_before_pixels=True)
            return _str(ds.get("SOPClassUID")), _str(ds.get("SOPInstanceUID"))
    except Exception:  # garbage: no UIDs to report
        return None, None


def _str(value: object) -> str | None:
    """A UID worth echoing back (an invalid one is left out rather than repeated)."""
    text = str(value).strip() if value is not None else ""
    return text if 0 < len(text) <= 64 and set(text) <= set("0123456789.") else None


def answer(outcomes: list[Outcome], base: str, study_uid: str | None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, Store Instances Response Module as DICOM JSON)."""
    ds = Dataset()
    stored = [o for o in outcomes if o.stored is not None]
    failed = [o for o in outcomes if o.code is not None]
    studies = {o.stored.study_uid for o in stored if o.stored is not None}
    retrieve_study = study_uid or (next(iter(studies)) if len(studies) == 1 else None)
    if retrieve_study:
        ds.RetrieveURL = f"{base}/studies/{retrieve_study}"
    if stored:
        ds.ReferencedSOPSequence = [_referenced(o.stored, base) for o in stored if o.stored is not None]
    if failed:
        ds.FailedSOPSequence = [_failed(o) for o in failed]
    status = 200 if not failed else 202 if stored else 409
    return status, ds.to_json_dict()


def _referenced(stored: StoredInstance, base: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = stored.sop_class_uid
    item.ReferencedSOPInstanceUID = stored.sop_uid
    url = f"{base}/studies/{stored.study_uid}/series/{stored.series_uid}/instances/{stored.sop_uid}"
    item.RetrieveURL = url
    return item


def _failed(outcome: Outcome) -> Dataset:
    assert outcome.code is not None
    item = Dataset()
    if outcome.sop_class_uid:
        item.ReferencedSOPClassUID = outcome.sop_class_uid
    if outcome.sop_uid:
        item.ReferencedSOPInstanceUID = outcome.sop_uid
    item.FailureReason = FAILURE_REASONS.get(outcome.code, PROCESSING_FAILURE)
    block = item.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", outcome.code)
    block.add_new(0x02, "LT", outcome.message[:MAX_MESSAGE])
    return item
