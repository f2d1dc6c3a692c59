"""dicomweb.js in Chromium: the DICOM JSON helpers, US Region Calibration and the caliper, frame timing, and the
DICOMweb client's URLs and answers (its fetch is the seam: the calls are checked without a server)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from playwright.async_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def run(page: Page, body: str, arg: Any = None) -> Any:
    return await page.evaluate(f"async (arg) => {{ const d = await import('/static/dicomweb.js'); {body} }}", arg)


def region(x0: int, y0: int, x1: int, y1: int, dx: float, dy: float, units: tuple[int, int] = (3, 3)) -> dict[str, Any]:
    """One item of SequenceOfUltrasoundRegions in the DICOM JSON model (DS values as numbers, as PS3.18 F.2.3 says)."""
    return {
        "00186012": {"vr": "US", "Value": [1]},
        "00186014": {"vr": "US", "Value": [1]},
        "00186018": {"vr": "UL", "Value": [x0]},
        "0018601A": {"vr": "UL", "Value": [y0]},
        "0018601C": {"vr": "UL", "Value": [x1]},
        "0018601E": {"vr": "UL", "Value": [y1]},
        "00186024": {"vr": "US", "Value": [units[0]]},
        "00186026": {"vr": "US", "Value": [units[1]]},
        "0018602C": {"vr": "FD", "Value": [dx]},
        "0018602E": {"vr": "FD", "Value": [dy]},
    }


def metadata(*regions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "00080060": {"vr": "CS", "Value": ["US"]},
        "00280010": {"vr": "US", "Value": [480]},
        "00280011": {"vr": "US", "Value": [640]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "张^三"}]},
    }
    if regions:
        meta["00186011"] = {"vr": "SQ", "Value": list(regions)}
    meta.update(extra)
    return meta


async def test_dicom_json_values(page: Page) -> None:
    meta = metadata(
        **{
            "00280008": {"vr": "IS", "Value": ["12"]},
            "00181063": {"vr": "DS", "Value": ["33.3"]},
            "00200013": {"vr": "IS"},
        }
    )
    got = await run(
        page,
        """return [d.text(arg, d.TAG.Modality), d.text(arg, '00100010'), d.number(arg, d.TAG.Rows),
                   d.frameCount(arg), d.frameIntervalMs(arg), d.number(arg, d.TAG.InstanceNumber),
                   d.text(arg, '00081030'), d.values(arg, '00081030'), d.frameCount({})];""",
        meta,
    )
    assert got == ["US", "张^三", 480, 12, 33.3, None, "", [], 1]


async def test_frame_interval_falls_back_to_rates_then_30_fps(page: Page) -> None:
    got = await run(
        page,
        """return [d.frameIntervalMs({'00180040': {vr: 'IS', Value: [25]}}),
                   d.frameIntervalMs({'00082144': {vr: 'IS', Value: [10]}}),
                   d.frameIntervalMs({'00181063': {vr: 'DS', Value: [0]}})];""",
    )
    assert got == [pytest.approx(40), pytest.approx(100), pytest.approx(1000 / 30)]


async def test_regions_are_read_and_found_inclusively(page: Page) -> None:
    meta = metadata(region(10, 20, 309, 419, 0.01, 0.02), region(320, 20, 629, 419, 0.05, 0.05))
    got = await run(
        page,
        """const r = d.usRegions(arg);
           const at = (x, y) => r.indexOf(d.regionAt(r, {x, y}));
           return [r.length, r[0], at(10, 20), at(309, 419), at(309.9, 419.9), at(310, 100), at(320, 20), at(0, 0)];""",
        meta,
    )
    assert got[0] == 2
    assert got[1] == {
        "x0": 10,
        "y0": 20,
        "x1": 309,
        "y1": 419,
        "spatialFormat": 1,
        "dataType": 1,
        "unitsX": 3,
        "unitsY": 3,
        "deltaX": 0.01,
        "deltaY": 0.02,
    }
    assert got[2:] == [0, 0, 0, -1, 1, -1]


@pytest.mark.parametrize(
    ("a", "b"),
    [((100, 100), (130, 140)), ((15, 25), (15, 400)), ((300, 30), (11, 21)), ((50, 50), (50, 50))],
)
async def test_caliper_distance_in_one_region(page: Page, a: tuple[int, int], b: tuple[int, int]) -> None:
    dx, dy = 0.01, 0.02  # cm per pixel
    meta = metadata(region(10, 20, 309, 419, dx, dy))
    got = await run(
        page,
        """const r = d.usRegions(arg.meta);
           const m = d.measure(r, arg.a, arg.b);
           return [m, d.distanceMm(r, arg.a, arg.b), d.describeMeasurement(m), d.distanceMm(r, arg.b, arg.a)];""",
        {"meta": meta, "a": {"x": a[0], "y": a[1]}, "b": {"x": b[0], "y": b[1]}},
    )
    expected = math.hypot((b[0] - a[0]) * dx, (b[1] - a[1]) * dy) * 10
    assert got[0]["status"] == "calibrated"
    assert got[0]["mm"] == pytest.approx(expected)
    assert got[1] == pytest.approx(expected) and got[3] == pytest.approx(expected)  # symmetric
    assert got[2] == f"{expected:.1f} mm"


async def test_caliper_refuses_what_it_cannot_measure(page: Page) -> None:
    tissue = region(0, 0, 299, 299, 0.01, 0.01)
    spectral = region(0, 300, 639, 479, 0.002, -0.5, units=(4, 7))  # s and cm/s: not a distance
    got = await run(
        page,
        """const calibrated = d.usRegions(arg.meta);
           const cases = [
             d.measure(d.usRegions(arg.bare), {x: 1, y: 1}, {x: 50, y: 50}),
             d.measure(calibrated, {x: 10, y: 10}, {x: 10, y: 350}),
             d.measure(calibrated, {x: 10, y: 10}, {x: 500, y: 10}),
             d.measure(calibrated, {x: 10, y: 310}, {x: 400, y: 400}),
           ];
           return cases.map((m) => [m.mm, m.status, d.describeMeasurement(m)]);""",
        {"meta": metadata(tissue, spectral), "bare": metadata()},
    )
    assert got == [
        [None, "uncalibrated", "uncalibrated"],
        [None, "different_regions", "points in different regions: not measured"],
        [None, "outside_regions", "outside the calibrated regions: not measured"],
        [None, "not_spatial", "region not calibrated in cm: not measured"],
    ]


async def test_stored_window_and_sorting(page: Page) -> None:
    got = await run(
        page,
        """const ct = {'00281050': {vr: 'DS', Value: [40, 300]}, '00281051': {vr: 'DS', Value: [400, 1500]}};
           const items = [5, null, 1, 3].map((n) => n === null ? {} : {'00200013': {vr: 'IS', Value: [n]}});
           return [d.storedWindow(ct), d.storedWindow({}),
                   d.sortByNumber(items, d.TAG.InstanceNumber).map((i) => d.number(i, d.TAG.InstanceNumber))];""",
    )
    assert got == [{"center": 40, "width": 400}, None, [1, 3, 5, None]]


async def test_client_urls_accept_header_and_answers(page: Page) -> None:
    got = await run(
        page,
        """const calls = [];
           const answers = [
             new Response(JSON.stringify([
                 {'0020000E': {vr: 'UI', Value: ['2.2']}, '00200011': {vr: 'IS', Value: [2]}},
                 {'0020000E': {vr: 'UI', Value: ['1.1']}, '00200011': {vr: 'IS', Value: [1]}}]),
               {status: 200, headers: {'Content-Type': 'application/dicom+json'}}),
             new Response(null, {status: 204}),
             new Response(JSON.stringify({error: 'not_found', message: 'no such study'}), {status: 404}),
             new Response('nope', {status: 401}),
           ];
           let unauthenticated = 0;
           const web = new d.DicomWeb({onUnauthenticated: () => unauthenticated++, fetch: async (url, init) => {
             calls.push([url, init.headers.Accept]);
             return answers.shift();
           }});
           const series = await web.series('1.2.3');
           const none = await web.instances('1.2.3', '1.1');
           const errors = [];
           const meta = () => web.metadata({studyUid: '1.2.3', seriesUid: '1.1', sopUid: '9'});
           const calls2 = [meta, () => web.series('x')];
           for (const call of calls2) {
             try { await call(); } catch (e) { errors.push([e.code, e.status, e.message]); }
           }
           const ref = {studyUid: '1.2.3', seriesUid: '1.1', sopUid: '1.2.3.4'};
           return {series: series.map((s) => d.text(s, d.TAG.SeriesInstanceUID)), none, errors, calls, unauthenticated,
                   urls: [web.renderedUrl(ref), web.renderedUrl(ref, {frame: 3, window: {center: 40, width: 400}}),
                          web.renderedUrl(ref, {window: {center: -600.5, width: 1500}, png: true})],
                   ref: d.instanceRef({'00080018': {vr: 'UI', Value: ['7']}}, '1', '2')};""",
    )
    assert got["series"] == ["1.1", "2.2"]  # by SeriesNumber
    assert got["none"] == []
    assert got["errors"] == [["not_found", 404, "no such study"], ["http_401", 401, "http_401"]]
    assert got["unauthenticated"] == 1
    assert got["calls"] == [
        ["/dicomweb/studies/1.2.3/series", "application/dicom+json"],
        ["/dicomweb/studies/1.2.3/series/1.1/instances", "application/dicom+json"],
        ["/dicomweb/studies/1.2.3/series/1.1/instances/9/metadata", "application/dicom+json"],
        ["/dicomweb/studies/x/series", "application/dicom+json"],
    ]
    base = "/dicomweb/studies/1.2.3/series/1.1/instances/1.2.3.4"
    assert got["urls"] == [
        f"{base}/rendered",
        f"{base}/frames/3/rendered?window=40,400",
        f"{base}/rendered?window=-600.5,1500&accept=image%2Fpng",
    ]
    assert got["ref"] == {"studyUid": "1", "seriesUid": "2", "sopUid": "7"}
