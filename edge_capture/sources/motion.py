"""How the synthetic tissue moves during the cycle: probe/breathing drift and arterial pulsation.

Motion is expressed as inverse maps for `cv2.remap` (for each output sample, where its tissue came from),
so scatterers move with the tissue: drift translates everything, and a pulsating artery pushes its wall
and the surrounding tissue outward with a displacement decaying as 1/distance, as an elastic tube in soft
tissue does. Everything is periodic in the cycle so that the replayed loop has no seam.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edge_capture.sources.bmode import Grid

Warp = Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]
"""Maps tissue coordinates (mm, broadcastable arrays) at a cycle fraction to where that tissue was at
rest."""


def pulse(phase: np.ndarray | float) -> np.ndarray:
    """Arterial distension waveform over one cardiac cycle, 0 (end-diastole) … 1 (systolic peak):
    a fast systolic upstroke, a dicrotic notch, diastolic run-off; continuous at the cycle ends."""
    p = np.asarray(phase, dtype=np.float64) % 1.0
    rise = np.sin(0.5 * np.pi * np.clip(p / 0.12, 0.0, 1.0)) ** 2
    after = np.clip(p - 0.12, 0.0, None)
    # Exponential run-off pulled linearly to exactly 0 at the cycle end, minus a dicrotic notch.
    fall = np.exp(-after / 0.22) - np.exp(-0.88 / 0.22) * after / 0.88
    fall -= 0.10 * np.exp(-(((p - 0.36) / 0.035) ** 2))
    return np.where(p < 0.12, rise, np.clip(fall, 0.0, 1.0))


def tube_factor(y_squared: np.ndarray, radius: np.ndarray | float, scale: float) -> np.ndarray:
    """Inverse radial displacement of a lumen of rest radius `radius` scaled by `scale`, as a factor on
    the distance y from the axis: inside, the lumen stretches uniformly (y/scale); outside, the push
    decays as 1/distance (y - push·current/|y|), continuous at the wall. Takes y² to spare square roots."""
    current = radius * scale
    push = (current - radius) * current
    outside = 1.0 - push / np.maximum(y_squared, 1e-6)
    return np.where(y_squared < current * current, np.float32(1.0 / scale), outside).astype(np.float32, copy=False)


@dataclass
class Motion:
    """Everything that moves during the cycle; `maps(fraction)` gives remap inputs for one frame."""

    grid: Grid
    drift_mm: tuple[float, float] = (0.25, 0.15)
    warps: list[Warp] = field(default_factory=list)

    def maps(self, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        angle = 2 * np.pi * fraction
        drift_x = self.drift_mm[0] * (np.sin(angle) + 0.3 * np.sin(3 * angle))
        drift_z = self.drift_mm[1] * np.sin(angle + 1.0)
        x: np.ndarray = self.grid.x - np.float32(drift_x)  # (1, nx): warps broadcast as they need
        z: np.ndarray = self.grid.z - np.float32(drift_z)  # (nz, 1)
        for warp in self.warps:
            x, z = warp(x, z, fraction)
        shape = (self.grid.nz, self.grid.nx)
        map_x = np.broadcast_to(x / np.float32(self.grid.dx) + np.float32(self.grid.left), shape)
        map_z = np.broadcast_to(z / np.float32(self.grid.dz) + np.float32(self.grid.top), shape)
        return np.ascontiguousarray(map_x, np.float32), np.ascontiguousarray(map_z, np.float32)


def radial_warp(cx: float, cz: float, radius: float, scale: Callable[[float], float]) -> Warp:
    """A vessel seen in cross-section pulsating about its centre."""

    def warp(x: np.ndarray, z: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        dx, dz = x - cx, z - cz
        factor = tube_factor(dx * dx + dz * dz, radius, scale(fraction))
        return cx + dx * factor, cz + dz * factor

    return warp


def tube_warp(
    axis_z: Callable[[np.ndarray], np.ndarray],
    radius: Callable[[np.ndarray], np.ndarray],
    scale: Callable[[float], float],
) -> Warp:
    """A vessel seen lengthways whose diameter pulsates: tissue moves along depth only, so the axis and
    radius are evaluated once per column."""

    def warp(x: np.ndarray, z: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        centre = axis_z(x)
        y = z - centre
        return x, centre + y * tube_factor(y * y, radius(x), scale(fraction))

    return warp
