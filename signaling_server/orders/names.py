"""Person names at the DICOM edge: a name typed in one field (as people write it), made a DICOM PN value.

A PN value (PS3.5 6.2) has up to three component groups separated by `=` (alphabetic, ideographic, phonetic), each
of up to five components separated by `^` (family, given, middle, prefix, suffix) and at most 64 characters; no
`\\` and no control characters. A value without any `^` is the retired free form (dciodvfy warns on it), so:

    张^三, Wang^Fang=王^芳      given in PN form: kept as given (checked)
    张三, 欧阳娜娜              Chinese, family name first: the family name (one character, or a compound
                                surname of the list below) and the given name: 张^三, 欧阳^娜娜
    Li Wei                     anything else: the whole as the family name, Li Wei^ (never reordered by guess)

The console shows any of these as people write them (expert_console/i18n.js `personName`: 张三, Li Wei).
"""

from __future__ import annotations

import re

MAX_GROUP = 64
_HAN = re.compile(r"^[\u3400-\u9fff\uf900-\ufaff]{2,8}$")
# Two-character surnames (复姓) common enough to meet; any other name's family name is its first character.
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 钟离 端木 南宫 西门 独孤 "
    "百里 呼延 万俟 闻人 澹台 申屠 太史 公羊 濮阳 淳于 单于 赫连".split()
)


def person_name(text: str) -> str:
    """`text` as a valid PN value; ValueError saying what is wrong."""
    value = text.strip()
    if not value.strip("=^ "):
        raise ValueError("a name is required")
    if "\\" in value or any(ord(c) < 32 for c in value):
        raise ValueError("a name has no '\\' and no control characters")
    if "^" not in value and "=" not in value:
        value = _components(" ".join(value.split()))
    groups = value.split("=")
    if len(groups) > 3:
        raise ValueError("a DICOM name has at most three '='-separated forms")
    for group in groups:
        if len(group.split("^")) > 5:
            raise ValueError("a DICOM name has at most five '^'-separated parts")
        if len(group) > MAX_GROUP:
            raise ValueError(f"each form of a DICOM name is at most {MAX_GROUP} characters")
    return value


def _components(name: str) -> str:
    if _HAN.match(name):
        family = name[:2] if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else name[0]
        return f"{family}^{name[len(family):]}"
    return f"{name}^"


def as_person_name(text: str) -> str:
    """Any stored name (a user's display name) made a valid PN: what PN cannot hold is dropped or cut."""
    cleaned = " ".join("".join(c for c in text if ord(c) >= 32 and c not in "\\=").split())[: MAX_GROUP - 1]
    if not cleaned.strip("^ "):
        return ""
    try:
        return person_name(cleaned if cleaned.count("^") < 5 else cleaned.replace("^", " "))
    except ValueError:
        return ""
