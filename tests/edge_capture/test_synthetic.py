"""The synthetic scanner: a plausible B-mode picture with known ground truth, on a scanner screen."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edge_capture.sources.base import SourceError, open_source
from edge_capture.sources.synthetic import SyntheticSource
from tests.clocks import FakeClock

FIXED_CLOCK = 1_780_000_000.0


@pytest.fixture(scope="module")
def thyroid() -> SyntheticSource:
    return SyntheticSource("thyroid", 1280, 720, 30.0, cycle_seconds=1.0, paced=False, clock=lambda: FIXED_CLOCK)


@pytest.fixture(scope="module")
def carotid() -> SyntheticSource:
    # Two heartbeats: enough to see the 1 Hz pulsation, cheaper than the default three.
    return SyntheticSource("carotid", 1280, 720, 30.0, cycle_seconds=2.0, paced=False, clock=lambda: FIXED_CLOCK)


@pytest.fixture(scope="module")
def carotid_cycle(carotid: SyntheticSource) -> list[np.ndarray]:
    return [carotid.render(k, FIXED_CLOCK) for k in range(carotid.cycle_frames)]


def disc(image: np.ndarray, centre: tuple[float, float], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    return image[np.hypot(xx - centre[0], yy - centre[1]) < radius]


def gcnr(a: np.ndarray, b: np.ndarray) -> float:
    ha = np.histogram(a, bins=256, range=(0, 256))[0] / a.size
    hb = np.histogram(b, bins=256, range=(0, 256))[0] / b.size
    return 1.0 - float(np.minimum(ha, hb).sum())


def lumen_diameter_px(source: SyntheticSource, image: np.ndarray, threshold: float = 60.0) -> int:
    """Dark run through the lumen centre on a 60-column average profile (speckle averaged out)."""
    cx, cy = (round(v) for v in source.lumen_centre_px or (0, 0))
    profile = image[:, cx - 30 : cx + 30, 1].astype(float).mean(axis=1)
    top = bottom = cy
    while profile[top - 1] < threshold:
        top -= 1
    while profile[bottom + 1] < threshold:
        bottom += 1
    return bottom - top + 1


@pytest.mark.parametrize("preset", ["thyroid", "carotid"])
def test_frames_are_bgr_of_the_asked_size(preset: str, request: pytest.FixtureRequest) -> None:
    source: SyntheticSource = request.getfixturevalue(preset)
    image = source.read()
    assert image.shape == (720, 1280, 3)
    assert image.dtype == np.uint8
    assert (source.width, source.height, source.fps) == (1280, 720, 30.0)


def test_field_of_view_and_scale_are_exposed(thyroid: SyntheticSource) -> None:
    fov = thyroid.fov
    assert 0.55 < fov.w * fov.h / (1280 * 720) < 0.72
    assert thyroid.mm_per_pixel == pytest.approx(thyroid.depth_mm / fov.h)
    assert 30.0 <= thyroid.depth_mm <= 50.0
    image = thyroid.render(0, FIXED_CLOCK)
    inside = image[fov.slices]
    assert inside.mean() > 60
    outside = image.copy()
    outside[fov.slices] = 0
    assert outside.mean() < 10  # black screen with text and marks only


def test_ui_outside_the_fov_is_static_except_the_clock(thyroid: SyntheticSource) -> None:
    a = thyroid.render(0, FIXED_CLOCK)
    b = thyroid.render(7, FIXED_CLOCK + 1.0)
    changed = np.any(a != b, axis=2)
    fov, clock = thyroid.fov, thyroid.layout.clock
    changed[fov.slices] = False
    assert changed[clock.slices].any()
    changed[clock.slices] = False
    assert not changed.any()


def test_nodule_is_hypoechoic_against_the_thyroid(thyroid: SyntheticSource) -> None:
    image = thyroid.render(0, FIXED_CLOCK)[..., 1]
    assert thyroid.nodule_centre_px is not None and thyroid.parenchyma_centre_px is not None
    nodule = disc(image, thyroid.nodule_centre_px, 0.7 * thyroid.nodule_radius_px)
    parenchyma = disc(image, thyroid.parenchyma_centre_px, 3.0 / thyroid.mm_per_pixel)
    assert nodule.mean() < parenchyma.mean() - 30
    assert gcnr(nodule, parenchyma) > 0.5


def test_thyroid_speckle_is_fully_developed(thyroid: SyntheticSource) -> None:
    """Log-compressed Rayleigh speckle has a grey-level std of 5.57 dB (QC.md): check a homogeneous
    patch is near that (resizing to the screen smooths it a little) and nowhere saturated."""
    image = thyroid.render(0, FIXED_CLOCK)[..., 1].astype(float)
    assert thyroid.parenchyma_centre_px is not None
    patch = disc(image, thyroid.parenchyma_centre_px, 3.0 / thyroid.mm_per_pixel)
    std_db = patch.std() * thyroid.dynamic_range_db / 255.0
    assert 3.5 < std_db < 7.0
    envelope = 10.0 ** (patch * thyroid.dynamic_range_db / 255.0 / 20.0)
    assert 1.4 < envelope.mean() / envelope.std() < 2.8  # 1.91 for a Rayleigh envelope
    fov = image[thyroid.fov.slices]
    assert (fov >= 250).mean() < 0.01


def test_carotid_lumen_is_dark(carotid: SyntheticSource, carotid_cycle: list[np.ndarray]) -> None:
    assert carotid.lumen_centre_px is not None
    radius = 0.6 * carotid.lumen_diameter_px(0) / 2
    lumen = disc(carotid_cycle[0][..., 1], carotid.lumen_centre_px, radius)
    assert lumen.mean() < 25


def test_carotid_diameter_pulsates_at_the_heart_rate(carotid: SyntheticSource, carotid_cycle: list[np.ndarray]) -> None:
    measured = np.array([lumen_diameter_px(carotid, image) for image in carotid_cycle], float)
    truth = np.array([carotid.lumen_diameter_px(k) for k in range(carotid.cycle_frames)])
    assert np.ptp(measured) >= 5
    assert np.ptp(measured) == pytest.approx(np.ptp(truth), rel=0.4)
    assert abs(measured.mean() - truth.mean()) * carotid.mm_per_pixel < 1.2
    assert np.corrcoef(measured, truth)[0, 1] > 0.8
    spectrum = np.abs(np.fft.rfft(measured - measured.mean()))
    frequencies = np.fft.rfftfreq(len(measured), 1.0 / carotid.fps)
    assert frequencies[np.argmax(spectrum)] == pytest.approx(1.0, abs=0.15)


def test_frames_change_over_time_and_the_loop_is_seamless(
    carotid: SyntheticSource, carotid_cycle: list[np.ndarray]
) -> None:
    fov = carotid.fov
    cycle = [image[fov.slices].astype(np.int16) for image in carotid_cycle]
    steps = [np.abs(b - a).mean() for a, b in itertools.pairwise(cycle)]
    assert min(steps) > 0.5  # QC's "frozen" threshold
    wrap = np.abs(cycle[0] - cycle[-1]).mean()
    assert 0.5 < wrap < 2 * max(steps)


def test_same_seed_same_pictures_other_seed_other_speckle() -> None:
    kwargs = {"width": 640, "height": 360, "cycle_seconds": 0.2, "paced": False, "clock": lambda: 0.0}
    a = SyntheticSource("carotid", seed=3, **kwargs).read()  # type: ignore[arg-type]
    b = SyntheticSource("carotid", seed=3, **kwargs).read()  # type: ignore[arg-type]
    c = SyntheticSource("carotid", seed=4, **kwargs).read()  # type: ignore[arg-type]
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c).mean() > 5


def test_paced_source_runs_at_its_frame_rate() -> None:
    clock = FakeClock()
    source = SyntheticSource("carotid", 640, 360, 30.0, cycle_seconds=0.5, pace_clock=clock)
    source.read()
    started = clock.now
    for _ in range(15):
        source.read()
    assert clock.now - started == pytest.approx(0.5)
    assert clock.slept == pytest.approx([1 / 30] * 15)


def test_open_source_names_the_presets() -> None:
    source = open_source("synthetic:carotid", 640, 360, 5.0)
    assert isinstance(source, SyntheticSource)
    assert source.heart_rate_hz == pytest.approx(1.0)
    assert source.read().shape == (360, 640, 3)
    with pytest.raises(SourceError) as error:
        open_source("synthetic:liver")
    assert error.value.code == "bad_spec"
    assert "liver" in error.value.message


def fault_frames(fault: str | None, count: int = 3) -> tuple[SyntheticSource, list[np.ndarray]]:
    source = SyntheticSource(
        "thyroid", 640, 360, 30.0, cycle_seconds=0.2, paced=False, clock=lambda: FIXED_CLOCK, fault=fault
    )
    return source, [source.read()[source.fov.slices][..., 1] for _ in range(count)]


def test_faults_are_injected_by_construction() -> None:
    normal, (image, *_) = fault_frames(None)
    _, frozen = fault_frames("freeze")
    assert all(np.array_equal(frozen[0], f) for f in frozen)
    _, (black, *_) = fault_frames("black")
    assert black.max() == 0
    _, (saturated, *_) = fault_frames("saturated")
    assert (saturated >= 250).mean() > 0.2 > (image >= 250).mean()
    _, (dark, *_) = fault_frames("dark")
    assert (dark <= 5).mean() > 0.6 > (image <= 5).mean()
    _, (no_contact, *_) = fault_frames("no_contact")
    assert (no_contact <= 5).mean() > 0.8
    assert no_contact[: no_contact.shape[0] // 8].mean() > 4 * no_contact[no_contact.shape[0] // 2 :].mean()


def test_blur_lowers_sharpness() -> None:
    def tenengrad(image: np.ndarray) -> float:
        lateral = np.diff(image.astype(float), axis=1)
        return float((lateral**2).mean())

    _, (sharp, *_) = fault_frames(None, 1)
    _, (blurred, *_) = fault_frames("blur", 1)
    assert tenengrad(blurred) < 0.5 * tenengrad(sharp)


def test_unknown_fault_is_refused() -> None:
    with pytest.raises(SourceError) as error:
        SyntheticSource("thyroid", 640, 360, fault="smudge")
    assert error.value.code == "bad_spec"
