"""B-mode image formation for the synthetic source: scatterers in, an 8-bit log-compressed image out.

The physics is the textbook minimum that makes QC metrics behave as on a real scanner:

- tissue is a field of sub-resolution scatterers: a complex Gaussian field times the echogenicity
  (amplitude) map, so the envelope is Rayleigh distributed, i.e. fully developed speckle;
- the imaging system is a point-spread function applied in k-space: a Gaussian transfer function whose
  axial width comes from the pulse length and lateral width from the beam at the transmit focus; away
  from the focus the beam widens, modelled as an extra lateral blur blended in by depth;
- depth attenuation (α·f, dB/cm/MHz, both ways) is compensated by a TGC that is deliberately a few per
  cent short, and electronic noise is added before the TGC so it rises with depth;
- the envelope is log-compressed over a dynamic range to 8 bits.

The grid samples 0.08 mm axially and 0.16 mm laterally (about a beam line spacing), independent of the
output resolution: the screen resizes the image, as a scanner's scan converter does.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Grid:
    """The simulation grid: the visible field of view plus a margin that absorbs FFT wrap-around and
    drift. Axis arrays are in mm from the skin line and the left edge of the field of view."""

    depth_mm: float
    width_mm: float
    dz: float
    dx: float
    nz: int
    nx: int
    top: int
    left: int
    nz_view: int
    nx_view: int

    @classmethod
    def for_view(cls, depth_mm: float, width_mm: float, dz: float = 0.08, dx: float = 0.16, margin: int = 16) -> Grid:
        nz_view, nx_view = round(depth_mm / dz), round(width_mm / dx)
        nz = cv2.getOptimalDFTSize(nz_view + 2 * margin)
        nx = cv2.getOptimalDFTSize(nx_view + 2 * margin)
        return cls(depth_mm, width_mm, dz, dx, nz, nx, margin, margin, nz_view, nx_view)

    @property
    def z(self) -> np.ndarray:
        """Depth of each row, mm, shape (nz, 1)."""
        return ((np.arange(self.nz, dtype=np.float32) - self.top) * self.dz)[:, None]

    @property
    def x(self) -> np.ndarray:
        """Lateral position of each column, mm, shape (1, nx)."""
        return ((np.arange(self.nx, dtype=np.float32) - self.left) * self.dx)[None, :]

    def crop(self, image: np.ndarray) -> np.ndarray:
        return image[self.top : self.top + self.nz_view, self.left : self.left + self.nx_view]


@dataclass(frozen=True)
class Imaging:
    """Transducer and system settings of a preset (a 10 MHz linear probe by default)."""

    frequency_mhz: float = 10.0
    attenuation_db_cm_mhz: float = 0.5
    tgc_compensation: float = 0.95
    axial_fwhm_mm: float = 0.28
    lateral_fwhm_mm: float = 0.55
    defocused_fwhm_mm: float = 1.2
    focus_mm: float = 17.0
    focal_zone_mm: float = 10.0
    noise_db_at_depth: float = -40.0
    dynamic_range_db: float = 60.0
    reference_grey: float = 135.0


FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def complex_gaussian(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Circular complex Gaussian field, unit variance per component, as (nz, nx, 2) float32."""
    return rng.standard_normal((*shape, 2), dtype=np.float32)


def transfer_function(grid: Grid, imaging: Imaging) -> np.ndarray:
    """The in-focus PSF as a Gaussian transfer function on the DFT grid (real, H(0) = 1)."""
    sigma_z = imaging.axial_fwhm_mm / FWHM_PER_SIGMA / grid.dz
    sigma_x = imaging.lateral_fwhm_mm / FWHM_PER_SIGMA / grid.dx
    fz = np.fft.fftfreq(grid.nz).astype(np.float32)[:, None]
    fx = np.fft.fftfreq(grid.nx).astype(np.float32)[None, :]
    gain: np.ndarray = np.exp(-2.0 * np.pi**2 * (sigma_z**2 * fz**2 + sigma_x**2 * fx**2)).astype(np.float32)
    return gain


class Imager:
    """Turns a complex scatterer field (already moved to the frame's tissue position) into 8 bits.

    Depth-only factors (residual attenuation after TGC, noise rising with the TGC, focal weighting) are
    per-row profiles prepared once; a frame then costs one forward and one inverse DFT, a lateral blur
    and a few array passes.
    """

    def __init__(self, grid: Grid, imaging: Imaging, rng: np.random.Generator, noise_fields: int = 5) -> None:
        self.grid = grid
        self.imaging = imaging
        self._h = transfer_function(grid, imaging)[..., None]
        z = grid.z[:, 0]
        round_trip_db = 2.0 * imaging.attenuation_db_cm_mhz * imaging.frequency_mhz * z / 10.0
        residual_db = -(1.0 - imaging.tgc_compensation) * round_trip_db
        self.signal_gain = (10.0 ** (residual_db / 20.0)).astype(np.float32)[:, None, None]
        tgc_db = imaging.tgc_compensation * round_trip_db
        noise_db = imaging.noise_db_at_depth + tgc_db - tgc_db.max()
        noise_gain = (10.0 ** (noise_db / 20.0)).astype(np.float32)[:, None, None]
        self._noise = [complex_gaussian(rng, (grid.nz, grid.nx)) * noise_gain for _ in range(noise_fields)]
        focus = np.exp(-(((z - imaging.focus_mm) / imaging.focal_zone_mm) ** 2))
        self._focus_weight = focus.astype(np.float32)[grid.top : grid.top + grid.nz_view, None, None]
        extra_fwhm = np.sqrt(imaging.defocused_fwhm_mm**2 - imaging.lateral_fwhm_mm**2)
        self._defocus_sigma = float(extra_fwhm / FWHM_PER_SIGMA / grid.dx)
        self.black_db: float | None = None

    def attenuate(self, amplitude: np.ndarray) -> np.ndarray:
        """Depth attenuation left over after TGC, applied to a scattering amplitude map (nz, nx).

        Applied in the tissue frame to save a pass per frame: the profile is smooth and tissue moves
        well under a millimetre, so the error is negligible."""
        return amplitude * self.signal_gain[..., 0]

    def log_envelope(self, scatterers: np.ndarray, frame: int) -> np.ndarray:
        """10·log10 of the echo power (= 20·log10 envelope) on the visible grid, before gain mapping.

        `scatterers` is consumed (noise is added in place): pass a fresh array."""
        scatterers += self._noise[frame % len(self._noise)]
        spectrum = cv2.dft(scatterers, flags=cv2.DFT_COMPLEX_OUTPUT)
        spectrum *= self._h
        focused = cv2.idft(spectrum, flags=cv2.DFT_SCALE)
        blurred = self.grid.crop(cv2.GaussianBlur(focused, (0, 0), sigmaX=self._defocus_sigma, sigmaY=1e-3))
        field = self.grid.crop(focused)  # blended in place: blurred + weight · (focused - blurred)
        field -= blurred
        field *= self._focus_weight
        field += blurred
        power = np.einsum("ijk,ijk->ij", field, field)
        power += np.float32(1e-24)
        log_power: np.ndarray = cv2.log(power)
        log_power *= np.float32(10.0 / np.log(10.0))
        return log_power

    def calibrate(self, log_envelope: np.ndarray, reference: np.ndarray) -> None:
        """Fix the overall gain so the reference tissue's mean lands on the preset's reference grey,
        as a sonographer sets the gain once per patient and leaves it."""
        mean_db = float(log_envelope[reference].mean())
        self.black_db = mean_db - self.imaging.reference_grey * self.imaging.dynamic_range_db / 255.0

    def compress(self, log_envelope: np.ndarray) -> np.ndarray:
        """Log compression: black_db … black_db + dynamic range onto 0 … 255."""
        if self.black_db is None:
            raise RuntimeError("calibrate() first")
        scale = 255.0 / self.imaging.dynamic_range_db
        # One pass: scale, shift, round and saturate to 0…255.
        return cv2.addWeighted(log_envelope, scale, log_envelope, 0.0, -self.black_db * scale, dtype=cv2.CV_8U)
