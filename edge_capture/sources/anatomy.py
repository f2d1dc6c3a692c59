"""Drawing tissue for the synthetic source: echogenicity, interfaces and attenuation maps.

Maps are float32 arrays on the simulation `Grid` in mm coordinates. Echogenicity is a scattering
amplitude relative to thyroid parenchyma (1.0). Shapes have soft edges a fraction of a millimetre wide,
because real interfaces are not pixel-sharp and hard edges ring under the k-space PSF. Shapes are
described by signed distances (mm, negative inside) so that a region, its rim and its outline echo
come from the same geometry.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_capture.sources.bmode import Grid


def ellipse_distance(
    grid: Grid,
    cx: float,
    cz: float,
    ax: float,
    az: float,
    angle_deg: float = 0.0,
    radius_scale: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Approximate signed distance (mm, negative inside) to an ellipse's outline: the normalised radius
    minus one, divided by its gradient, exact on the outline. `radius_scale` may vary with angle."""
    theta = np.deg2rad(angle_deg)
    dx, dz = grid.x - cx, grid.z - cz
    u = dx * np.cos(theta) + dz * np.sin(theta)
    v = -dx * np.sin(theta) + dz * np.cos(theta)
    rho = np.sqrt((u / ax) ** 2 + (v / az) ** 2)
    gradient = np.sqrt((u / ax**2) ** 2 + (v / az**2) ** 2) / np.maximum(rho, 1e-6)
    scaled = rho / radius_scale
    distance: np.ndarray = ((scaled - 1.0) * radius_scale / np.maximum(gradient, 1e-6)).astype(np.float32)
    return distance


def inside(distance: np.ndarray, edge: float = 0.3) -> np.ndarray:
    """Coverage 0…1 of the region where the signed distance is negative, with a soft edge."""
    return np.clip(0.5 - distance / edge, 0.0, 1.0).astype(np.float32)


def line(distance: np.ndarray, width: float = 0.06) -> np.ndarray:
    """A thin interface profile (peak 1) along the zero of a signed distance."""
    return np.exp(-((distance / width) ** 2)).astype(np.float32)


def shell(distance: np.ndarray, inner: float, outer: float, edge: float = 0.08) -> np.ndarray:
    """Coverage of the layer inner ≤ distance < outer, for a signed distance to an interface in mm."""
    upper = np.clip(0.5 + (distance - inner) / edge, 0.0, 1.0)
    lower = np.clip(0.5 + (outer - distance) / edge, 0.0, 1.0)
    return (upper * lower).astype(np.float32)


def soft_ellipse(
    grid: Grid,
    cx: float,
    cz: float,
    ax: float,
    az: float,
    angle_deg: float = 0.0,
    edge: float = 0.3,
    radius_scale: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Coverage 0…1 of an ellipse (centre and semi-axes in mm)."""
    return inside(ellipse_distance(grid, cx, cz, ax, az, angle_deg, radius_scale), edge)


def polar_angle(grid: Grid, cx: float, cz: float) -> np.ndarray:
    return np.arctan2(grid.z - cz, grid.x - cx)


def soft_band(grid: Grid, top: np.ndarray | float, bottom: np.ndarray | float, edge: float = 0.3) -> np.ndarray:
    """Coverage of the layer between two depth profiles (scalars or (1, nx) arrays, mm)."""
    z = grid.z
    upper = np.clip(0.5 + (z - top) / edge, 0.0, 1.0)
    lower = np.clip(0.5 + (bottom - z) / edge, 0.0, 1.0)
    return (upper * lower).astype(np.float32)


def soft_span(grid: Grid, x0: float, x1: float, edge: float = 2.0) -> np.ndarray:
    """Coverage of the lateral interval x0…x1 (mm), fading over `edge`."""
    x = grid.x
    return (np.clip(0.5 + (x - x0) / edge, 0, 1) * np.clip(0.5 + (x1 - x) / edge, 0, 1)).astype(np.float32)


def paint(target: np.ndarray, coverage: np.ndarray, value: np.ndarray | float) -> None:
    """Painter's algorithm: where `coverage` is 1 the tissue becomes `value`."""
    target += coverage * (value - target)


def wavy(grid: Grid, depth: float, amplitude: float, period: float, phase: float = 0.0) -> np.ndarray:
    """An interface depth profile (1, nx) that undulates gently, as fascia does."""
    return (depth + amplitude * np.sin(2 * np.pi * grid.x / period + phase)).astype(np.float32)


def smooth_noise(rng: np.random.Generator, grid: Grid, corr_mm: float) -> np.ndarray:
    """Gaussian noise smoothed over about `corr_mm`, rescaled to unit standard deviation."""
    raw = rng.standard_normal((grid.nz, grid.nx), dtype=np.float32)
    smooth = cv2.GaussianBlur(raw, (0, 0), sigmaX=corr_mm / grid.dx, sigmaY=corr_mm / grid.dz)
    return smooth / max(float(smooth.std()), 1e-6)


def texture(rng: np.random.Generator, grid: Grid, corr_mm: float, sigma_db: float) -> np.ndarray:
    """Log-normal multiplicative texture: slow tissue inhomogeneity on top of the speckle."""
    return (10.0 ** (sigma_db * smooth_noise(rng, grid, corr_mm) / 20.0)).astype(np.float32)


def striations(
    rng: np.random.Generator, grid: Grid, period_mm: float, slope: float, sharpness: float = 6.0
) -> np.ndarray:
    """0…1 thin quasi-parallel lines (muscle fibre bundles, fibro-fatty septa) along `slope` (dz/dx)."""
    wobble = 1.5 * smooth_noise(rng, grid, 2.0)
    phase = 2 * np.pi * (grid.z - slope * grid.x) / period_mm + wobble
    return ((0.5 + 0.5 * np.cos(phase)) ** sharpness).astype(np.float32)


def shadow_gain(grid: Grid, excess_db_per_mm: np.ndarray) -> np.ndarray:
    """Amplitude gain from attenuation above each sample beyond what the TGC expects: < 1 under air
    or bone (shadow), > 1 under fluid (posterior enhancement). Round trip, accumulated down each column."""
    cumulative_db = np.cumsum(excess_db_per_mm, axis=0) * grid.dz
    return (10.0 ** (-cumulative_db / 20.0)).astype(np.float32)
