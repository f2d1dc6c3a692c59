"""The console's views and app.js hold no user-facing text of their own (every word comes from the catalogs), and
every catalog key the JavaScript names exists (test_catalogs.py then keeps it in both languages)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from expert_console import STATIC_DIR
from tests.expert_console.literal_text import catalog_keys_used, findings, is_text

CHECKED = sorted([*STATIC_DIR.glob("*.js"), *(STATIC_DIR / "views").glob("*.js")])
# Not converted yet, each with why: the check skips them until then.
PENDING = {
    "reports.js": "its tables still carry English labels beside each choice's value; no view shows them (the report "
    "views take every word from the catalogs): to be removed with the tables' reshaping",
}
# Modules whose only literals are the messages of the exceptions they raise (a transport failure, a malformed wire
# message): the pages show those through errorText, by the exception's stable code, in the reader's words.
EXCEPTION_MESSAGES = {"api.js", "dicomweb.js", "microphone.js", "protocol.js", "review.js"}


def _name(path: object) -> str:
    return str(path).removeprefix(str(STATIC_DIR) + "/")


@pytest.mark.parametrize("path", CHECKED, ids=_name)
def test_no_literal_user_facing_text(path: object) -> None:
    if _name(path) in PENDING:
        pytest.skip(f"not converted yet: {PENDING[_name(path)]}")
    if _name(path) in EXCEPTION_MESSAGES:
        pytest.skip("exception messages only, shown by their code (errorText)")
    found = findings(STATIC_DIR.joinpath(_name(path)).read_text(encoding="utf-8"))
    assert not found, "\n".join(f"{_name(path)}:{line}: {text!r}" for line, text in found)


@pytest.mark.parametrize(
    "source",
    [
        'el("button", {text: "Save"})',
        'el("p", {class: "muted"}, "Nothing here")',
        'el("p", {}, ready ? t("home.ready") : "Waiting")',
        "node.textContent = `${count} studies`;",
        'setText(status, "Connected")',
        'input.setAttribute("placeholder", "Search")',
        'const b = el("button", {"aria-label": "Close dialog", onclick: () => go()});',
        'if (!confirm("Delete?")) return;',
        'decide(page, () => api.post(), "Saved.")',
        'el("span", {text: "张三"})',
        'const TEXT = { submit: "Sign in" };',
        'const LABELS = { waiting: "Waiting for an expert" };',
        'this.say("Loading the image…")',
        'const ROWS = [["fps", "Frame rate"]];',
    ],
)
def test_the_check_finds_literal_text(source: str) -> None:
    assert findings(source), source


@pytest.mark.parametrize(
    "source",
    [
        'el("button", {text: t("common.save"), class: "primary", "data-action": "save"})',
        'el("p", {class: "muted"}, t("home.none", {count: 2}), " · ", formatDate(when))',
        "node.textContent = personName(patient.name);",
        'el("span", {text: `${formatNumber(x)} mm`})',
        'const re = /"[a-z]+"/; el("b", {text: "×"})',
        'el("ul", {}, items.map((item) => el("li", {text: item.name})))',
        'if (user.role === "sonographer") node.className = "panel wide";',
        'console.warn("the catalog is late", err); throw new Error("no answer");',
        'const VOCABULARY = ["thyroid right lobe"]; // i18n: data (the edge\'s words)',
    ],
)
def test_the_check_lets_catalog_text_and_data_through(source: str) -> None:
    assert not findings(source), findings(source)


def _catalog(language: str) -> set[str]:
    keys: set[str] = set()
    for path in (STATIC_DIR / "locales" / language).glob("*.json"):
        keys |= {f"{path.stem}.{key}" for key in json.loads(path.read_text(encoding="utf-8"))}
    return keys


def test_every_key_the_console_asks_for_exists() -> None:
    known = _catalog("en") & _catalog("zh-CN")
    missing = []
    for path in sorted(STATIC_DIR.rglob("*.js")):
        for line, key in catalog_keys_used(path.read_text(encoding="utf-8")):
            if key not in known and not key.endswith("."):
                missing.append(f"{_name(path)}:{line}: {key}")
    for key in re.findall(r'data-i18n[\w-]*="([^"]+)"', (STATIC_DIR / "index.html").read_text(encoding="utf-8")):
        if key not in known:
            missing.append(f"index.html: {key}")
    assert not missing, "\n".join(missing)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style", "noscript")  # noscript: shown without JS, so in both languages
        self.texts += [
            value for name, value in attrs if name in ("title", "aria-label", "placeholder", "alt") and value
        ]

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style", "noscript")

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.texts.append(data.strip())


def test_the_page_itself_holds_no_text() -> None:
    """index.html's words are set from the catalogs at start (data-i18n attributes); its markup holds none."""
    parser = _Text()
    parser.feed((STATIC_DIR / "index.html").read_text(encoding="utf-8"))
    assert [text for text in parser.texts if is_text(text)] == []
