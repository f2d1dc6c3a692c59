"""geometry.js in Chromium: the letterbox-aware content rectangle and normalised ↔ element mapping."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from tests.expert_console.conftest import run

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest.mark.parametrize(
    ("box", "video", "expected"),
    [
        ((800, 600), (1280, 720), (0, 75, 800, 450)),  # 16:9 in 4:3: bars top and bottom
        ((1600, 900), (640, 480), (200, 0, 1200, 900)),  # 4:3 in 16:9: bars left and right
        ((1280, 720), (1920, 1080), (0, 0, 1280, 720)),  # same aspect: the whole box
        ((1000, 1000), (720, 1280), (218.75, 0, 562.5, 1000)),  # portrait in a square
        ((640, 480), (0, 0), (0, 0, 640, 480)),  # size not known yet: the whole box
    ],
)
async def test_content_rect_letterboxes(page: Page, box: tuple, video: tuple, expected: tuple) -> None:
    rect = await run(page, "return g.contentRect(...arg);", [*box, *video])
    assert (rect["x"], rect["y"], rect["width"], rect["height"]) == pytest.approx(expected)


async def test_normalised_round_trip_at_many_sizes(page: Page) -> None:
    worst = await run(
        page,
        """
        let worst = 0;
        for (const [bw, bh, vw, vh] of [[800, 600, 1280, 720], [333, 917, 1024, 768], [1920, 1080, 800, 600],
                                         [1, 1, 3, 2], [5000, 40, 640, 480]]) {
          const rect = g.contentRect(bw, bh, vw, vh);
          for (let i = 0; i <= 20; i++) for (let j = 0; j <= 20; j++) {
            const [px, py] = g.toElement(rect, [i / 20, j / 20]);
            const [x, y] = g.toNormalised(rect, px, py);
            worst = Math.max(worst, Math.abs(x - i / 20), Math.abs(y - j / 20));
          }
        }
        return worst;
        """,
    )
    assert worst < 1e-9


async def test_same_anatomy_at_any_size(page: Page) -> None:
    # A point given in image coordinates sits at the same place of the picture whatever the element size:
    # its position relative to the content rectangle does not change, and the letterbox bars are never hit.
    result = await run(
        page,
        """
        const point = [0.3, 0.8];
        return [[640, 360], [1000, 1000], [300, 900]].map(([bw, bh]) => {
          const rect = g.contentRect(bw, bh, 1280, 720);
          const [px, py] = g.toElement(rect, point);
          return [(px - rect.x) / rect.width, (py - rect.y) / rect.height, py >= rect.y && py <= rect.y + rect.height];
        });
        """,
    )
    for x, y, inside in result:
        assert (x, y) == pytest.approx((0.3, 0.8))
        assert inside


async def test_points_off_the_picture_are_outside(page: Page) -> None:
    result = await run(
        page,
        """
        const rect = g.contentRect(800, 600, 1280, 720);  // bars 75 px high
        return [g.onImage(g.toNormalised(rect, 400, 30)), g.onImage(g.toNormalised(rect, 400, 300)),
                g.clampPoint([-0.2, 1.4])];
        """,
    )
    assert result == [False, True, [0, 1]]


async def test_freehand_simplified_to_the_limit_keeping_its_shape(page: Page) -> None:
    result = await run(
        page,
        """
        const spiral = [];
        for (let i = 0; i < 12000; i++) {
          const a = i / 300, r = 0.05 + i / 40000;
          spiral.push([0.5 + r * Math.cos(a), 0.5 + r * Math.sin(a)]);
        }
        const simple = g.simplifyPath(spiral, 2000);
        const line = g.simplifyPath(Array.from({length: 100}, (_, i) => [i / 99, i / 99]), 2000);
        const repeated = g.simplifyPath([[0.1, 0.1], [0.1, 0.1], [0.1, 0.1]], 2000);
        // every original point stays close to the simplified path (distance to its nearest segment)
        const toSegment = (p, a, b) => {
          const dx = b[0] - a[0], dy = b[1] - a[1], l = dx * dx + dy * dy;
          const t = l ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / l)) : 0;
          return Math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy);
        };
        let worst = 0;
        for (const p of spiral) {
          let best = Infinity;
          for (let k = 1; k < simple.length; k++) best = Math.min(best, toSegment(p, simple[k - 1], simple[k]));
          worst = Math.max(worst, best);
        }
        return {n: simple.length, first: simple[0], last: simple.at(-1), end: spiral.at(-1), worst,
                line: line.length, repeated: repeated.length};
        """,
    )
    assert 2 <= result["n"] <= 2000
    assert result["first"] == pytest.approx([0.55, 0.5])
    assert result["last"] == pytest.approx(result["end"])
    assert result["worst"] < 0.005  # under a quarter of a percent of the image
    assert result["line"] == 2
    assert result["repeated"] == 1
