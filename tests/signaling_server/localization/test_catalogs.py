"""The catalogs as the server reads them: lookup, parameters, plurals, language negotiation, bad files refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signaling_server.localization.catalogs import Catalogs, negotiate


def write(root: Path, language: str, namespace: str, entries: object) -> None:
    (root / language).mkdir(parents=True, exist_ok=True)
    (root / language / f"{namespace}.json").write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")


@pytest.fixture
def catalogs(tmp_path: Path) -> Catalogs:
    write(
        tmp_path,
        "zh-CN",
        "report",
        {"title": "超声检查报告", "size": "{size} 毫米", "images": {"other": "{count} 幅图像"}},
    )
    write(
        tmp_path,
        "en",
        "report",
        {
            "title": "Ultrasound report",
            "size": "{size} mm",
            "images": {"one": "{count} image", "other": "{count} images"},
        },
    )
    return Catalogs.load(tmp_path)


def test_a_key_is_namespaced_and_found_in_each_language(catalogs: Catalogs) -> None:
    assert catalogs.translate("zh-CN", "report.title") == "超声检查报告"
    assert catalogs.translate("en", "report.title") == "Ultrasound report"


def test_parameters_are_filled_and_a_missing_one_is_left_visible(catalogs: Catalogs) -> None:
    assert catalogs.translate("en", "report.size", size=12) == "12 mm"
    assert catalogs.translate("en", "report.size") == "{size} mm"


def test_plural_forms_follow_the_language(catalogs: Catalogs) -> None:
    assert catalogs.translate("en", "report.images", count=1) == "1 image"
    assert catalogs.translate("en", "report.images", count=3) == "3 images"
    assert catalogs.translate("zh-CN", "report.images", count=1) == "1 幅图像"


def test_an_unknown_key_shows_itself_and_an_unknown_language_falls_back_to_chinese(catalogs: Catalogs) -> None:
    assert catalogs.translate("en", "report.nothing") == "report.nothing"
    assert catalogs.translate("fr", "report.title") == "超声检查报告"


@pytest.mark.parametrize("bad", [[], {"title": ""}, {"title": 3}, {"images": {"one": "x"}}])
def test_a_malformed_catalog_is_refused_at_load(tmp_path: Path, bad: object) -> None:
    write(tmp_path, "zh-CN", "report", bad)
    with pytest.raises(ValueError, match="report"):
        Catalogs.load(tmp_path)


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "zh-CN"),
        ("", "zh-CN"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("en-US,en;q=0.9", "en"),
        ("en;q=0.5,zh;q=0.9", "zh-CN"),
        ("de-DE", "en"),
        ("*", "zh-CN"),
        ("zh;q=0", "zh-CN"),
        ("en;q=abc,zh", "zh-CN"),
    ],
)
def test_the_language_negotiated_from_a_browser(header: str | None, language: str) -> None:
    assert negotiate(header) == language


def test_the_shipped_catalogs_load() -> None:
    shipped = Catalogs.load()
    assert shipped.translate("zh-CN", "errors.not_found") != "errors.not_found"
    assert shipped.translate("en", "errors.not_found") != "errors.not_found"
