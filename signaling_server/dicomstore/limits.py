"""What an arriving DICOM object may cost, decided from its header before a single pixel is decoded.

Every ingest (STOW-RS, C-STORE, the edge's stills, the server's own SRs) goes through `ingest.store_instance`,
which checks, in this order (SECURITY.md §7):

    the object's bytes            ≤ max_dataset_bytes     TELEUS_MAX_DICOM_BYTES       → too_large
    its Transfer Syntax UID names a transfer syntax of the standard                     → unknown_transfer_syntax
    native pixel data length      = Rows × Columns × frames × samples × bits / 8       → pixel_data_mismatch
                                    (one trailing pad byte allowed; PS3.5 §8.1.1);
                                  compressed pixel data must be encapsulated (PS3.5 A.4)
    Rows × Columns                ≤ max_pixels_per_frame  TELEUS_MAX_PIXELS_PER_FRAME  → image_too_large
    NumberOfFrames                ≤ max_frames            TELEUS_MAX_FRAMES            → image_too_large
    decoded pixel bytes           ≤ max_pixel_bytes       TELEUS_MAX_PIXEL_BYTES       → image_too_large

The decoded size is what a decoder would allocate (a 1-bit sample decodes to one byte), so a small compressed
object that would unpack into gigabytes (an RLE "bomb") is refused by what it claims, not by trying it.
Compressed pixel data cannot be checked for length without decoding it; its claims are held to the caps above.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom._uid_dict import UID_dictionary
from pydicom.dataset import Dataset
from pydicom.uid import UID

from signaling_server import errors
from signaling_server.settings import Settings

ITEM_TAG = b"\xfe\xff\x00\xe0"  # (FFFE,E000) little endian: the first item (the Basic Offset Table) of a fragment list
# every transfer syntax of the standard, the retired ones too (an old modality may still send them)
_TRANSFER_SYNTAXES = frozenset(uid for uid, entry in UID_dictionary.items() if entry[1] == "Transfer Syntax")
_PIXEL_KEYWORDS = {"PixelData": None, "FloatPixelData": 32, "DoubleFloatPixelData": 64}  # keyword → fixed bits


@dataclass(frozen=True)
class ImageLimits:
    """The caps of one server (defaults as in settings.py)."""

    max_dataset_bytes: int = 1 << 30
    max_pixels_per_frame: int = 1 << 26
    max_frames: int = 2000
    max_pixel_bytes: int = 1 << 30

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageLimits:
        return cls(
            max_dataset_bytes=settings.max_dicom_bytes,
            max_pixels_per_frame=settings.max_pixels_per_frame,
            max_frames=settings.max_frames,
            max_pixel_bytes=settings.max_pixel_bytes,
        )

    def check_size(self, size: int) -> None:
        """TooLarge when one object's bytes are over the cap (before anything reads it)."""
        if size > self.max_dataset_bytes:
            raise errors.TooLarge(f"the object is {size} bytes; the limit is {self.max_dataset_bytes}")

    def check_geometry(self, geometry: PixelGeometry) -> None:
        """ImageTooLarge when what the header claims is over a cap."""
        if geometry.pixels_per_frame > self.max_pixels_per_frame:
            raise errors.ImageTooLarge(
                f"{geometry.rows} × {geometry.columns} pixels per frame; the limit is {self.max_pixels_per_frame}"
            )
        if geometry.frames > self.max_frames:
            raise errors.ImageTooLarge(f"{geometry.frames} frames; the limit is {self.max_frames}")
        if geometry.decoded_bytes > self.max_pixel_bytes:
            raise errors.ImageTooLarge(
                f"the pixels would take {geometry.decoded_bytes} bytes decoded; the limit is {self.max_pixel_bytes}"
            )


@dataclass(frozen=True)
class PixelGeometry:
    """The Image Pixel module's claims about the pixel data (PS3.3 C.7.6.3)."""

    rows: int
    columns: int
    frames: int
    samples: int
    bits_allocated: int
    photometric: str

    @property
    def pixels_per_frame(self) -> int:
        return self.rows * self.columns

    @property
    def decoded_bytes(self) -> int:
        """What a decoder allocates for all frames (1-bit samples come out as bytes)."""
        return self.pixels_per_frame * self.frames * self.samples * max(1, self.bits_allocated // 8)

    @property
    def native_bytes(self) -> int:
        """The length of native (uncompressed) pixel data without its pad byte (as pydicom's expected length)."""
        samples = self.pixels_per_frame * self.frames * self.samples
        length = (samples + 7) // 8 if self.bits_allocated == 1 else samples * (self.bits_allocated // 8)
        if self.photometric == "YBR_FULL_422":  # two samples' worth per pixel (PS3.3 C.7.6.3.1.2)
            length = length // 3 * 2
        return length


def check_transfer_syntax(uid: str) -> UID:
    """The Transfer Syntax UID as a UID of the standard's transfer syntaxes; UnknownTransferSyntax otherwise."""
    text = uid.strip().rstrip("\0")
    if text not in _TRANSFER_SYNTAXES:  # looked up as text: pydicom's UID() warns about a malformed one
        raise errors.UnknownTransferSyntax(f"{text[:64]!r} is not a transfer syntax of the DICOM standard")
    return UID(text)


def pixel_keyword(ds: Dataset) -> str | None:
    return next((keyword for keyword in _PIXEL_KEYWORDS if keyword in ds), None)


def geometry_of(ds: Dataset) -> PixelGeometry | None:
    """The claims of a dataset with pixel data (None without); InvalidDicom when they are missing or nonsense."""
    keyword = pixel_keyword(ds)
    if keyword is None:
        return None
    fixed_bits = _PIXEL_KEYWORDS[keyword]
    rows, columns = _positive(ds, "Rows"), _positive(ds, "Columns")
    frames = _positive(ds, "NumberOfFrames", default=1)
    samples = _positive(ds, "SamplesPerPixel", default=1)
    bits = fixed_bits or _positive(ds, "BitsAllocated")
    if bits != 1 and (bits % 8 or bits > 64):
        raise errors.InvalidDicom(f"BitsAllocated {bits} is neither 1 nor a whole number of bytes up to 64")
    if samples > 4:
        raise errors.InvalidDicom(f"SamplesPerPixel {samples} is not 1 or 3")
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    return PixelGeometry(rows, columns, frames, samples, bits, photometric)


def check_pixels(ds: Dataset, transfer_syntax: UID, limits: ImageLimits) -> None:
    """The pixel data against its header (native: its exact length; compressed: encapsulated at all), since an
    object that lies is invalid whatever its size; then the caps on what the header claims."""
    geometry = geometry_of(ds)
    keyword = pixel_keyword(ds)
    if geometry is None or keyword is None:
        return
    element = ds.get_item(keyword)
    value = bytes(element.value[:4]) if element is not None and element.value is not None else b""
    if transfer_syntax.is_compressed:
        if value != ITEM_TAG:  # PS3.5 A.4: the fragments are items; anything else is not for a codec to guess
            raise errors.PixelDataMismatch(f"the pixel data of {transfer_syntax.name} is not encapsulated")
    else:
        assert element is not None
        length = len(element.value) if element.value is not None else 0
        expected = geometry.native_bytes
        if length not in (expected, expected + expected % 2):
            raise errors.PixelDataMismatch(
                f"{keyword} holds {length} bytes; {geometry.rows} × {geometry.columns} × {geometry.frames} frames × "
                f"{geometry.samples} samples × {geometry.bits_allocated} bits make {expected}"
            )
    limits.check_geometry(geometry)


def _positive(ds: Dataset, keyword: str, default: int | None = None) -> int:
    raw = ds.get(keyword)
    if raw is None or raw == "":
        if default is not None:
            return default
        raise errors.InvalidDicom(f"an object with pixel data and no {keyword}")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise errors.InvalidDicom(f"{keyword} {str(raw)[:32]!r} is not a whole number") from None
    if value == 0 and default is not None:  # NumberOfFrames 0 is read as one frame, as pydicom does
        return default
    if value < 1:
        raise errors.InvalidDicom(f"{keyword} is {value}; it must be at least 1")
    return value
