"""GET /api/v1/i18n/{language}: the console's catalogs, without signing in, cached by ETag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import make_app


async def test_each_language_is_served_whole_and_unknown_ones_are_refused(
    aiohttp_client: Any, sqlite_url: str, tmp_path: Path
) -> None:
    client = await aiohttp_client(await make_app(sqlite_url, tmp_path))
    zh = await (await client.get("/api/v1/i18n/zh-CN")).json()
    en = await (await client.get("/api/v1/i18n/en")).json()
    assert zh["language"] == "zh-CN" and en["language"] == "en"
    assert zh["messages"].keys() == en["messages"].keys()
    assert zh["messages"]["errors.bad_credentials"] != en["messages"]["errors.bad_credentials"]
    refused = await client.get("/api/v1/i18n/fr")
    assert refused.status == 404
    assert (await refused.json())["error"] == "not_found"


async def test_auto_follows_the_browser_and_an_unchanged_catalog_is_not_sent_again(
    aiohttp_client: Any, sqlite_url: str, tmp_path: Path
) -> None:
    client = await aiohttp_client(await make_app(sqlite_url, tmp_path))
    english = await client.get("/api/v1/i18n/auto", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert (await english.json())["language"] == "en"
    chinese = await client.get("/api/v1/i18n/auto", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert (await chinese.json())["language"] == "zh-CN"
    again = await client.get("/api/v1/i18n/zh-CN", headers={"If-None-Match": chinese.headers["ETag"]})
    assert again.status == 304
