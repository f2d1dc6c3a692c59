"""i18n.js in Chromium: names as people write them, dates YYYY-MM-DD and 24-hour times in either language."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from tests.expert_console.conftest import run

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

NAMES = """
    const i = await import('/static/i18n.js');
    return arg.map((value) => i.personName(value, 'zh-CN'));
"""


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("张^三", "张三"),
        ("欧阳^娜娜", "欧阳娜娜"),
        ("Zhang^San=张^三", "张三"),  # the ideographic group, for a Chinese reader
        ("Smith^John", "Smith John"),  # family name first, as the district writes every name
        ("李四", "李四"),  # a plain name comes back as it was typed
        ("", ""),
        ("^^^^", ""),
        ("Zhang^San=", "Zhang San"),  # no ideographic group: the Latin one, family first
    ],
)
async def test_names_for_a_chinese_reader(page: Page, value: str, shown: str) -> None:
    assert await run(page, NAMES, [value]) == [shown]


async def test_names_for_an_english_reader(page: Page) -> None:
    shown = await run(
        page,
        """
        const i = await import('/static/i18n.js');
        return arg.map((value) => i.personName(value, 'en'));
        """,
        ["张^三", "Zhang^San=张^三", "Wang^Fang^^Dr", "李四"],
    )
    assert shown == ["张三", "Zhang San", "Dr Wang Fang", "李四"]


async def test_dates_and_times_are_iso_and_24_hour(page: Page) -> None:
    shown = await run(
        page,
        """
        const i = await import('/static/i18n.js');
        const at = new Date(2026, 11, 7, 14, 5, 9);  // local time
        return [i.formatDate(at), i.formatTime(at), i.formatTime(at, {seconds: true}), i.formatDateTime(at),
                i.formatDate(null), i.formatDate('not a date'), i.formatDate(at.getTime())];
        """,
    )
    assert shown == ["2026-12-07", "14:05", "14:05:09", "2026-12-07 14:05", "", "", "2026-12-07"]
