"""WADO-RS (PS3.18 §10.4): instances as multipart/related application/dicom, metadata as DICOM JSON, rendered
frames as JPEG or PNG.

Transfer syntax (Accept `multipart/related; type="application/dicom"; transfer-syntax=…`): `*` sends each object
as stored; no parameter means Explicit VR Little Endian (the PS3.18 default), converted when the object is stored
otherwise; any other UID is sent only by objects stored in it. Everything is checked before the first byte goes
out, so a refusal is a clean 406.

Metadata leaves bulk data out (Pixel Data, and any binary value over 1 KiB): the console draws frames through
`/rendered`, not from raw pixels.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from recordings.media import quiet_pydicom
from signaling_server import errors
from signaling_server.db.models import Instance, Series
from signaling_server.dicomstore import render
from signaling_server.dicomstore.blobs import BlobStore
from signaling_server.dicomstore.limits import ImageLimits
from signaling_server.dicomstore.multipart import MultipartWriter, media_ranges
from signaling_server.dicomstore.parsing import read_dataset
from signaling_server.dicomstore.transcode import can_convert, transcode

T = TypeVar("T")
BULK_THRESHOLD = 1024
ANY = "*"
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_DICOM_TYPES = ("application/dicom", "application/*", "*/*")
_JSON_TYPES = ("application/dicom+json", "application/json", "application/*", "*/*")
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def wanted_transfer_syntax(accept: str) -> str:
    """The transfer syntax to send instances in ("*" = as stored); NotAcceptable when nothing offered fits."""
    for kind, params in media_ranges(accept or "*/*"):
        if kind in ("*/*", "multipart/*") or (
            kind == "multipart/related" and params.get("type", "application/dicom").lower() in _DICOM_TYPES
        ):
            return params.get("transfer-syntax", ExplicitVRLittleEndian).strip() or ExplicitVRLittleEndian
    raise errors.NotAcceptable('instances are sent as multipart/related; type="application/dicom"')


def check_json_accept(accept: str) -> None:
    if not any(kind in _JSON_TYPES for kind, _ in media_ranges(accept or "*/*")):
        raise errors.NotAcceptable("this resource is application/dicom+json")


def rendered_type(accept: str, query_accept: str | None) -> str:
    """image/jpeg or image/png from `?accept=` (first) or the Accept header; JPEG when anything goes."""
    offered = media_ranges(query_accept) if query_accept else media_ranges(accept or "*/*")
    for kind, _ in offered:
        if kind in render.MEDIA_TYPES:
            return kind
        if kind in ("*/*", "image/*"):
            return render.JPEG
    raise errors.NotAcceptable("rendered images are image/jpeg or image/png")


async def send_instances(
    request: web.Request, blobs: BlobStore, rows: list[tuple[Instance, Series]], accept: str
) -> web.StreamResponse:
    wanted = wanted_transfer_syntax(accept)
    for instance, _ in rows:
        if wanted != ANY and not can_convert(instance.transfer_syntax_uid, wanted):
            raise errors.NotAcceptable(
                f"instance {instance.sop_uid} is stored as {instance.transfer_syntax_uid} and cannot be sent as "
                f"{wanted}; ask for transfer-syntax=*"
            )
    writer = MultipartWriter("application/dicom")
    response = web.StreamResponse(headers={"Content-Type": writer.content_type, **SECURITY_HEADERS})
    await response.prepare(request)
    for instance, _ in rows:
        raw = await blobs.read(instance.sha256)
        syntax = instance.transfer_syntax_uid
        if wanted not in (ANY, syntax):
            raw = await asyncio.to_thread(transcode, raw, wanted)
            syntax = wanted
        await response.write(writer.head(f"application/dicom; transfer-syntax={syntax}"))
        await response.write(raw)
        await response.write(writer.tail())
    await response.write(writer.closing())
    await response.write_eof()
    return response


async def metadata(blobs: BlobStore, rows: list[tuple[Instance, Series]]) -> list[dict[str, Any]]:
    found = []
    for instance, _ in rows:
        raw = await blobs.read(instance.sha256)
        found.append(await asyncio.to_thread(metadata_json, raw))
    return found


def metadata_json(raw: bytes) -> dict[str, Any]:
    """The dataset of one Part 10 object as DICOM JSON, bulk data left out."""
    with quiet_pydicom():
        ds = read_dataset(raw)
        _drop_bulk(ds)
        return ds.to_json_dict(bulk_data_threshold=BULK_THRESHOLD * 64)


def _drop_bulk(ds: Dataset) -> None:
    for element in list(ds):
        if element.VR == "SQ":
            for item in element.value:
                _drop_bulk(item)
        elif element.VR in _BINARY_VRS and element.value is not None and len(element.value) > BULK_THRESHOLD:
            del ds[element.tag]


async def rendered(
    request: web.Request,
    blobs: BlobStore,
    instance: Instance,
    frame: int | None,
    limits: ImageLimits,
    *,
    mask_banners: bool = False,
) -> web.Response:
    """Frame `frame` (from 1; None: the first) of an instance as JPEG or PNG, with the burned-in banner black for a
    de-identified reader (`mask_banners`). An object over today's caps (stored before they were set or lowered) is
    not decoded: 422 not_renderable."""
    pixels = (instance.rows or 0) * (instance.columns or 0)
    if pixels > limits.max_pixels_per_frame or instance.frames > limits.max_frames:
        raise errors.NotRenderable(
            f"{instance.rows} × {instance.columns} × {instance.frames} frames is over this server's image limits"
        )
    media_type = rendered_type(request.headers.get("Accept", ""), request.query.get("accept"))
    window = _option(request, "window", render.Window.parse)
    viewport = _option(request, "viewport", _viewport)
    quality = _option(request, "quality", _quality) or 90
    index = (frame or 1) - 1
    raw = await blobs.read(instance.sha256)
    data = await asyncio.to_thread(_render, raw, index, window, viewport, media_type, quality, mask_banners)
    return web.Response(body=data, content_type=media_type, headers={"Cache-Control": "no-store"})


def _render(
    raw: bytes,
    index: int,
    window: render.Window | None,
    viewport: tuple[int, int] | None,
    media_type: str,
    quality: int,
    mask_banners: bool,
) -> bytes:
    with quiet_pydicom():
        ds = read_dataset(raw)
        return render.render(
            ds,
            index,
            window=window,
            viewport=viewport,
            media_type=media_type,
            quality=quality,
            mask_banners=mask_banners,
        )


def _option(request: web.Request, name: str, parse: Callable[[str], T]) -> T | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse(raw)
    except ValueError as exc:
        raise errors.InvalidRequest(f"{name}: {exc}") from None


def _viewport(text: str) -> tuple[int, int]:
    fields = text.split(",")
    if len(fields) < 2:
        raise ValueError("viewport is width,height")
    width, height = int(fields[0]), int(fields[1])
    if not (1 <= width <= 8192 and 1 <= height <= 8192):
        raise ValueError("viewport sides are 1..8192")
    return width, height


def _quality(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise ValueError("quality is 1..100")
    return value


def frame_number(text: str) -> int:
    """`/frames/{n}`: one frame number from 1 (a list like 1,3 is not rendered as one image)."""
    if not text.isdigit() or int(text) < 1:
        raise errors.InvalidRequest("a rendered frame is one frame number, from 1")
    return int(text)
