"""Rendering real files: sizes, colour models, windows, MONOCHROME1, frames, viewport, encoders (properties, not
golden pixels)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator

import cv2
import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from edge_capture.sources.synthetic import SyntheticSource
from recordings.media import quiet_pydicom
from signaling_server import errors
from signaling_server.dicomstore import render
from tests.recordings.test_teaching import edge_still, scanner  # noqa: F401  (fixture)

from .objects import read, real_file


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with quiet_pydicom():  # some test files carry values pydicom warns about
        yield


def _dataset(name: str) -> Dataset:
    return read(real_file(name))


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("US1_UNCR.dcm", (480, 640, 3)),  # RGB
        ("color3d_jpeg_baseline.dcm", (480, 640, 3)),  # JPEG Baseline, YBR_FULL_422, 120 frames
        ("gdcm-US-ALOKA-16.dcm", (480, 640, 3)),  # PALETTE COLOR, 16-bit tables
        ("OBXXXX1A.dcm", (600, 800, 3)),  # PALETTE COLOR, 8-bit
        ("CT_small.dcm", (128, 128)),  # MONOCHROME2 with a rescale
        ("MR_small.dcm", (64, 64)),
        ("RG1_UNCR.dcm", (1955, 1841)),  # CR, MONOCHROME1
        ("SC_ybr_full_uncompressed.dcm", (100, 100, 3)),
    ],
)
def test_real_files_render_at_their_size(name: str, shape: tuple[int, ...]) -> None:
    ds = _dataset(name)
    pixels = render.display_pixels(ds, render.decode_frame(ds, 0))
    assert pixels.shape == shape and pixels.dtype == np.uint8
    assert pixels.max() > pixels.min()  # not a blank image
    for media_type, flag in ((render.JPEG, cv2.IMREAD_UNCHANGED), (render.PNG, cv2.IMREAD_UNCHANGED)):
        decoded = cv2.imdecode(np.frombuffer(render.encode(pixels, media_type), np.uint8), flag)
        assert decoded.shape == shape


def test_colour_stays_in_rgb_order() -> None:
    ds = _dataset("US1_UNCR.dcm")
    rgb = render.display_pixels(ds, render.decode_frame(ds))
    png = cv2.imdecode(np.frombuffer(render.encode(rgb, render.PNG), np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(png[..., ::-1], rgb)  # OpenCV's BGR back to RGB: lossless round trip


def test_frames_are_chosen_by_index() -> None:
    ds = _dataset("color3d_jpeg_baseline.dcm")
    first, later = (render.display_pixels(ds, render.decode_frame(ds, i)) for i in (0, 90))
    assert np.abs(first.astype(int) - later.astype(int)).mean() > 1
    with pytest.raises(errors.NotFound, match="no frame 121"):
        render.decode_frame(ds, 120)


def test_a_narrower_window_saturates_more() -> None:
    ds = _dataset("CT_small.dcm")
    frame = render.decode_frame(ds)
    saturation = []
    for width in (4000, 400, 40):
        pixels = render.display_pixels(ds, frame, render.Window(40, width))
        saturation.append(np.mean((pixels == 0) | (pixels == 255)))
    assert saturation[0] < saturation[1] < saturation[2]


def test_monochrome1_is_the_inverse_of_monochrome2() -> None:
    ds = _dataset("RG1_UNCR.dcm")
    frame = render.decode_frame(ds)
    as_stored = render.display_pixels(ds, frame)
    ds.PhotometricInterpretation = "MONOCHROME2"
    flipped = render.display_pixels(ds, frame)
    assert np.array_equal(as_stored, 255 - flipped)


def test_linear_window_function() -> None:
    values = np.array([-1000.0, 0.0, 39.5, 40.0, 80.0, 1000.0])
    out = render.linear_window(values, render.Window(40, 80))
    assert out[0] == 0 and out[-1] == 255 and list(out) == sorted(out)
    assert abs(int(out[3]) - 128) <= 2  # the centre maps to mid-grey


def test_viewport_keeps_the_aspect_ratio() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    assert render.fit_viewport(image, 320, 320).shape == (240, 320, 3)
    assert render.fit_viewport(image, 2000, 300).shape == (300, 400, 3)
    assert render.fit_viewport(image, 640, 480) is image
    with pytest.raises(ValueError):
        render.fit_viewport(image, 0, 10)


def test_window_parameter() -> None:
    assert render.Window.parse("40,400") == render.Window(40, 400)
    assert render.Window.parse("-600,1500,LINEAR") == render.Window(-600, 1500)
    for bad in ("40", "40,0", "a,b", "40,400,SIGMOID"):
        with pytest.raises(ValueError):
            render.Window.parse(bad)


def test_an_object_without_pixels_is_not_renderable() -> None:
    with pytest.raises(errors.NotRenderable):
        render.decode_frame(_dataset("rtplan.dcm"))


def _large_ct(size: int) -> Dataset:
    ds = Dataset()
    pixels = (np.arange(size * size, dtype=np.uint32).reshape(size, size) % 4096).astype(np.uint16)
    ds.set_pixel_data(pixels, "MONOCHROME2", 12, generate_instance_uid=False)
    ds.RescaleSlope, ds.RescaleIntercept, ds.WindowCenter, ds.WindowWidth = 1, -1024, 40, 400
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _peak(call: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_rendering_a_large_frame_never_copies_it_whole_into_float64() -> None:
    """The finding: a 10000 × 10000 frame took 630 MB to render (34 bytes a pixel: float64 copies and temporaries).
    Now: the decoded frame (2 bytes a pixel here), the 8-bit result, a few MB of blocks; a thumbnail, the frame."""
    size = 3000
    ds = _large_ct(size)
    pixels = size * size
    decode = _peak(lambda: render.decode_frame(ds))
    assert decode < 3 * pixels  # the baseline: one uint16 frame (and whatever pydicom needs beside it)
    full = _peak(lambda: render.render(ds, 0, media_type=render.PNG))
    assert full < decode + 2 * pixels + 16 * render.BLOCK_PIXELS  # one float64 copy alone would be 8 bytes a pixel
    thumbnail = _peak(lambda: render.render(ds, 0, viewport=(256, 256)))
    assert thumbnail < decode + 16 * render.BLOCK_PIXELS


def test_masking_the_banner_adds_no_frame_sized_float_copy() -> None:
    """A de-identified reader's render windows the whole frame (in blocks) and looks for the banner on at most
    DETECT_PIXELS: its peak stays that of a plain full render plus a few MB, not a float64 copy (8 bytes a pixel)."""
    size = 3000
    ds = _large_ct(size)
    pixels = size * size
    decode = _peak(lambda: render.decode_frame(ds))
    bound = decode + 2 * pixels + 16 * render.BLOCK_PIXELS + 10 * render.DETECT_PIXELS
    assert _peak(lambda: render.render(ds, 0, media_type=render.PNG, mask_banners=True)) < bound
    assert _peak(lambda: render.render(ds, 0, viewport=(256, 256), mask_banners=True)) < bound


def test_a_screen_larger_than_the_search_has_its_banner_found_shrunk_and_masked_at_full_size(
    scanner: SyntheticSource,  # noqa: F811
) -> None:
    ds = edge_still(scanner, calibrated=False)
    times = 4  # 2560 × 1440: over DETECT_PIXELS, so the search runs on a shrunk copy
    big = cv2.resize(ds.pixel_array, None, fx=times, fy=times, interpolation=cv2.INTER_NEAREST)
    ds.set_pixel_data(big, "RGB", 8, generate_instance_uid=False)
    assert big.shape[0] * big.shape[1] > render.DETECT_PIXELS
    decode = lambda data: cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)  # noqa: E731
    plain = decode(render.render(ds, 0, media_type=render.PNG))
    masked = decode(render.render(ds, 0, media_type=render.PNG, mask_banners=True))
    banner, fov = scanner.layout.banner, scanner.fov
    assert plain[: times * (banner.y + banner.h)].any() and not masked[: times * (banner.y + banner.h)].any()
    rows, columns = slice(times * fov.y, times * (fov.y + fov.h)), slice(times * fov.x, times * (fov.x + fov.w))
    assert np.array_equal(masked[rows, columns], plain[rows, columns])


def test_a_thumbnail_is_windowed_after_shrinking_and_keeps_palette_indices_whole() -> None:
    ds = _large_ct(1000)
    shrunk = render.shrink(ds, render.decode_frame(ds), 100, 100)
    assert shrunk.shape == (100, 100) and shrunk.dtype == np.uint16  # still stored values
    thumb = cv2.imdecode(np.frombuffer(render.render(ds, 0, viewport=(100, 50)), np.uint8), cv2.IMREAD_UNCHANGED)
    assert thumb.shape == (50, 50)
    palette = _dataset("OBXXXX1A.dcm")
    frame = render.decode_frame(palette)
    small = render.shrink(palette, frame, 200, 200)
    assert set(np.unique(small)) <= set(np.unique(frame))  # every index one of the frame's: none averaged
