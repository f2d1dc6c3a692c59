"""The synthetic source's motion cycle, computed once at start-up, with an optional injected fault.

Every frame of the cycle moves the same scatterers with the tissue (drift, pulsation), rotates a little
between two independent speckle realisations (out-of-plane motion decorrelates speckle), and goes through
the imaging chain of bmode.py. The gain is set once, on the first frame, as a sonographer would.

Faults, injected by construction so that QC tests know the answer:

    freeze       the first frame, repeated (a frozen scanner or a stuck capture)
    black        a black field of view (the scanner's screen saver, a lost signal)
    saturated    gain 30 dB too high
    dark         gain 35 dB too low
    blur         point-spread function three times wider (defocus, a worn probe, heavy smoothing)
    no_contact   probe in air: only the lens reverberation bands near the top
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from edge_capture.sources.anatomy import shell
from edge_capture.sources.bmode import Grid, Imager, complex_gaussian
from edge_capture.sources.motion import Motion
from edge_capture.sources.scenes import Scene

FAULTS = ("freeze", "black", "saturated", "dark", "blur", "no_contact")
GAIN_FAULT_DB = {"saturated": 30.0, "dark": -35.0}
DECORRELATION_RAD = 0.9


@dataclasses.dataclass
class Scatterers:
    """Complex (nz, nx, 2) fields: the coherent echoes of interfaces and two speckle realisations."""

    coherent: np.ndarray
    first: np.ndarray
    second: np.ndarray

    @classmethod
    def draw(cls, amplitude: np.ndarray, specular: np.ndarray, imager: Imager, rng: np.random.Generator) -> Scatterers:
        shape = amplitude.shape
        diffuse = imager.attenuate(amplitude)[..., None]
        coherent = np.zeros((*shape, 2), np.float32)
        coherent[..., 0] = imager.attenuate(specular)
        return cls(coherent, diffuse * complex_gaussian(rng, shape), diffuse * complex_gaussian(rng, shape))

    def at(self, fraction: float, motion: Motion) -> np.ndarray:
        """The field at a point of the cycle (0…1): speckle partly decorrelated, tissue moved."""
        angle = DECORRELATION_RAD * np.sin(2 * np.pi * fraction)
        mixed = cv2.addWeighted(self.first, float(np.cos(angle)), self.second, float(np.sin(angle)), 0.0)
        mixed += self.coherent
        map_x, map_z = motion.maps(fraction)
        return cv2.remap(mixed, map_x, map_z, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def precompute_cycle(
    scene: Scene, grid: Grid, rng: np.random.Generator, frames: int, fault: str | None = None
) -> np.ndarray:
    """The cycle's 8-bit images on the visible grid, (frames, nz_view, nx_view)."""
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r} ({', '.join(FAULTS)})")
    imaging = scene.imaging
    if fault == "blur":
        imaging = dataclasses.replace(
            imaging,
            axial_fwhm_mm=3 * imaging.axial_fwhm_mm,
            lateral_fwhm_mm=3 * imaging.lateral_fwhm_mm,
            defocused_fwhm_mm=3 * imaging.defocused_fwhm_mm,
        )
    imager = Imager(grid, imaging, rng)
    scatterers = Scatterers.draw(scene.amplitude, scene.specular, imager, rng)
    imager.calibrate(imager.log_envelope(scatterers.at(0.0, scene.motion), 0), scene.reference)
    assert imager.black_db is not None
    imager.black_db -= GAIN_FAULT_DB.get(fault or "", 0.0)
    if fault == "no_contact":
        scatterers = Scatterers.draw(*lens_reverberation(grid), imager, rng)
    cycle = np.empty((1 if fault == "freeze" else frames, grid.nz_view, grid.nx_view), np.uint8)
    for k in range(len(cycle)):
        fraction = k / frames
        cycle[k] = imager.compress(imager.log_envelope(scatterers.at(fraction, scene.motion), k))
    if fault == "black":
        cycle[:] = 0
    return cycle


def lens_reverberation(grid: Grid, spacing_mm: float = 1.2, bands: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude and specular maps of a probe in air: echoes ringing in the lens, nothing beneath."""
    amplitude = np.zeros((grid.nz, grid.nx), np.float32)
    specular = np.zeros_like(amplitude)
    for k in range(1, bands + 1):
        band = shell(np.broadcast_to(grid.z - k * spacing_mm, amplitude.shape), -0.15, 0.15, 0.1)
        specular += 3.0 * 0.55 ** (k - 1) * band
        amplitude += 0.4 * 0.55 ** (k - 1) * band
    return amplitude, specular
