"""One frame of a DICOM image → 8-bit grey or RGB pixels → JPEG or PNG (pure functions; CPU-bound, use a thread).

Grey (MONOCHROME1/2), PS3.3 C.11: stored values → Modality LUT (RescaleSlope/Intercept or a Modality LUT Sequence)
→ VOI: the window asked for, else the object's first WindowCenter/WindowWidth, else its VOI LUT Sequence, else
the frame's own min..max → 0..255 by the linear window function (C.11.2.1.2.1); MONOCHROME1 is inverted so that
the output is always "higher is brighter".
Colour: YBR_* arrive converted to RGB by pydicom's decoders; PALETTE COLOR goes through its lookup tables; samples
with more than 8 bits are scaled down.

Output images are numpy uint8 arrays, (rows, columns) for grey and (rows, columns, 3) in RGB order.

Memory (SECURITY.md §7, bench/render_memory.py): a frame is never copied whole into float64. A viewport shrinks
the decoded frame first, in its own dtype (area averaging; nearest for palette indices, which must not be
averaged), so a thumbnail of a large image is windowed at thumbnail size. The grey and colour pipelines then run
over blocks of rows (`BLOCK_PIXELS` at a time) in float32 into one uint8 output: besides the decoded frame, a
render holds its 8-bit result and a few megabytes.

De-identified readers (`mask_banners`, docs/SECURITY.md §2): the burned-in patient banner is found on the frame's
8-bit display pixels at full size (recordings/deidentify.py `still_banners`, in the field of view of the image's
ultrasound regions when it has some) and blacked out there, before any viewport shrinks it: such a render windows
the whole frame (still in blocks of float32, into one uint8 image) and then fits the viewport.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut
from pydicom.pixels.utils import pixel_array

from recordings.deidentify import dataset_fov, still_banners
from signaling_server import errors

JPEG, PNG = "image/jpeg", "image/png"
MEDIA_TYPES = (JPEG, PNG)
DETECT_PIXELS = 1 << 21  # pixels the burned-in banner is looked for on: a 1080p screen at its own size
BLOCK_PIXELS = 1 << 20  # pixels per block of rows: float32 temporaries of a few MB whatever the frame's size
_RESIZABLE = frozenset(np.dtype(t) for t in (np.uint8, np.uint16, np.int16, np.float32, np.float64))  # cv2.resize


@dataclass(frozen=True)
class Window:
    """A linear VOI window: values below center - width/2 are black, above center + width/2 white."""

    center: float
    width: float

    @classmethod
    def parse(cls, text: str) -> Window:
        """PS3.18 `window=center,width[,function]` (only LINEAR is drawn); ValueError when malformed."""
        fields = text.split(",")
        if len(fields) not in (2, 3) or (len(fields) == 3 and fields[2].strip().upper() not in ("", "LINEAR")):
            raise ValueError("window is center,width (LINEAR)")
        center, width = float(fields[0]), float(fields[1])
        if not (np.isfinite(center) and np.isfinite(width)) or width < 1:
            raise ValueError("the window width is at least 1")
        return cls(center, width)


def frame_count(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def decode_frame(ds: Dataset, index: int = 0) -> np.ndarray:
    """The stored values of one frame (from 0), YBR already converted to RGB; NotRenderable when impossible."""
    if "PixelData" not in ds:
        raise errors.NotRenderable("this object has no pixel data")
    if not 0 <= index < frame_count(ds):
        raise errors.NotFound(f"there is no frame {index + 1} (the object has {frame_count(ds)})")
    try:
        return pixel_array(ds, index=index)
    except Exception as exc:  # a codec this installation lacks, or pixel data that contradicts its module
        raise errors.NotRenderable(f"cannot decode the pixel data: {exc}") from None


def display_pixels(ds: Dataset, frame: np.ndarray, window: Window | None = None) -> np.ndarray:
    """Decoded stored values of one frame → 8-bit pixels for a screen (block by block, see the module's notes)."""
    photometric = _photometric(ds)
    if photometric == "PALETTE COLOR":
        return _palette(ds, frame)
    if frame.ndim == 3:
        return _colour(ds, frame)
    grey = _grey(ds, frame, window)
    if photometric == "MONOCHROME1":
        np.subtract(255, grey, out=grey)
    return grey


def _grey(ds: Dataset, frame: np.ndarray, window: Window | None) -> np.ndarray:
    modality = _modality(ds, frame)
    if window is None:
        window = stored_window(ds)
    if window is not None:
        chosen = window
        return _map_blocks(frame, lambda block: _window_in_place(modality(block), chosen))
    if "VOILUTSequence" in ds:

        def voi(block: np.ndarray) -> np.ndarray:
            return np.asarray(apply_voi_lut(modality(block), ds, prefer_lut=True), np.float32)

        low, high = _range(frame, voi)
        return _map_blocks(frame, lambda block: _stretch(voi(block), low, high))
    if "ModalityLUTSequence" in ds:
        low, high = _range(frame, modality)
    else:  # a linear rescale: the range follows from the stored values' own, without converting them
        ends = modality(np.array([frame.min(), frame.max()], dtype=frame.dtype))
        low, high = float(ends.min()), float(ends.max())
    return _map_blocks(frame, lambda block: _stretch(modality(block), low, high))


def _modality(ds: Dataset, frame: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Stored values → modality values as float32, for one block at a time (PS3.3 C.11.1)."""
    if "ModalityLUTSequence" in ds:
        return lambda block: np.asarray(apply_modality_lut(block, ds), np.float32)
    slope, intercept = 1.0, 0.0
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:  # as pydicom: a rescale needs both
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)

    def rescale(block: np.ndarray) -> np.ndarray:
        values = block.astype(np.float32)
        if slope != 1.0:
            values *= np.float32(slope)
        if intercept != 0.0:
            values += np.float32(intercept)
        return values

    return rescale


def _blocks(rows: int, columns: int) -> Iterator[slice]:
    step = max(1, BLOCK_PIXELS // max(1, columns))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


def _map_blocks(frame: np.ndarray, to_uint8: Callable[[np.ndarray], np.ndarray], channels: int = 0) -> np.ndarray:
    """`to_uint8` over blocks of rows of `frame`, into one uint8 image (with `channels` when it makes colour)."""
    shape = frame.shape[:2] + ((channels,) if channels else frame.shape[2:])
    out = np.empty(shape, np.uint8)
    for rows in _blocks(frame.shape[0], frame.shape[1]):
        out[rows] = to_uint8(frame[rows])
    return out


def _range(frame: np.ndarray, values: Callable[[np.ndarray], np.ndarray]) -> tuple[float, float]:
    """min and max of `values` over the frame, block by block."""
    low, high = np.inf, -np.inf
    for rows in _blocks(frame.shape[0], frame.shape[1]):
        block = values(frame[rows])
        low, high = min(low, float(block.min())), max(high, float(block.max()))
    return low, high


def stored_window(ds: Dataset) -> Window | None:
    """The object's first WindowCenter/WindowWidth pair, if it has a usable one."""
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if center is None or width is None or width < 1:
        return None
    return Window(center, width)


def linear_window(values: np.ndarray, window: Window) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 (LINEAR) onto 0..255."""
    return _window_in_place(np.array(values, dtype=np.float32), window)


def _window_in_place(scaled: np.ndarray, window: Window) -> np.ndarray:
    """linear_window on a float32 array of its own, which it overwrites (no temporary the size of the input)."""
    c, w = window.center, window.width
    if w <= 1:
        return np.where(scaled > c - 0.5, 255, 0).astype(np.uint8)
    # ((x - (c - 0.5)) / (w - 1) + 0.5) * 255 as one multiply-add
    scale = 255.0 / (w - 1)
    scaled *= np.float32(scale)
    scaled += np.float32(127.5 - (c - 0.5) * scale)
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


def fit_viewport(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scaled to fit inside width x height, aspect ratio kept (PS3.18 `viewport`)."""
    size, scale = _fitted(image.shape[:2], width, height)
    if size == (image.shape[1], image.shape[0]):
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def shrink(ds: Dataset, frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """A decoded frame brought down to the viewport before it is windowed, in its own dtype: area averaging of
    stored values, but nearest-neighbour for palette indices (an average of two indices is a third colour)."""
    size, scale = _fitted(frame.shape[:2], width, height)
    if scale >= 1:
        return frame
    if _photometric(ds) == "PALETTE COLOR" or frame.dtype not in _RESIZABLE:
        step = max(1, int(1 / scale))  # every step-th pixel: a view, no copy; fit_viewport finishes on 8 bits
        return frame[::step, ::step]
    shrunk: np.ndarray = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return shrunk


def _fitted(shape: tuple[int, ...], width: int, height: int) -> tuple[tuple[int, int], float]:
    if width < 1 or height < 1:
        raise ValueError("the viewport is at least 1x1")
    rows, cols = shape[0], shape[1]
    scale = min(width / cols, height / rows)
    return (max(1, round(cols * scale)), max(1, round(rows * scale))), scale


def encode(image: np.ndarray, media_type: str = JPEG, quality: int = 90) -> bytes:
    """8-bit grey or RGB pixels → JPEG or PNG bytes."""
    pixels = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    if media_type == JPEG:
        ok, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif media_type == PNG:
        ok, data = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        raise ValueError(f"cannot encode {media_type}")
    if not ok:
        raise errors.NotRenderable(f"the {media_type} encoder refused the image")
    return data.tobytes()


def render(
    ds: Dataset,
    index: int = 0,
    *,
    window: Window | None = None,
    viewport: tuple[int, int] | None = None,
    media_type: str = JPEG,
    quality: int = 90,
    mask_banners: bool = False,
) -> bytes:
    """Frame `index` (from 0) of `ds` as a JPEG or PNG image; with `mask_banners`, the burned-in banner black."""
    frame = decode_frame(ds, index)
    if mask_banners:
        image = display_pixels(ds, frame, window)
        del frame
        mask_burned_in_banner(ds, image)
        if viewport is not None:
            image = fit_viewport(image, *viewport)
        return encode(np.ascontiguousarray(image), media_type, quality)
    if viewport is not None:
        frame = shrink(ds, frame, *viewport)
    image = display_pixels(ds, frame, window)
    del frame  # the decoded frame is not needed past this point (one fewer large array alive while encoding)
    if viewport is not None:
        image = fit_viewport(image, *viewport)
    return encode(np.ascontiguousarray(image), media_type, quality)


def mask_burned_in_banner(ds: Dataset, image: np.ndarray) -> None:
    """Black out, in place, the banner of text above (below) the field of view of a full-size display image. The
    text is looked for on at most `DETECT_PIXELS` pixels (an image larger than a 1080p screen is shrunk for the
    search, its boxes scaled back and rounded outwards), so the search's masks stay a few MB whatever the size."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    rows, columns = grey.shape[:2]
    fov = dataset_fov(ds, (rows, columns))
    scale = min(1.0, (DETECT_PIXELS / (rows * columns)) ** 0.5)
    if scale < 1:
        size = (max(1, round(columns * scale)), max(1, round(rows * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        if fov is not None:
            fov = cv2.resize(fov.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    down_y, down_x = grey.shape[0] / rows, grey.shape[1] / columns
    for box in still_banners(grey, fov):
        top, bottom = int(box.y / down_y), min(rows, math.ceil((box.y + box.h) / down_y))
        left, right = int(box.x / down_x), min(columns, math.ceil((box.x + box.w) / down_x))
        image[top:bottom, left:right] = 0


def _photometric(ds: Dataset) -> str:
    return str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()


def _palette(ds: Dataset, frame: np.ndarray) -> np.ndarray:
    descriptor = ds.get("RedPaletteColorLookupTableDescriptor") or [0, 0, 8]
    bits = int(descriptor[2]) if int(descriptor[2]) in (8, 16) else 8
    if bits == 16:  # some writers declare 16 bits but use only the low 8: trust the values over the descriptor
        bits = 16 if _range(frame, lambda block: apply_color_lut(block, ds))[1] > 255 else 8
    return _map_blocks(frame, lambda block: _to_uint8(apply_color_lut(block, ds), bits), channels=3)


def _colour(ds: Dataset, frame: np.ndarray) -> np.ndarray:
    bits = int(ds.get("BitsStored") or 8)
    if frame.dtype == np.uint8 and bits <= 8:
        return frame  # already what a screen takes
    return _map_blocks(frame, lambda block: _to_uint8(block, bits))


def _to_uint8(values: np.ndarray, bits: int) -> np.ndarray:
    if bits <= 8:
        clipped: np.ndarray = np.clip(values, 0, 255).astype(np.uint8)
        return clipped
    scaled = values.astype(np.float32)
    scaled *= np.float32(255.0 / ((1 << bits) - 1))
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """`values` (one block) from low..high (the whole frame's range) onto 0..255."""
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    scaled = values - np.float32(low)  # a new array: `values` may be the caller's
    scaled *= np.float32(255.0 / (high - low))
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


def _first(value: object) -> float | None:
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if value else None
    try:
        return float(value) if value is not None and value != "" else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
