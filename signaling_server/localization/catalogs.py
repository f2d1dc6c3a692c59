"""The message catalogs: one JSON file per namespace and language, `expert_console/locales/<language>/<ns>.json`.

A file holds a flat object of keys to messages; its key `"title"` in `common.json` is `common.title` to a caller.
A message may name parameters as `{name}`; a message that depends on a count is an object of plural categories
(`{"one": "…", "other": "…"}`, Unicode CLDR names; Chinese needs only `other`). Both languages hold the same keys
(tests/expert_console/test_catalogs.py); where a key is missing at run time the key itself is shown, never a blank.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from expert_console import STATIC_DIR

LOCALES_DIR = STATIC_DIR / "locales"
DEFAULT_LANGUAGE = "zh-CN"  # the district's language: the choice when nothing says otherwise
LANGUAGES = ("zh-CN", "en")

Message = str | dict[str, str]


@dataclass(frozen=True)
class Catalogs:
    """Every language's messages, keyed `<namespace>.<key>`."""

    messages: dict[str, dict[str, Message]]

    @classmethod
    def load(cls, root: Path = LOCALES_DIR) -> Catalogs:
        messages: dict[str, dict[str, Message]] = {}
        for language in LANGUAGES:
            merged: dict[str, Message] = {}
            for path in sorted((root / language).glob("*.json")):
                namespace = path.stem
                entries = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(entries, dict):
                    raise ValueError(f"{path}: a catalog is a JSON object of keys to messages")
                for key, message in entries.items():
                    merged[f"{namespace}.{key}"] = _checked(path, key, message)
            messages[language] = merged
        return cls(messages)

    def of(self, language: str) -> dict[str, Message]:
        return self.messages[language if language in self.messages else DEFAULT_LANGUAGE]

    def translate(self, language: str, key: str, /, count: int | None = None, **params: object) -> str:
        """The message for `key` in `language` with its `{parameters}` filled; the key itself when it has none."""
        message = self.of(language).get(key)
        if message is None:
            return key
        if isinstance(message, dict):
            message = message.get(plural_category(language, count), message["other"])
        values = {name: value for name, value in params.items()}
        if count is not None:
            values.setdefault("count", count)
        return message.format_map(_Keep(values))


def _checked(path: Path, key: str, message: Any) -> Message:
    if isinstance(message, str) and message:
        return message
    if isinstance(message, dict) and "other" in message and all(isinstance(v, str) and v for v in message.values()):
        return message
    raise ValueError(f"{path}: {key!r} must be a non-empty string or a plural object with 'other'")


def placeholders(message: Message) -> set[str]:
    """The `{names}` a message fills (every plural form's together)."""
    texts = message.values() if isinstance(message, dict) else [message]
    return {field for text in texts for _, field, _, _ in string.Formatter().parse(text) if field}


def plural_category(language: str, count: int | None) -> str:
    """CLDR plural category: English has `one` and `other`; Chinese only `other`."""
    if language == "en" and count == 1:
        return "one"
    return "other"


def negotiate(accept_language: str | None) -> str:
    """The catalog language for an Accept-Language header: Chinese for any `zh`, English for any other language
    named first, and the district's default when the header says nothing."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    ranked = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            weight = 0.0
        if tag and weight > 0:
            ranked.append((-weight, position, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh-CN"
        if tag != "*":
            return "en"
    return DEFAULT_LANGUAGE


class _Keep(dict[str, object]):
    """Leaves an unfilled `{name}` as it is rather than failing the whole message."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


CATALOGS = web.AppKey("catalogs", Catalogs)
