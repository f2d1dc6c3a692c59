"""What the clinical rules say, as coded messages: a `Note` is a catalog key and its parameters, never a sentence.

The rules (tirads.py, ctirads.py, carotid.py) stay pure and language-free; a note becomes text only where it is
shown: in the console by `t("clinical.<code>", params)`, on the server (printable page, SR) by `say(language, note)`
from the same catalogs (expert_console/locales/<language>/clinical.json). Parameters are already written as text
(numbers by `numbers.shown`, so that no threshold is crossed by rounding); a parameter named `<name>_term` holds
a key of the same catalog (a side, a level) and fills `{<name>}` with that word in the reader's language.

The catalogs are static files of the package, read once per process (`catalogs()`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from signaling_server.localization.catalogs import Catalogs

NAMESPACE = "clinical"
ENGLISH = "en"


@dataclass(frozen=True)
class Note:
    """One thing the rules say: `code` is the key in the `clinical` catalog, `params` its `{name}` values."""

    code: str
    params: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "params": dict(self.params)}


def note(code: str, **params: object) -> Note:
    return Note(code, {name: str(value) for name, value in params.items()})


@cache
def catalogs() -> Catalogs:
    return Catalogs.load()


def _translate(key: str, language: str, params: Mapping[str, object]) -> str:
    values = dict(params)
    count = values.pop("count", None)
    try:
        number = None if count is None else int(str(count))
    except ValueError:
        number = None
    if number is None and count is not None:
        values["count"] = count  # not a whole number: filled in as it is
        return catalogs().translate(language, key, None, **values)
    return catalogs().translate(language, key, number, **values)


def term(language: str, key: str, **params: object) -> str:
    """A catalog word of the clinical namespace (a level, a grade, a choice) in `language`."""
    return _translate(f"{NAMESPACE}.{key}", language, params)


def label(language: str, key: str, **params: object) -> str:
    """A word of the report page (`report.print.*`: headings, field names) in `language`."""
    return _translate(f"report.print.{key}", language, params)


def say(language: str, said: Note) -> str:
    params: dict[str, object] = {}
    for name, value in said.params.items():  # `<name>_term`: a catalog word, filled in as `{<name>}`
        if name.endswith("_term"):
            params[name.removesuffix("_term")] = term(language, value)
        else:
            params[name] = value
    return _translate(f"{NAMESPACE}.{said.code}", language, params)


def english(notes: Iterable[Note]) -> list[str]:
    """The notes in English: the `notes` of a computed result, kept for scripts that read text."""
    return [say(ENGLISH, n) for n in notes]


def messages(notes: Iterable[Note]) -> list[dict[str, Any]]:
    return [n.to_json() for n in notes]
