"""A synthetic ultrasound machine: realistic linear-probe B-mode on a scanner screen, at frame rate.

The edge agent, the WebRTC path and QC need a live source with known ground truth and no hardware. The
image physics (bmode.py) costs a few milliseconds per frame on the simulation grid, too much to run live
next to the encoders on an edge box, so one motion cycle (default 3 s: three heartbeats, one cycle of
probe/breathing drift and speckle decorrelation, all periodic so the loop is seamless) is computed at
start-up and replayed. Per frame only the stored 8-bit image is resized into the field of view and the
clock patch pasted: about 1-4 ms at 720p-1080p.

Ground truth in pixels of the output frame: `fov`, `mm_per_pixel`, `nodule_centre_px`/`nodule_radius_px`
(thyroid), `lumen_centre_px`, `lumen_diameter_px(k)` per cycle frame (carotid, and the thyroid's carotid
in cross-section). The k-th frame read is cycle frame `k % cycle_frames`. `fault=` injects one of the
faults listed in cycle.py (freeze, black, saturated, dark, blur, no_contact) for QC tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import cv2
import numpy as np

from edge_capture.errors import SourceError
from edge_capture.sources.base import PaceClock, Pacer
from edge_capture.sources.bmode import Grid
from edge_capture.sources.cycle import FAULTS, precompute_cycle
from edge_capture.sources.scenes import DEPTH_MM, SCENES, Scene
from edge_capture.sources.screen import Annotations, Clock, Layout, Rect, draw_background

logger = logging.getLogger(__name__)

HEART_PERIOD_S = 1.0


class SyntheticSource:
    """`synthetic:thyroid` or `synthetic:carotid`; deterministic for a seed (apart from the clock)."""

    def __init__(
        self,
        preset: str = "thyroid",
        width: int = 1280,
        height: int = 720,
        fps: float = 30.0,
        *,
        seed: int = 0,
        cycle_seconds: float = 3.0,
        paced: bool = True,
        clock: Callable[[], float] = time.time,
        pace_clock: PaceClock = time,
        patient: str = "DOE^JANE",
        patient_id: str = "TLS-004217",
        fault: str | None = None,
    ) -> None:
        if preset not in SCENES:
            raise SourceError("bad_spec", f"unknown synthetic preset {preset!r} ({', '.join(SCENES)})")
        if fault is not None and fault not in FAULTS:
            raise SourceError("bad_spec", f"unknown synthetic fault {fault!r} ({', '.join(FAULTS)})")
        if width % 2 or height % 2 or fps <= 0:
            raise SourceError("bad_spec", f"need an even frame size and fps > 0, got {width}×{height}@{fps}")
        self.preset, self.width, self.height, self.fps = preset, width, height, fps
        self.layout = Layout.for_frame(width, height)
        self.depth_mm = DEPTH_MM[preset]
        self.mm_per_pixel = self.depth_mm / self.layout.fov.h
        started = time.perf_counter()
        grid = Grid.for_view(self.depth_mm, self.layout.fov.w * self.mm_per_pixel)
        rng = np.random.default_rng(seed)
        beats = max(1, round(cycle_seconds / HEART_PERIOD_S))
        self.cycle_frames = max(2, round(cycle_seconds * fps))
        self.scene: Scene = SCENES[preset](grid, rng, beats)
        self.heart_rate_hz = beats * fps / self.cycle_frames  # the loop holds whole heartbeats
        self.fault = fault
        self._cycle = precompute_cycle(self.scene, grid, rng, self.cycle_frames, fault)
        self.startup_seconds = time.perf_counter() - started
        notes = Annotations(
            patient,
            patient_id,
            preset.capitalize(),
            "L12-5",
            self.depth_mm,
            self.scene.imaging.focus_mm,
            fps,
            dynamic_range_db=self.dynamic_range_db,
        )
        self._background = draw_background(self.layout, notes)
        self._clock = Clock(self.layout, self._background)
        self._now = clock
        self._pacer = Pacer(fps, pace_clock) if paced else None
        self.frames_read = 0
        logger.info(
            "synthetic %s %s×%s@%s: %s-frame cycle (%.1f MB) computed in %.2f s",
            preset,
            width,
            height,
            fps,
            self.cycle_frames,
            self._cycle.nbytes / 1e6,
            self.startup_seconds,
        )

    @property
    def fov(self) -> Rect:
        """The field of view (the B-mode image) in output pixels."""
        return self.layout.fov

    @property
    def depth_cm(self) -> float:
        return self.depth_mm / 10.0

    @property
    def dynamic_range_db(self) -> float:
        return self.scene.imaging.dynamic_range_db

    @property
    def cycle_nbytes(self) -> int:
        return int(self._cycle.nbytes)

    def to_pixels(self, lateral_mm: float, depth_mm: float) -> tuple[float, float]:
        """Output-frame (x, y) of a point given in mm from the field of view's top-left corner."""
        return self.fov.x + lateral_mm / self.mm_per_pixel, self.fov.y + depth_mm / self.mm_per_pixel

    @property
    def nodule_centre_px(self) -> tuple[float, float] | None:
        centre = self.scene.landmarks.nodule_centre_mm
        return None if centre is None else self.to_pixels(*centre)

    @property
    def nodule_radius_px(self) -> float:
        return self.scene.landmarks.nodule_radius_mm / self.mm_per_pixel

    @property
    def parenchyma_centre_px(self) -> tuple[float, float] | None:
        centre = self.scene.landmarks.parenchyma_centre_mm
        return None if centre is None else self.to_pixels(*centre)

    @property
    def lumen_centre_px(self) -> tuple[float, float] | None:
        centre = self.scene.landmarks.lumen_centre_mm
        return None if centre is None else self.to_pixels(*centre)

    def lumen_diameter_px(self, cycle_frame: int) -> float:
        """The carotid lumen's diameter (intima to intima) in a cycle frame; the k-th read is frame k."""
        fraction = (cycle_frame % self.cycle_frames) / self.cycle_frames
        return self.scene.diameter_mm(fraction) / self.mm_per_pixel

    def render(self, cycle_frame: int, when: float) -> np.ndarray:
        """The full screen for one cycle frame with the clock showing `when` (a new array each call)."""
        screen = self._background.copy()
        fov = self.layout.fov
        stored = self._cycle[cycle_frame % len(self._cycle)]  # a single frame when frozen
        image = cv2.resize(stored, (fov.w, fov.h), interpolation=cv2.INTER_LINEAR)
        screen[fov.slices] = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        screen[self.layout.clock.slices] = self._clock.patch(when)
        return screen

    def read(self) -> np.ndarray:
        screen = self.render(self.frames_read, self._now())
        self.frames_read += 1
        if self._pacer is not None:
            self._pacer.wait()
        return screen

    def close(self) -> None:
        """Nothing to release: the cycle is plain memory."""
