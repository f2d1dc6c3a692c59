"""The console's catalogs are whole: every key in both languages, the same parameters in each, no empty text."""

from __future__ import annotations

import json

from expert_console import STATIC_DIR
from signaling_server.localization.catalogs import LANGUAGES, placeholders

LOCALES = STATIC_DIR / "locales"


def namespaces(language: str) -> dict[str, dict[str, object]]:
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted((LOCALES / language).glob("*.json"))
    }


def test_every_language_has_the_same_namespaces_and_keys() -> None:
    first, *others = LANGUAGES
    reference = namespaces(first)
    for language in others:
        catalog = namespaces(language)
        assert catalog.keys() == reference.keys(), language
        for namespace, entries in reference.items():
            missing = entries.keys() - catalog[namespace].keys()
            extra = catalog[namespace].keys() - entries.keys()
            assert not missing and not extra, f"{language}/{namespace}.json: missing {missing}, extra {extra}"


def test_a_message_names_the_same_parameters_in_every_language() -> None:
    catalogs = {language: namespaces(language) for language in LANGUAGES}
    first, *others = LANGUAGES
    for namespace, entries in catalogs[first].items():
        for key, message in entries.items():
            for language in others:
                other = catalogs[language][namespace][key]
                assert placeholders(other) == placeholders(message), f"{namespace}.{key} in {language}"  # type: ignore[arg-type]


def test_chinese_messages_are_not_left_in_english() -> None:
    """A Chinese catalog entry that is pure ASCII letters is an untranslated copy, save for names and codes."""
    allowed = {"common.brand", "common.language.en", "admin.modality.CT"}
    for namespace, entries in namespaces("zh-CN").items():
        for key, message in entries.items():
            texts = message.values() if isinstance(message, dict) else [message]
            for text in texts:
                if f"{namespace}.{key}" in allowed:
                    continue
                assert any(ord(c) > 0x2E7F for c in str(text)), f"zh-CN {namespace}.{key} = {text!r}"
