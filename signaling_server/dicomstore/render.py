"""One frame of a DICOM image → 8-bit grey or RGB pixels → JPEG or PNG (pure functions; CPU-bound, use a thread).

Grey (MONOCHROME1/2), PS3.3 C.11: stored values → Modality LUT (RescaleSlope/Intercept or a Modality LUT Sequence)
→ VOI: the window asked for, else the object's first WindowCenter/WindowWidth, else its VOI LUT Sequence, else
the frame's own min..max → 0..255 by the linear window function (C.11.2.1.2.1); MONOCHROME1 is inverted so that
the output is always "higher is brighter".
Colour: YBR_* arrive converted to RGB by pydicom's decoders; PALETTE COLOR goes through its lookup tables; samples
with more than 8 bits are scaled down.

Output images are numpy uint8 arrays, (rows, columns) for grey and (rows, columns, 3) in RGB order.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut
from pydicom.pixels.utils import pixel_array

from signaling_server import errors

JPEG, PNG = "image/jpeg", "image/png"
MEDIA_TYPES = (JPEG, PNG)


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
    """Decoded stored values of one frame → 8-bit pixels for a screen."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric == "PALETTE COLOR":
        return _palette(ds, frame)
    if frame.ndim == 3:
        return _colour(ds, frame)
    values = apply_modality_lut(frame, ds).astype(np.float64)
    if window is None:
        window = stored_window(ds)
    if window is not None:
        grey = linear_window(values, window)
    elif "VOILUTSequence" in ds:
        grey = _stretch(apply_voi_lut(values, ds, prefer_lut=True).astype(np.float64))
    else:
        grey = _stretch(values)
    return 255 - grey if photometric == "MONOCHROME1" else grey


def stored_window(ds: Dataset) -> Window | None:
    """The object's first WindowCenter/WindowWidth pair, if it has a usable one."""
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if center is None or width is None or width < 1:
        return None
    return Window(center, width)


def linear_window(values: np.ndarray, window: Window) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 (LINEAR) onto 0..255."""
    c, w = window.center, window.width
    if w <= 1:
        return np.where(values > c - 0.5, 255, 0).astype(np.uint8)
    scaled = ((values - (c - 0.5)) / (w - 1) + 0.5) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def fit_viewport(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scaled to fit inside width x height, aspect ratio kept (PS3.18 `viewport`)."""
    if width < 1 or height < 1:
        raise ValueError("the viewport is at least 1x1")
    rows, cols = image.shape[:2]
    scale = min(width / cols, height / rows)
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    if size == (cols, rows):
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


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
) -> bytes:
    """Frame `index` (from 0) of `ds` as a JPEG or PNG image."""
    image = display_pixels(ds, decode_frame(ds, index), window)
    if viewport is not None:
        image = fit_viewport(image, *viewport)
    return encode(np.ascontiguousarray(image), media_type, quality)


def _palette(ds: Dataset, frame: np.ndarray) -> np.ndarray:
    rgb = apply_color_lut(frame, ds)
    descriptor = ds.get("RedPaletteColorLookupTableDescriptor") or [0, 0, 8]
    bits = int(descriptor[2]) if int(descriptor[2]) in (8, 16) else 8
    if bits == 16:  # some writers declare 16 bits but use only the low 8: trust the values over the descriptor
        bits = 16 if int(rgb.max()) > 255 else 8
    return _to_uint8(rgb, bits)


def _colour(ds: Dataset, frame: np.ndarray) -> np.ndarray:
    bits = int(ds.get("BitsStored") or 8)
    return _to_uint8(frame, bits)


def _to_uint8(values: np.ndarray, bits: int) -> np.ndarray:
    if bits <= 8:
        clipped: np.ndarray = np.clip(values, 0, 255).astype(np.uint8)
        return clipped
    return np.rint(values.astype(np.float64) * (255.0 / ((1 << bits) - 1))).clip(0, 255).astype(np.uint8)


def _stretch(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


def _first(value: object) -> float | None:
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if value else None
    try:
        return float(value) if value is not None and value != "" else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
