"""The study page against the real server: images stored by STOW-RS and read back through QIDO/WADO (a real
ultrasound file rendered at its full size, a synthetic still with known US Region Calibration measured by the
caliper, a CT windowed and a prior study from another site side by side), the lock renewed while the page is open
and released on leaving it, and a critical finding travelling to the referring centre's banner."""

from __future__ import annotations

import io
import itertools
import math
import re
from datetime import date
from typing import Any

import numpy as np
import pydicom
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, UltrasoundMultiFrameImageStorage, generate_uid
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import CriticalFinding
from tests.expert_console.test_app import Server, context, open_console, server  # noqa: F401  (fixtures)
from tests.signaling_server.reading.studies import arrive
from tests.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

REGIONAL_ISSUER = "CN-RESIDENT-ID"  # Settings.regional_id_issuer: the ID every site shares
# The calibrated still: one 2D tissue region, cm per pixel across and down (deliberately different).
DELTA_X_CM, DELTA_Y_CM = 0.01, 0.015
ROWS, COLUMNS = 300, 400
REGION = (20, 30, 379, 279)  # MinX0, MinY0, MaxX1, MaxY1


def calibrated_still(study_uid: str) -> bytes:
    """A grey Ultrasound Image with one calibrated region (DICOM.md: US Region Calibration), Part 10 bytes."""
    ds = ultrasound(study_uid, UltrasoundImageStorage)
    region = Dataset()
    region.RegionSpatialFormat = 1
    region.RegionDataType = 1
    region.RegionFlags = 0
    region.RegionLocationMinX0, region.RegionLocationMinY0, region.RegionLocationMaxX1, region.RegionLocationMaxY1 = (
        REGION
    )
    region.PhysicalUnitsXDirection = 3
    region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = DELTA_X_CM
    region.PhysicalDeltaY = DELTA_Y_CM
    ds.SequenceOfUltrasoundRegions = [region]
    pixels = np.zeros((ROWS, COLUMNS), np.uint8)
    pixels[REGION[1] : REGION[3] + 1, REGION[0] : REGION[2] + 1] = 90
    pixels[::25, :] = 200  # a grid, to see where one clicks
    ds.set_pixel_data(pixels, "MONOCHROME2", 8, generate_instance_uid=False)
    return part10(ds)


def clip(study_uid: str, frames: int, frame_time_ms: float) -> bytes:
    """A grey Ultrasound Multi-frame Image: a bright bar that moves down one step per frame."""
    ds = ultrasound(study_uid, UltrasoundMultiFrameImageStorage)
    ds.InstanceNumber = 2
    pixels = np.zeros((frames, 64, 96), np.uint8)
    for frame in range(frames):
        pixels[frame, frame * 8 : frame * 8 + 8, :] = 255
    ds.set_pixel_data(pixels, "MONOCHROME2", 8, generate_instance_uid=False)
    ds.FrameTime = frame_time_ms
    ds.FrameIncrementPointer = 0x00181063  # FrameTime
    return part10(ds)


def ultrasound(study_uid: str, sop_class: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "US"
    ds.PatientName = "Caliper^Carla"
    ds.PatientID = "P-CAL"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyDate = date.today().strftime("%Y%m%d")
    ds.StudyTime = "101010"
    ds.AccessionNumber = "ACAL1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.BodyPartExamined = "THYROID"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def sample_file(name: str, study_uid: str, patient_id: str, *, regional: bool = False) -> bytes:
    """One of pydicom's real test files, moved into `study_uid` and given `patient_id` (the region's shared ID
    when `regional`, with a birth date, so that the same person links across sites)."""
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID = patient_id
    if regional:  # a shared ID links sites only when the name and birth date agree too (docs/SECURITY.md §3)
        ds.IssuerOfPatientID = REGIONAL_ISSUER
        ds.PatientBirthDate = "19700101"
    return part10(ds)


def part10(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


async def stow(running: Server, objects: list[bytes], credential: str) -> None:
    """STOW-RS as an edge device does (its bearer credential: the objects go to the device's site)."""
    boundary = "teleus-test-boundary"
    body = b"".join(
        b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + obj + b"\r\n" for obj in objects
    )
    body += b"--" + boundary.encode() + b"--\r\n"
    device = await running.api(bearer=credential)
    headers = {
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": "application/dicom+json",
    }
    async with device.session.post(f"{running.url}/dicomweb/studies", data=body, headers=headers) as response:
        assert response.status == 200, await response.text()


async def study_id(running: Server, study_uid: str) -> str:
    api = await running.api("expert")
    status, queue = await api.get("/api/v1/studies")
    assert status == 200, queue
    return next(s["id"] for s in queue["studies"] if s["study_uid"] == study_uid)


async def shows_at_natural_size(page: Page, testid: str, columns: int, rows: int) -> None:
    """Wait until the image `testid` has loaded a picture of columns × rows pixels (its natural size)."""
    await page.wait_for_function(
        """([id, w, h]) => {
             const img = document.querySelector(`[data-testid=${id}]`);
             return img && img.complete && img.naturalWidth === w && img.naturalHeight === h;
           }""",
        arg=[testid, columns, rows],
        timeout=5000,
    )


async def click_pixel(page: Page, pane: str, x: int, y: int) -> None:
    """Click the centre of image pixel (x, y) in a pane, wherever zoom and pan have put it."""
    box = await page.locator(f"[data-testid={pane}-image]").bounding_box()
    assert box is not None
    columns, rows = await page.locator(f"[data-testid={pane}-image]").evaluate(
        "(img) => [img.naturalWidth, img.naturalHeight]"
    )
    await page.mouse.click(box["x"] + (x + 0.5) * box["width"] / columns, box["y"] + (y + 0.5) * box["height"] / rows)


async def test_real_ultrasound_at_full_size_uncalibrated_and_a_clip_played_at_its_frame_time(
    server: Server,  # noqa: F811
    context: BrowserContext,  # noqa: F811
) -> None:
    study_uid = generate_uid()
    frames, frame_time = 6, 120.0
    objects = [sample_file("US1_UNCR.dcm", study_uid, "P-CAL"), clip(study_uid, frames, frame_time)]
    await stow(server, objects, server.world.device_a_credential)
    sid = await study_id(server, study_uid)
    await server.sign_in(context, "expert")
    page, problems = await open_console(context, f"#/studies/{sid}")
    await expect(page.locator("[data-testid=thumbnail]")).to_have_count(2)
    await page.locator("[data-testid=thumbnail][title=image]").click()
    await shows_at_natural_size(page, "main-image", 640, 480)  # Columns × Rows of US1_UNCR
    src = await page.locator("[data-testid=main-image]").get_attribute("src")
    assert src and re.fullmatch(rf"/dicomweb/studies/{study_uid}/series/[\d.]+/instances/[\d.]+/rendered", src)
    main = page.locator('[data-pane="main"]')
    await expect(main.locator("[data-testid=pane-info]")).to_contain_text("640×480 · no calibration")
    await expect(main.locator("[data-tool=window]")).to_be_hidden()  # ultrasound arrives rendered
    await expect(main.locator("[data-action=play]")).to_be_hidden()  # a still

    await main.locator("[data-tool=caliper]").click()
    await click_pixel(page, "main", 100, 100)
    await click_pixel(page, "main", 300, 200)
    readout = main.locator("[data-testid=caliper-readout]")
    await expect(readout).to_have_text("uncalibrated")
    await expect(readout).to_have_attribute("data-status", "uncalibrated")
    await expect(main.locator(".pane-overlay line")).to_have_count(1)  # drawn even when it cannot be measured

    await page.locator("[data-testid=thumbnail][title^=clip]").click()
    await expect(main.locator("[data-testid=frame-label]")).to_have_text(f"1 / {frames}")
    await shows_at_natural_size(page, "main-image", 96, 64)
    await page.evaluate(
        """() => {
             const img = document.querySelector('[data-testid=main-image]');
             window.shown = [];
             new MutationObserver(() => window.shown.push([img.getAttribute('src'), performance.now()]))
               .observe(img, {attributes: true, attributeFilter: ['src']});
           }"""
    )
    await main.locator("[data-action=play]").click()
    await page.wait_for_function(f"window.shown.length >= {frames + 1}", timeout=5000)
    await main.locator("[data-action=play]").click()  # pause
    shown = await page.evaluate("window.shown")
    numbers = [int(re.search(r"/frames/(\d+)/rendered", url).group(1)) for url, _ in shown]  # type: ignore[union-attr]
    assert numbers[: frames + 1] == [*range(2, frames + 1), 1, 2]  # in order, looping
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(shown)][:frames]
    # at the clip's own FrameTime: never faster on average (one late observer callback may shorten one gap), and
    # not much slower either
    assert sum(gaps) / len(gaps) >= frame_time * 0.95, gaps
    assert min(gaps) >= frame_time * 0.5, gaps
    assert sorted(gaps)[len(gaps) // 2] < frame_time * 2, gaps
    assert problems == []


async def test_caliper_measures_a_calibrated_still_in_mm(server: Server, context: BrowserContext) -> None:  # noqa: F811
    study_uid = generate_uid()
    await stow(server, [calibrated_still(study_uid)], server.world.device_a_credential)
    sid = await study_id(server, study_uid)
    await server.sign_in(context, "expert")
    page, problems = await open_console(context, f"#/studies/{sid}")
    await shows_at_natural_size(page, "main-image", COLUMNS, ROWS)
    main = page.locator('[data-pane="main"]')
    await expect(main.locator("[data-testid=pane-info]")).to_contain_text("1 calibrated region(s)")
    await main.locator("[data-tool=caliper]").click()
    readout = main.locator("[data-testid=caliper-readout]")

    a, b = (50, 60), (290, 240)
    expected = math.hypot((b[0] - a[0]) * DELTA_X_CM, (b[1] - a[1]) * DELTA_Y_CM) * 10  # cm → mm
    await click_pixel(page, "main", *a)
    await expect(readout).to_have_text("Click the second point")
    await click_pixel(page, "main", *b)
    await expect(readout).to_have_text(f"{expected:.1f} mm")
    assert float(await readout.get_attribute("data-mm") or "nan") == pytest.approx(expected, abs=1e-3)
    await expect(main.locator(".pane-overlay .caliper-label")).to_have_text(f"{expected:.1f} mm")

    # the same two pixels measure the same after zooming in: the distance is the anatomy's, not the screen's
    await main.locator("[data-action=zoom-in]").click()
    await main.locator("[data-action=zoom-in]").click()
    await expect(main.locator("[data-testid=zoom]")).not_to_have_text("100 %")
    c, d = (150, 120), (210, 200)
    await click_pixel(page, "main", *c)
    await click_pixel(page, "main", *d)
    again = math.hypot((d[0] - c[0]) * DELTA_X_CM, (d[1] - c[1]) * DELTA_Y_CM) * 10
    await expect(readout).to_have_text(f"{again:.1f} mm")

    await main.locator("[data-action=fit]").click()  # the corner is back in view
    await click_pixel(page, "main", 100, 100)  # inside the region …
    await click_pixel(page, "main", 5, 5)  # … and outside it
    await expect(readout).to_have_text("outside the calibrated regions: not measured")
    assert problems == []


async def test_ct_window_and_a_prior_from_another_site(server: Server, context: BrowserContext) -> None:  # noqa: F811
    current, prior = generate_uid(), generate_uid()
    await stow(
        server,
        [sample_file("CT_small.dcm", current, "110101197001010011", regional=True)],
        server.world.device_a_credential,
    )
    await stow(
        server,
        [sample_file("CT_small.dcm", prior, "110101197001010011", regional=True)],
        server.world.device_b_credential,
    )
    sid = await study_id(server, current)
    await server.sign_in(context, "expert")
    page, problems = await open_console(context, f"#/studies/{sid}")
    await shows_at_natural_size(page, "main-image", 128, 128)
    main = page.locator('[data-pane="main"]')
    await expect(main.locator("[data-tool=window]")).to_be_visible()
    await main.locator("input[name=window_center]").fill("40")
    await main.locator("input[name=window_width]").fill("400")
    await main.locator("input[name=window_width]").press("Enter")
    image = page.locator("[data-testid=main-image]")
    await expect(image).to_have_attribute("src", re.compile(r"/rendered\?window=40,400$"))
    await shows_at_natural_size(page, "main-image", 128, 128)
    await main.locator("[data-tool=window]").click()  # dragging right widens the window, down lowers its centre
    box = await page.locator("[data-testid=main-viewport]").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    await page.mouse.move(x, y)
    await page.mouse.down()
    await page.mouse.move(x + 64, y + 32, steps=4)
    await page.mouse.up()
    await expect(main.locator("input[name=window_width]")).to_have_value("500")  # 400 + 64 px × 400/256
    await expect(main.locator("input[name=window_center]")).to_have_value("-10")  # 40 − 32 px × 400/256
    await expect(image).to_have_attribute("src", re.compile(r"/rendered\?window=-10,500$"))

    choose = page.locator("[data-testid=prior-select]")
    await expect(choose.locator("option")).to_have_count(2)
    await choose.select_option(index=1)
    await expect(page.locator('[data-pane="prior"]')).to_be_visible()
    await expect(page.locator("[data-testid=prior-title]")).to_contain_text("Riverside Community Health Centre")
    await shows_at_natural_size(page, "prior-image", 128, 128)
    prior_src = await page.locator("[data-testid=prior-image]").get_attribute("src")
    assert prior_src and f"/studies/{prior}/" in prior_src
    assert problems == []


async def test_lock_renewed_while_open_released_on_leaving_and_finding_acknowledged(
    server: Server,  # noqa: F811
    context: BrowserContext,  # noqa: F811
    browser: Browser,
) -> None:
    sid = await arrive(server.app, server.world.site_a, "CR", name="Chest^Chen")
    expert = await server.sign_in(context, "expert")
    page = await context.new_page()
    await page.clock.install()  # the page's timers under the test's control: a minute passes in no time
    await page.goto(f"/#/studies/{sid}")
    await page.locator("header [data-action=claim]").click()
    await expect(page.locator("[data-testid=lock-status]")).to_contain_text("Read by you")
    first_expiry = await lock_of(expert, sid)
    async with page.expect_request(lambda r: r.method == "POST" and r.url.endswith(f"/studies/{sid}/claim")) as renewal:
        await page.clock.fast_forward("01:01")  # the page renews its claim every minute
    response = await (await renewal.value).response()
    assert response is not None and response.status == 200
    assert (await lock_of(expert, sid))["expires_at"] > first_expiry["expires_at"]

    form = page.locator("[data-testid=finding-form]")
    await form.locator("textarea[name=finding]").fill("Large right pneumothorax")
    await form.locator("select[name=method]").select_option("phone")
    await form.locator("[type=submit]").click()
    flagged = page.locator("[data-testid=study-findings] li")
    await expect(flagged).to_have_count(1)
    await expect(flagged).to_contain_text("Large right pneumothorax")
    await expect(flagged).to_contain_text("waiting for acknowledgement")

    await page.locator("[data-action=back]").click()  # leaving the study gives it back
    await page.wait_for_url("**/#/queue")

    async def given_back() -> bool:
        return await lock_of(expert, sid) is None

    await eventually(given_back, what="the study's lock to be given back")

    async with server.app[DB]() as db:  # half an hour unacknowledged, as the escalation timer would leave it
        finding = (await db.scalars(select(CriticalFinding))).one()
        finding.escalation_level = 2
        await db.commit()

    sono_context = await browser.new_context(base_url=server.url)
    try:
        await server.sign_in(sono_context, "sono_a")
        sono, problems = await open_console(sono_context)
        banner = sono.locator("[data-testid=findings-banner]")
        await expect(banner).to_be_visible()
        item = banner.locator("[data-finding-id]")
        await expect(item).to_have_count(1)
        await expect(item.locator("[data-field=finding]")).to_have_text("Large right pneumothorax")
        await expect(item.locator("[data-field=escalation]")).to_have_text("escalation level 2")
        await expect(item).to_contain_text("Phone")
        await item.locator("input[name=notified_person]").fill("Dr Wu")
        await item.locator("[data-action=acknowledge]").click()
        await expect(banner).to_be_hidden()
        status, found = await expert.get(f"/api/v1/studies/{sid}/findings")
        assert status == 200
        (done,) = found["findings"]
        assert (done["acknowledged_by"], done["notified_person"], done["method"]) == ("Sono A", "Dr Wu", "phone")
        assert done["acknowledged_at"] is not None
        assert problems == []
    finally:
        await sono_context.close()


async def lock_of(api: Any, sid: str) -> Any:
    status, study = await api.get(f"/api/v1/studies/{sid}")
    assert status == 200
    return study["lock"]
