"""WADO-RS through the real app: instances back as sent (or converted on request), metadata, rendered frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from edge_capture.sources.synthetic import SyntheticSource
from signaling_server import errors
from signaling_server.dicomstore.wado import rendered_type, wanted_transfer_syntax
from tests.recordings.test_deidentify import best_match, rendered
from tests.recordings.test_teaching import NAME, edge_still, part10, scanner  # noqa: F401  (fixture)
from tests.signaling_server.audit.test_middleware import trail

from .conftest import Running
from .objects import image, read, real_file, split_multipart

DICOM_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*'
DICOM_DEFAULT = 'multipart/related; type="application/dicom"'


async def _get(server: Running, path: str, accept: str, who: str = "expert") -> tuple[int, str, bytes]:
    session = await server.bearer(who)
    async with session.get(server.base + path, headers={"Accept": accept}) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.read()


def _image(data: bytes) -> np.ndarray:
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded is not None
    return decoded


async def test_instances_come_back_as_stored_or_as_explicit_little_endian(server: Running) -> None:
    cine_raw, jpeg_raw, still_raw = (
        real_file("color3d_jpeg_baseline.dcm"),
        real_file("SC_rgb_jpeg_dcmtk.dcm"),
        real_file("US1_UNCR.dcm"),
    )
    cine, jpeg, still = await server.store(cine_raw), await server.store(jpeg_raw), await server.store(still_raw)
    path = f"/dicomweb/studies/{cine.study_uid}/series/{cine.series_uid}/instances/{cine.sop_uid}"
    status, content_type, body = await _get(server, path, DICOM_ANY)
    assert status == 200 and content_type.startswith("multipart/related")
    assert split_multipart(content_type, body) == [cine_raw]  # byte for byte, JPEG Baseline as it came
    status, _, body = await _get(server, path, DICOM_ANY.replace("*", "1.2.840.10008.1.2.4.70"))
    assert status == 406

    path = f"/dicomweb/studies/{jpeg.study_uid}/series/{jpeg.series_uid}/instances/{jpeg.sop_uid}"
    status, content_type, body = await _get(server, path, DICOM_DEFAULT)  # PS3.18 default: Explicit VR LE
    [converted] = split_multipart(content_type, body)
    ds, original = read(converted), read(jpeg_raw)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian and ds.SOPInstanceUID == jpeg.sop_uid
    assert ds.pixel_array.shape == original.pixel_array.shape

    status, content_type, body = await _get(server, f"/dicomweb/studies/{still.study_uid}", DICOM_DEFAULT)
    assert split_multipart(content_type, body) == [still_raw]  # already Explicit VR LE: untouched
    series_path = f"/dicomweb/studies/{still.study_uid}/series/{still.series_uid}"
    status, content_type, body = await _get(server, series_path, "*/*")
    assert status == 200 and len(split_multipart(content_type, body)) == 1
    status, _, _ = await _get(server, series_path, "application/pdf")
    assert status == 406


async def test_metadata_leaves_bulk_data_out(server: Running) -> None:
    raw = real_file("gdcm-US-ALOKA-16.dcm")
    stored = await server.store(raw)
    session = await server.bearer("expert")  # a trainer reads identified DICOM only with a grant (SECURITY.md §2)
    for path in (
        f"/dicomweb/studies/{stored.study_uid}/metadata",
        f"/dicomweb/studies/{stored.study_uid}/series/{stored.series_uid}/metadata",
        f"/dicomweb/studies/{stored.study_uid}/series/{stored.series_uid}/instances/{stored.sop_uid}/metadata",
    ):
        async with session.get(server.base + path) as response:
            assert response.status == 200 and response.content_type == "application/dicom+json"
            [meta] = await response.json(content_type=None)
        assert meta["00080018"]["Value"] == [stored.sop_uid]
        assert "7FE00010" not in meta  # Pixel Data
        assert "00186011" in meta  # the US regions (calipers need them)
        assert meta["00280004"]["Value"] == ["PALETTE COLOR"]


async def test_rendered_frames(server: Running) -> None:
    cine = await server.store(real_file("color3d_jpeg_baseline.dcm"))
    ct = await server.store(real_file("CT_small.dcm"))
    cine_path = f"/dicomweb/studies/{cine.study_uid}/series/{cine.series_uid}/instances/{cine.sop_uid}"
    status, content_type, body = await _get(server, cine_path + "/rendered", "image/jpeg")
    assert (status, content_type) == (200, "image/jpeg") and _image(body).shape == (480, 640, 3)
    first = _image(body)
    status, _, body = await _get(server, cine_path + "/frames/60/rendered", "*/*")
    assert status == 200 and np.abs(_image(body).astype(int) - first.astype(int)).mean() > 1  # another frame
    status, content_type, body = await _get(server, cine_path + "/frames/2/rendered?viewport=320,320", "image/png")
    assert content_type == "image/png" and _image(body).shape == (240, 320, 3)
    for bad, code in (("/frames/121/rendered", 404), ("/frames/0/rendered", 400), ("/rendered?viewport=0,1", 400)):
        assert (await _get(server, cine_path + bad, "image/jpeg"))[0] == code, bad
    assert (await _get(server, cine_path + "/rendered", "image/gif"))[0] == 406

    ct_path = f"/dicomweb/studies/{ct.study_uid}/series/{ct.series_uid}/instances/{ct.sop_uid}/rendered"
    _, content_type, wide = await _get(server, ct_path + "?accept=image/png&window=40,4000", "image/jpeg")
    _, _, narrow = await _get(server, ct_path + "?accept=image/png&window=40,40", "image/jpeg")
    assert content_type == "image/png"
    wide_img, narrow_img = _image(wide), _image(narrow)
    assert wide_img.shape == (128, 128)
    saturated = lambda img: np.mean((img == 0) | (img == 255))  # noqa: E731
    assert saturated(narrow_img) > saturated(wide_img)
    assert (await _get(server, ct_path + "?window=40", "image/png"))[0] == 400


async def test_a_trainers_rendered_frame_has_the_burned_in_banner_masked(
    server: Running, scanner: SyntheticSource  # noqa: F811
) -> None:
    """The site's sonographer sees the still as captured, banner and all; a trainer (de-identified sight) sees it
    with the banner black, in every rendered form the console asks for (the viewer, a frame, a thumbnail)."""
    for calibrated in (True, False):  # the field of view from the ultrasound regions, or estimated from the pixels
        stored = await server.store(part10(edge_still(scanner, calibrated)), site="a")
        path = f"/dicomweb/studies/{stored.study_uid}/series/{stored.series_uid}/instances/{stored.sop_uid}"
        template = rendered(NAME, scanner.layout.font_scale, scanner.layout.thickness)
        banner, fov = scanner.layout.banner, scanner.fov
        for form in ("/rendered", "/frames/1/rendered"):
            status, _, body = await _get(server, path + form, "image/png", who="sono_a")
            seen = _image(body)
            assert status == 200 and best_match(seen, template)[0] > 0.9, form
            status, _, body = await _get(server, path + form, "image/png", who="trainer")
            masked = _image(body)
            assert status == 200 and best_match(masked, template)[0] < 0.5, (form, calibrated)
            assert not masked[: banner.y + banner.h].any()  # black over the full width
            assert np.array_equal(masked[fov.slices], seen[fov.slices])  # the image itself untouched
        thumbnail = "/rendered?viewport=160,120"  # the capture strip's thumbnails
        sono_thumb = _image((await _get(server, path + thumbnail, "image/png", who="sono_a"))[2])
        trainer_thumb = _image((await _get(server, path + thumbnail, "image/png", who="trainer"))[2])
        rows = (banner.y + banner.h) * trainer_thumb.shape[0] // scanner.height
        assert sono_thumb.shape == trainer_thumb.shape and sono_thumb[:rows].any() and not trainer_thumb[:rows].any()
    copies = {(row.actor_name, row.detail.get("copy")) for row in await trail(server.app) if "rendered" in row.route}
    assert copies == {("sono_a", "original"), ("trainer", "deidentified")}


async def test_readers_see_only_what_they_may(server: Running) -> None:
    stored = await server.store(image(study_uid=generate_uid()), site="a")
    path = f"/dicomweb/studies/{stored.study_uid}"
    assert (await _get(server, path, DICOM_ANY, who="sono_a"))[0] == 200
    status, _, body = await _get(server, path + "/metadata", "application/dicom+json", who="sono_b")
    assert status == 404
    device = server.device("a")
    async with device.get(server.base + path, headers={"Accept": DICOM_ANY}) as response:
        assert response.status == 403 and (await response.json())["error"] == "forbidden"


def test_accept_negotiation() -> None:
    assert wanted_transfer_syntax("") == ExplicitVRLittleEndian
    assert wanted_transfer_syntax(DICOM_ANY) == "*"
    assert wanted_transfer_syntax(f'application/json, {DICOM_DEFAULT}; transfer-syntax="1.2.840.10008.1.2.4.50"') == (
        "1.2.840.10008.1.2.4.50"
    )
    with pytest.raises(errors.NotAcceptable):
        wanted_transfer_syntax('multipart/related; type="application/dicom+xml"')
    assert rendered_type("image/png, image/jpeg", None) == "image/png"
    assert rendered_type("image/png", "image/jpeg") == "image/jpeg"
    assert rendered_type("*/*", None) == "image/jpeg"
    with pytest.raises(errors.NotAcceptable):
        rendered_type("image/webp", None)
