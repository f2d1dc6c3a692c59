"""Free text as a de-identified reader is shown it: every occurrence of the patient's identifiers replaced by
:data:`MARKER`, everything else kept character for character. Pure: no database, no I/O.

What counts as the patient's identifiers (:class:`Identifiers`), and the forms searched for:

    names        as held (DICOM PN: ``Family^Given^Middle^Prefix^Suffix``, up to three ``=`` groups: alphabetic,
                 ideographic, phonetic). Each component of at least 2 characters alone (a one-letter initial would
                 wreck the text), and family with given as one span in either order, joined by nothing, spaces,
                 a comma, a dot, ``^`` or a middle dot ("Zhang San", "ZhangSan", "San Zhang", "Zhang, San"). A name
                 in a script that spaces its words (Latin, Greek, Cyrillic) matches case-insensitively and as a
                 word only: never inside a longer run of such letters, so a surname "He" leaves "the" alone. A name
                 in Chinese characters matches wherever it stands (Chinese does not space its words), as one string
                 and family-first only ("张三"; "三张" is everyday Chinese for "three sheets").
    IDs          local patient IDs, the regional ID, accession numbers: at least 2 characters, case-insensitive,
                 never inside a longer run of letters and digits.
    birth dates  YYYYMMDD as DICOM holds them, written YYYYMMDD, YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD or
                 YYYY年M月D日, month and day with or without their leading zero, never inside a longer number.

The longest form is tried first at each position, so "Zhang San" becomes one marker, not two. Compiling the
forms costs milliseconds, so a text that holds none of the identifiers' components (compared case-folded, which
finds whatever the case-insensitive forms could match) is returned at once, without compiling anything: most texts
(a study's description) name nobody.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MARKER = "■■■"
MIN_LENGTH = 2

# Letters of the scripts that space their words: a name in them is matched as a whole word only.
_SPACED_LETTER = r"[A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF]"
_SPACED = re.compile(_SPACED_LETTER)
_NAME_EDGE_BEFORE, _NAME_EDGE_AFTER = f"(?<!{_SPACED_LETTER})", f"(?!{_SPACED_LETTER})"
_ID_EDGE_BEFORE, _ID_EDGE_AFTER = rf"(?<![0-9]|{_SPACED_LETTER})", rf"(?![0-9]|{_SPACED_LETTER})"
_JOINER = r"[\s,.^·・]*"  # what may stand between family and given name


@dataclass(frozen=True)
class Identifiers:
    """A patient's identifiers as teleus holds them (any may repeat or be empty)."""

    names: tuple[str, ...] = ()  # DICOM PN values
    ids: tuple[str, ...] = ()  # local patient IDs, regional ID values, accession numbers
    birth_dates: tuple[str, ...] = ()  # YYYYMMDD


NONE = Identifiers()  # nothing to strike out


def redact(text: str, who: Identifiers) -> str:
    """`text` with every occurrence of `who`'s identifiers replaced by :data:`MARKER`."""
    folded = _fold(text)
    if not any(needle in folded for needle in _needles(who)):
        return text
    pattern = _pattern(who)
    return pattern.sub(MARKER, text) if pattern is not None else text


def redact_json(value: Any, who: Identifiers) -> Any:
    """A JSON value with every string in it redacted (object keys are the schema's, kept as they are)."""
    if isinstance(value, str):
        return redact(value, who)
    if isinstance(value, list):
        return [redact_json(item, who) for item in value]
    if isinstance(value, dict):
        return {key: redact_json(item, who) for key, item in value.items()}
    return value


def name_components(name: str) -> list[list[str]]:
    """A PN value's groups (alphabetic, ideographic, phonetic), each its non-empty components, spaces trimmed."""
    groups = [[part.strip() for part in group.split("^")] for group in name.split("=")]
    return [[part for part in group if part] for group in groups if any(group)]


def _spaced(form: str) -> bool:
    """Whether every letter of `form` belongs to a script that spaces its words."""
    return all(_SPACED.match(ch) for ch in form if ch.isalpha())


def _literal(form: str) -> str:
    return r"\s+".join(re.escape(word) for word in form.split())


def _name_forms(name: str) -> Iterable[tuple[str, str]]:
    """(source form, regex) for each form of one PN value."""
    for group in name_components(name):
        for part in group:
            if len(part) >= MIN_LENGTH:
                yield part, _as_name(part, _literal(part))
        if len(group) < 2:
            continue
        family, given = group[0], group[1]
        orders = [(family, given)] + ([(given, family)] if _spaced(family + given) else [])
        for first, second in orders:
            source = first + " " + second
            yield source, _as_name(source, _literal(first) + _JOINER + _literal(second))


def _as_name(source: str, regex: str) -> str:
    return _NAME_EDGE_BEFORE + regex + _NAME_EDGE_AFTER if _spaced(source) else regex


def _date_forms(birth_date: str) -> Iterable[tuple[str, str]]:
    if not re.fullmatch(r"[0-9]{8}", birth_date):
        return
    year, month, day = birth_date[:4], birth_date[4:6], birth_date[6:]
    m, d = f"0?{int(month)}", f"0?{int(day)}"
    yield birth_date, rf"(?<![0-9]){birth_date}(?![0-9])"
    yield birth_date + "-", rf"(?<![0-9]){year}[-/.]{m}[-/.]{d}(?![0-9])"
    yield birth_date + "年", rf"(?<![0-9]){year}\s*年\s*{m}\s*月\s*{d}(?:\s*日|(?![0-9]))"


def _id_forms(identifier: str) -> Iterable[tuple[str, str]]:
    identifier = identifier.strip()
    if len(identifier) >= MIN_LENGTH:
        yield identifier, _ID_EDGE_BEFORE + _literal(identifier) + _ID_EDGE_AFTER


def _fold(text: str) -> str:
    """Case-folded, with the dotless i as i: every match of a case-insensitive form contains a folded needle."""
    return text.casefold().replace("ı", "i")


@lru_cache(maxsize=1024)
def _needles(who: Identifiers) -> frozenset[str]:
    """A piece of text each form contains, folded: any name component, any ID, any birth year."""
    parts = [part for name in who.names for group in name_components(name) for part in group]
    parts += [identifier.strip() for identifier in who.ids if len(identifier.strip()) >= MIN_LENGTH]
    parts += [birth[:4] for birth in who.birth_dates if re.fullmatch(r"[0-9]{8}", birth)]
    return frozenset(_fold(word) for part in parts for word in part.split())


@lru_cache(maxsize=256)
def _pattern(who: Identifiers) -> re.Pattern[str] | None:
    forms: dict[str, str] = {}
    for name in who.names:
        forms.update((regex, source) for source, regex in _name_forms(name))
    for identifier in who.ids:
        forms.update((regex, source) for source, regex in _id_forms(identifier))
    for birth_date in who.birth_dates:
        forms.update((regex, source) for source, regex in _date_forms(birth_date))
    if not forms:
        return None
    longest_first = sorted(forms, key=lambda regex: (-len(forms[regex]), regex))
    return re.compile("|".join(f"(?:{regex})" for regex in longest_first), re.IGNORECASE)
