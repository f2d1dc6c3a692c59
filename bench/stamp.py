"""Frame stamps for measuring glass-to-glass latency: a frame counter and the capture time, drawn into the picture.

:class:`StampedSource` wraps any :class:`~edge_capture.sources.base.FrameSource`. Inside ``read()``, right after
the wrapped source hands out a frame (the moment the picture exists on this machine: the same moment the edge's
capture thread stamps its own clocks), it paints an 80-bit code into the top-left corner of the image as a grid
of ``BLOCK``×``BLOCK`` pixel blocks, white for 1 and black for 0
(BGR 255/0: luma 235/16 once converted to video-range I420):

    bits  0..17   frame counter (18 bits, wraps at 262 144 frames: 2.4 h at 30 fps)
    bits 18..63   capture time, host wall clock (``time.time_ns()``), in units of 0.1 ms (46 bits)
    bits 64..79   CRC-16/CCITT-FALSE of the 8 bytes above (big-endian), so a mangled read is discarded

Row-major, most significant bit first, ``COLS`` blocks per row. 32-pixel blocks survive any sane H.264/VP8
encoding; the page reads them back from the decoded video (``reader.js``) and compares the stamped time with
its own display time on the same host clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from edge_capture.sources.base import FrameSource

BLOCK = 32
COLS = 20
ROWS = 4
COUNTER_BITS = 18
TIME_BITS = 46
CRC_BITS = 16
TOTAL_BITS = COUNTER_BITS + TIME_BITS + CRC_BITS
TIME_UNIT_NS = 100_000  # 0.1 ms
# Painted as BGR 255/0: both BGR→I420 conversions on the senders (OpenCV's, swscale's) use BT.601 video range,
# so the encoder sees luma 235 for a 1 and 16 for a 0.
LEVEL_ONE = 255
LEVEL_ZERO = 0
STRIP_WIDTH = COLS * BLOCK
STRIP_HEIGHT = ROWS * BLOCK
assert COLS * ROWS == TOTAL_BITS


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), as reader.js computes it."""
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


@dataclass(frozen=True)
class Stamp:
    counter: int
    time_ms: float


def encode_bits(counter: int, time_ns: int) -> np.ndarray:
    """The stamp's 80 bits (uint8 0/1, MSB first)."""
    payload = ((counter % (1 << COUNTER_BITS)) << TIME_BITS) | ((time_ns // TIME_UNIT_NS) % (1 << TIME_BITS))
    word = (payload << CRC_BITS) | crc16(payload.to_bytes(8, "big"))
    return np.unpackbits(np.frombuffer(word.to_bytes(TOTAL_BITS // 8, "big"), np.uint8))


def decode_bits(bits: np.ndarray) -> Stamp | None:
    """The stamp from 80 bits, or None when the checksum does not match."""
    word = int.from_bytes(np.packbits(bits.astype(np.uint8) & 1).tobytes(), "big")
    payload, crc = word >> CRC_BITS, word & 0xFFFF
    if crc16(payload.to_bytes(8, "big")) != crc:
        return None
    counter = payload >> TIME_BITS
    units = payload & ((1 << TIME_BITS) - 1)
    return Stamp(counter, units * TIME_UNIT_NS / 1e6)


def paint(image: np.ndarray, counter: int, time_ns: int) -> None:
    """Paint the stamp into the top-left strip of an H×W×3 uint8 image, in place."""
    levels = np.where(encode_bits(counter, time_ns).reshape(ROWS, COLS) == 1, LEVEL_ONE, LEVEL_ZERO).astype(np.uint8)
    # each row of blocks is one repeated line of pixels: write it through a (rows, BLOCK, width, 3) view
    lines = np.repeat(levels, BLOCK * 3, axis=1).reshape(ROWS, 1, STRIP_WIDTH, 3)
    blocks = image[:STRIP_HEIGHT, :STRIP_WIDTH].reshape(ROWS, BLOCK, STRIP_WIDTH, 3)
    if not np.shares_memory(blocks, image):  # a layout numpy cannot view that way: write row by row
        for row in range(ROWS):
            image[row * BLOCK : (row + 1) * BLOCK, :STRIP_WIDTH] = lines[row]
        return
    blocks[...] = lines


def read_stamp(image: np.ndarray) -> Stamp | None:
    """Read a stamp back from a BGR image (block centres, threshold mid-grey): the Python twin of reader.js."""
    centres = image[BLOCK // 2 : STRIP_HEIGHT : BLOCK, BLOCK // 2 : STRIP_WIDTH : BLOCK]
    luma = centres.mean(axis=2) if centres.ndim == 3 else centres
    return decode_bits((luma > 128).reshape(-1))


class StampedSource:
    """A `FrameSource` whose every frame carries a counter and its capture time (see the module docstring)."""

    def __init__(self, inner: FrameSource) -> None:
        if inner.width < STRIP_WIDTH or inner.height < STRIP_HEIGHT:
            size = f"{inner.width}×{inner.height}"
            raise ValueError(f"a {size} source is too small for a {STRIP_WIDTH}×{STRIP_HEIGHT} stamp")
        self.inner = inner
        self.width = inner.width
        self.height = inner.height
        self.fps = inner.fps
        self.counter = 0
        self.stamp_ns_total = 0

    def read(self) -> np.ndarray | None:
        image = self.inner.read()
        captured_ns = time.time_ns()
        if image is None:
            return None
        started = time.perf_counter_ns()
        if not image.flags.writeable:
            image = image.copy()
        paint(image, self.counter, captured_ns)
        self.counter += 1
        self.stamp_ns_total += time.perf_counter_ns() - started
        return image

    def close(self) -> None:
        self.inner.close()
