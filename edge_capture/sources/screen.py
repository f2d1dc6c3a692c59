"""The scanner screen around the synthetic B-mode image, as a capture card sees it.

A real capture is not just the image: it is a black screen with the field of view in a box, a banner with
the patient's name and ID, date and time, the preset, a depth scale with centimetre labels and a focus
marker, a parameter panel and a grey bar. QC must find the field of view among this static text, and the
recorder and viewers see burned-in patient data, so the synthetic source reproduces all of it.

Everything but the clock is drawn once into a background; the clock is a small patch redrawn once per
second and pasted per frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT = (215, 215, 215)
DIM = (150, 150, 150)
AMBER = (0, 190, 255)
CLOCK_FORMAT = "%Y-%m-%d  %H:%M:%S"


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    @property
    def slices(self) -> tuple[slice, slice]:
        """(rows, columns) for indexing an image."""
        return slice(self.y, self.bottom), slice(self.x, self.right)


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    banner: Rect
    fov: Rect
    clock: Rect
    font_scale: float
    thickness: int

    @classmethod
    def for_frame(cls, width: int, height: int) -> Layout:
        """Field of view 70 % wide and 88 % high (about 62 % of the screen), left panel, right scale."""
        s = height / 720.0
        banner_h = round(0.07 * height)
        fov_h = 2 * round(0.44 * height)
        fov_w = 2 * round(0.35 * width)
        fov_y = banner_h + (height - banner_h - fov_h) // 2
        fov_x = round(0.17 * width)
        font_scale, thickness = 0.5 * s, max(1, round(s))
        (text_w, text_h), _ = cv2.getTextSize("0000-00-00  00:00:00", FONT, font_scale, thickness)
        pad = round(8 * s)
        clock = Rect(width - text_w - 2 * pad, (banner_h - text_h) // 2 - pad, text_w + pad, text_h + 2 * pad)
        return cls(
            width, height, Rect(0, 0, width, banner_h), Rect(fov_x, fov_y, fov_w, fov_h), clock, font_scale, thickness
        )


@dataclass(frozen=True)
class Annotations:
    """What the scanner writes around the image."""

    patient: str
    patient_id: str
    preset: str
    probe: str
    depth_mm: float
    focus_mm: float
    fps: float
    gain: int = 52
    dynamic_range_db: float = 60.0
    frequency_mhz: float = 10.0


def _text(
    image: np.ndarray,
    layout: Layout,
    text: str,
    org: tuple[int, int],
    colour: tuple[int, int, int] = TEXT,
    scale: float = 1.0,
) -> None:
    cv2.putText(image, text, org, FONT, layout.font_scale * scale, colour, layout.thickness, cv2.LINE_AA)


def draw_background(layout: Layout, notes: Annotations) -> np.ndarray:
    """The static screen: black, banner, panel, depth scale, focus marker, grey bar; FOV left black."""
    screen = np.zeros((layout.height, layout.width, 3), np.uint8)
    s = layout.height / 720.0
    baseline = round(layout.banner.h * 0.65)
    _text(screen, layout, f"{notes.patient}   ID {notes.patient_id}", (round(12 * s), baseline))
    _text(screen, layout, f"TELEUS  {notes.preset}  {notes.probe}", (round(0.42 * layout.width), baseline))
    cv2.line(screen, (0, layout.banner.bottom - 1), (layout.width, layout.banner.bottom - 1), (70, 70, 70), 1)
    _draw_panel(screen, layout, notes, s)
    _draw_depth_scale(screen, layout, notes, s)
    fov = layout.fov
    cv2.circle(screen, (fov.x - round(12 * s), fov.y + round(10 * s)), round(5 * s), AMBER, -1, cv2.LINE_AA)
    return screen


def _draw_panel(screen: np.ndarray, layout: Layout, notes: Annotations, s: float) -> None:
    lines = [
        "B",
        f"Frq {notes.frequency_mhz:.1f} MHz",
        f"Gn {notes.gain}",
        f"DR {notes.dynamic_range_db:.0f}",
        f"FR {notes.fps:.0f} Hz",
        f"D {notes.depth_mm / 10:.1f} cm",
        "MI 0.9",
        "TIs 0.2",
    ]
    x, y, step = round(14 * s), layout.fov.y + round(20 * s), round(26 * s)
    for i, line in enumerate(lines):
        _text(screen, layout, line, (x, y + i * step), TEXT if i else AMBER)
    bar_h, bar_w = round(0.3 * layout.height), round(12 * s)
    top = layout.fov.bottom - bar_h
    ramp = np.linspace(255, 0, bar_h).astype(np.uint8)[:, None, None]
    screen[top : top + bar_h, x : x + bar_w] = ramp


def _draw_depth_scale(screen: np.ndarray, layout: Layout, notes: Annotations, s: float) -> None:
    fov = layout.fov
    px_per_mm = fov.h / notes.depth_mm
    x0 = fov.right + round(6 * s)
    for mm in range(0, int(notes.depth_mm) + 1, 5):
        y = min(fov.y + round(mm * px_per_mm), fov.bottom - 1)
        major = mm % 10 == 0
        cv2.line(screen, (x0, y), (x0 + round((12 if major else 6) * s), y), DIM, layout.thickness)
        if major:
            _text(screen, layout, str(mm // 10), (x0 + round(16 * s), y + round(5 * s)), DIM)
    _text(screen, layout, "cm", (x0 + round(12 * s), fov.bottom + round(2 * s) - round(16 * s)), DIM, 0.8)
    y = fov.y + round(notes.focus_mm * px_per_mm)
    tip, back = x0 + round(32 * s), x0 + round(44 * s)
    triangle = np.array([[tip, y], [back, y - round(6 * s)], [back, y + round(6 * s)]], np.int32)
    cv2.fillPoly(screen, [triangle], AMBER, cv2.LINE_AA)


class Clock:
    """The banner's date and time, re-rendered only when the second changes."""

    def __init__(self, layout: Layout, background: np.ndarray) -> None:
        self.layout = layout
        self._blank = background[layout.clock.slices].copy()
        self._second: int | None = None
        self._patch = self._blank

    def patch(self, when: float) -> np.ndarray:
        second = int(when)
        if second != self._second:
            self._second = second
            patch = self._blank.copy()
            pad = round(8 * self.layout.height / 720.0)
            text = time.strftime(CLOCK_FORMAT, time.localtime(second))
            _text(patch, self.layout, text, (pad // 2, self.layout.clock.h - pad))
            self._patch = patch
        return self._patch
