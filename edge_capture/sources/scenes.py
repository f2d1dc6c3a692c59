"""The two anatomical scenes of the synthetic source, with their ground truth in mm.

Thyroid, transverse, left lobe (seen from the feet: the patient's right on the screen's left): skin,
subcutaneous fat with septa, strap muscles and the sternocleidomastoid (striated, hypoechoic), the lobe
(homogeneous, brighter than muscle) inside its echogenic capsule, a solid hypoechoic nodule with a thin
dark halo, the trachea at the medial (left) edge with its cartilage ring, bright air interface, shadow
and reverberations, the common carotid artery and the internal jugular vein laterally, longus colli and
the prevertebral plane at depth.

Carotid, longitudinal: skin, fat, sternocleidomastoid, a tapering jugular vein, the common carotid
artery with the near and far wall's intima-media "double line" (bright intima, dark media, brightest
adventitia) and an anechoic lumen widening into the bulb, posterior enhancement, longus colli and
transverse processes with their shadows. The lumen diameter pulsates with the cardiac cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge_capture.sources import anatomy as a
from edge_capture.sources import motion as m
from edge_capture.sources.bmode import Grid, Imaging

FLUID_DB_MM = -0.7  # blood attenuates ~0.15 dB/cm/MHz vs 0.5 for tissue: enhancement below vessels
AIR_DB_MM = 30.0
BONE_DB_MM = 12.0


@dataclass(frozen=True)
class Landmarks:
    """Ground truth at rest (drift moves everything by up to ±0.35 mm laterally, ±0.15 mm in depth)."""

    nodule_centre_mm: tuple[float, float] | None = None  # (lateral, depth)
    nodule_radius_mm: float = 0.0
    parenchyma_centre_mm: tuple[float, float] | None = None  # a homogeneous thyroid patch, 3 mm radius
    lumen_centre_mm: tuple[float, float] | None = None  # the carotid lumen at the middle of the image
    lumen_radius_mm: float = 0.0  # at end-diastole
    lumen_tilt: float = 0.0  # dz/dx of the vessel axis (longitudinal view)
    distension: float = 0.0  # systolic radius = radius · (1 + distension)


@dataclass
class Scene:
    preset: str
    imaging: Imaging
    amplitude: np.ndarray  # diffuse scattering amplitude per grid sample (speckle), shadows applied
    specular: np.ndarray  # coherent reflection amplitude (interfaces: walls, capsule, fascia, bone)
    reference: np.ndarray  # bool on the visible grid: tissue whose mean grey the gain is set on
    motion: m.Motion
    landmarks: Landmarks
    beats: int

    def diameter_mm(self, fraction: float) -> float:
        """Lumen diameter at a point of the cycle (0…1), from the same waveform that moves the tissue."""
        lm = self.landmarks
        return 2 * lm.lumen_radius_mm * (1 + lm.distension * float(m.pulse(fraction * self.beats)))


class Canvas:
    """The maps of one scene, painted back to front."""

    def __init__(self, grid: Grid, rng: np.random.Generator, background: float) -> None:
        self.grid, self.rng = grid, rng
        self.amp = background * a.texture(rng, grid, 1.5, 2.0)
        self.specular = np.zeros_like(self.amp)
        self.excess = np.zeros_like(self.amp)
        self._patchiness = a.texture(rng, grid, 1.0, 4.0)

    def paint(self, coverage: np.ndarray, value: np.ndarray | float) -> None:
        a.paint(self.amp, coverage, value)
        a.paint(self.specular, coverage, 0.0)

    def reflector(self, distance: np.ndarray, strength: float, width: float = 0.06) -> None:
        """A smooth interface (specular echo) along the zero of a signed distance: strongest where the
        beam (vertical) meets it head-on, faint where it is steep, and never perfectly even."""
        distance = np.broadcast_to(distance, self.amp.shape)
        along_z, along_x = np.gradient(distance, self.grid.dz, self.grid.dx)
        incidence = np.abs(along_z) / np.maximum(np.hypot(along_z, along_x), 1e-6)
        echo = strength * (0.12 + 0.88 * incidence**4) * self._patchiness * a.line(distance, width)
        np.maximum(self.specular, echo, out=self.specular)

    def fluid(self, coverage: np.ndarray, value: float = 0.02) -> None:
        self.paint(coverage, value)
        self.excess += FLUID_DB_MM * coverage

    def muscle(self, slope: float) -> np.ndarray:
        """Hypoechoic muscle with bright fibro-fatty septa between the fibre bundles."""
        return 0.2 + 0.45 * a.striations(self.rng, self.grid, 0.9, slope, sharpness=6.0)

    def bone(self, centres: tuple[float, ...], depth: float) -> None:
        """Bony humps (vertebral body, transverse processes): a bright cortex and a shadow below."""
        for centre in centres:
            surface = depth + 0.06 * (self.grid.x - centre) ** 2
            span = a.soft_span(self.grid, centre - 9.0, centre + 9.0, 1.5)
            self.reflector((self.grid.z - surface) + 1e3 * (1.0 - span), 3.0, 0.15)
            self.excess += BONE_DB_MM * a.soft_band(self.grid, surface + 0.2, 1e3, 0.3) * span

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """Amplitude and specular maps with shadowing and enhancement applied."""
        gain = a.shadow_gain(self.grid, self.excess)
        return self.amp * gain, self.specular * gain


def _skin_and_fat(c: Canvas, fat_depth: float) -> np.ndarray:
    """Gel (anechoic), skin line, echogenic dermis, fat with bright septa, the superficial fascia;
    returns the fascia's depth profile."""
    g = c.grid
    c.paint(a.soft_band(g, -20.0, 0.0, 0.1), 0.0)
    c.reflector(g.z - 0.05, 2.0, 0.08)
    dermis = a.wavy(g, 1.2, 0.1, 23.0)
    c.paint(a.soft_band(g, 0.0, dermis, 0.15), 1.4)
    fascia = a.wavy(g, fat_depth, 0.3, 31.0, 1.0)
    septa = a.striations(c.rng, g, 1.6, 0.05, sharpness=10.0)
    c.paint(a.soft_band(g, dermis, fascia), 0.22 + 0.9 * septa)
    c.reflector(g.z - fascia, 1.2)
    return fascia


def _scale(distension: float, beats: int) -> Callable[[float], float]:
    return lambda fraction: 1.0 + distension * float(m.pulse(fraction * beats))


def thyroid(grid: Grid, rng: np.random.Generator, beats: int) -> Scene:
    c = Canvas(grid, rng, 0.45)
    g = grid
    fascia = _skin_and_fat(c, 4.0)
    strap_bottom = a.wavy(g, 8.2, 0.4, 40.0)
    medial = a.soft_span(g, -20.0, 36.0, 4.0)
    c.paint(a.soft_band(g, fascia, strap_bottom) * medial, c.muscle(0.03))
    c.reflector(g.z - strap_bottom + 1e3 * (1.0 - medial), 1.0)
    scm = a.ellipse_distance(g, 45.0, 8.0, 15.0, 3.8, angle_deg=-8.0)
    c.paint(a.inside(scm), c.muscle(-0.12))
    c.reflector(scm, 1.0)
    c.paint(a.soft_ellipse(g, 20.0, 30.5, 9.0, 3.5, angle_deg=4.0), c.muscle(0.05))

    lobe_outline = a.ellipse_distance(g, 24.0, 17.5, 14.0, 8.5, angle_deg=8.0)
    isthmus = a.soft_band(g, strap_bottom + 0.3, 12.5) * a.soft_span(g, -20.0, 14.0, 3.0)
    lobe = np.maximum(a.inside(lobe_outline), isthmus)
    c.paint(lobe, 1.0 * a.texture(rng, g, 0.6, 1.0))
    c.reflector(lobe_outline + 1e3 * isthmus, 0.9)

    nodule_x, nodule_z, nodule_r = 27.0, 17.5, 4.5
    theta = a.polar_angle(g, nodule_x, nodule_z)
    lobulation = 1.0 + 0.05 * np.sin(3 * theta + 0.7) + 0.03 * np.sin(5 * theta + 2.0)
    halo = a.ellipse_distance(g, nodule_x, nodule_z, nodule_r, nodule_r, radius_scale=lobulation)
    c.paint(a.inside(halo - 0.6, 0.2), 0.06)
    c.paint(a.inside(halo, 0.2), 0.30 * a.texture(rng, g, 0.8, 2.0))

    _trachea(c)
    cca = np.hypot(g.x - 44.0, g.z - 20.0) - 3.3
    c.paint(a.shell(cca, 0.0, 0.8), 1.0)
    c.fluid(a.inside(cca, 0.1))
    c.reflector(cca, 1.6, 0.07)
    c.reflector(cca - 0.6, 2.0, 0.08)
    ijv = a.ellipse_distance(g, 53.0, 14.5, 5.5, 2.8, angle_deg=-6.0)
    c.fluid(a.inside(ijv, 0.15))
    c.reflector(ijv, 0.8)
    c.bone((20.0,), 34.5)
    reference = (lobe > 0.99) & (halo > 1.0) & (g.x < 36.0) & (c.excess == 0.0)

    amp, specular = c.finish()
    amp += _reverberations(g, -5.0, 25.0, 12.0)
    motion = m.Motion(g, warps=[m.radial_warp(44.0, 20.0, 3.3, _scale(0.07, beats))])
    landmarks = Landmarks(
        nodule_centre_mm=(nodule_x, nodule_z),
        nodule_radius_mm=nodule_r,
        parenchyma_centre_mm=(15.0, 17.5),
        lumen_centre_mm=(44.0, 20.0),
        lumen_radius_mm=3.3,
        distension=0.07,
    )
    imaging = Imaging(focus_mm=17.5, reference_grey=135.0)
    return Scene("thyroid", imaging, amp, specular, g.crop(reference), motion, landmarks, beats)


def _trachea(c: Canvas) -> None:
    """Cartilage ring (hypoechoic), the bright mucosa-air interface, and air (a shadow) beneath it."""
    g, cx, cz, air_r = c.grid, -5.0, 25.0, 12.0
    anterior = (g.z < cz).astype(np.float32)
    wall = np.hypot(g.x - cx, g.z - cz) - air_r
    c.paint(a.shell(wall, 0.0, 1.6) * anterior, 0.1)
    c.paint(a.inside(wall, 0.1), 0.0)
    c.reflector(wall, 4.0, 0.1)
    c.excess += AIR_DB_MM * a.inside(wall - 0.15, 0.1)


def _reverberations(grid: Grid, cx: float, cz: float, radius: float) -> np.ndarray:
    """Echoes bouncing between probe and the air interface: arcs at 2× and 3× its depth."""
    offset = np.clip(radius**2 - (grid.x - cx) ** 2, 0.0, None)
    interface = cz - np.sqrt(offset)
    covered = (np.abs(grid.x - cx) < radius * 0.95).astype(np.float32)
    echoes = np.zeros((grid.nz, grid.nx), np.float32)
    for order, strength in ((2, 0.8), (3, 0.3)):
        echoes += strength * a.soft_band(grid, order * interface - 0.25, order * interface + 0.25, 0.2) * covered
    return echoes


def carotid(grid: Grid, rng: np.random.Generator, beats: int) -> Scene:
    c = Canvas(grid, rng, 0.45)
    g = grid
    fascia = _skin_and_fat(c, 3.5)
    scm_bottom = a.wavy(g, 9.4, 0.5, 37.0) - 0.03 * g.x
    c.paint(a.soft_band(g, fascia, scm_bottom), c.muscle(0.06))
    c.reflector(g.z - scm_bottom, 1.0)

    ijv_top = scm_bottom + 0.4
    ijv_bottom = ijv_top + np.clip(3.0 * (1.0 - g.x / 40.0), 0.0, None)
    ijv = a.soft_band(g, ijv_top, ijv_bottom, 0.2) * a.soft_span(g, -20.0, 36.0, 3.0)
    c.fluid(ijv)
    c.reflector(g.z - ijv_bottom + 1e3 * (ijv_bottom - ijv_top < 0.2), 0.8)

    middle, radius, tilt = g.width_mm / 2, 3.2, -0.035

    def axis(x: np.ndarray) -> np.ndarray:
        return 19.0 + tilt * (x - middle)

    def lumen_radius(x: np.ndarray) -> np.ndarray:
        bulb = np.clip((x - 0.72 * g.width_mm) / 8.0, 0.0, 1.0)
        return radius + 1.0 * (3 * bulb**2 - 2 * bulb**3)

    wall = np.abs(g.z - axis(g.x)) - lumen_radius(g.x)
    c.paint(a.shell(wall, 1.1, 2.2), 0.8)
    c.paint(a.shell(wall, 0.55, 1.1), 1.3)
    c.paint(a.shell(wall, 0.0, 0.55), 0.12)
    c.fluid(a.inside(wall, 0.08), 0.015)
    c.reflector(wall, 1.7, 0.06)  # lumen-intima interface
    c.reflector(wall - 0.6, 2.6, 0.08)  # media-adventitia interface
    reference = (c.amp > 0.2) & (c.amp < 1.2) & (g.z > 2.0) & (g.z < 30.0) & (c.excess == 0.0)

    c.paint(a.soft_band(g, 28.0, 33.5), c.muscle(0.01))
    c.reflector(g.z - 33.7, 1.0)
    c.bone((6.0, 28.0, 50.0), 34.5)
    amp, specular = c.finish()
    motion = m.Motion(g, warps=[m.tube_warp(axis, lumen_radius, _scale(0.09, beats))])
    landmarks = Landmarks(lumen_centre_mm=(middle, 19.0), lumen_radius_mm=radius, lumen_tilt=tilt, distension=0.09)
    imaging = Imaging(focus_mm=20.0, reference_grey=110.0)
    return Scene("carotid", imaging, amp, specular, g.crop(reference), motion, landmarks, beats)


SCENES: dict[str, Callable[[Grid, np.random.Generator, int], Scene]] = {"thyroid": thyroid, "carotid": carotid}
DEPTH_MM = {"thyroid": 40.0, "carotid": 40.0}
