"""Person names at the DICOM edge: a name typed in one field, checked as a DICOM PN value (PS3.5 6.2).

A PN value has up to three component groups separated by `=` (alphabetic, ideographic, phonetic), each of up to
five components separated by `^` (family, given, middle, prefix, suffix) and at most 64 characters; no `\\` (it
separates values) and no control characters. A name as people write it (张三, "Li Wei") is one valid PN already:
it is kept as typed, never split by guesswork; a name given in PN form (张^三) is kept as given.
"""

from __future__ import annotations

MAX_GROUP = 64


def person_name(text: str) -> str:
    """`text` as a valid PN value (stripped); ValueError saying what is wrong."""
    value = text.strip()
    if not value.strip("=^ "):
        raise ValueError("a name is required")
    if "\\" in value or any(ord(c) < 32 for c in value):
        raise ValueError("a name has no '\\' and no control characters")
    groups = value.split("=")
    if len(groups) > 3:
        raise ValueError("a DICOM name has at most three '='-separated forms")
    for group in groups:
        if len(group.split("^")) > 5:
            raise ValueError("a DICOM name has at most five '^'-separated parts")
        if len(group) > MAX_GROUP:
            raise ValueError(f"each form of a DICOM name is at most {MAX_GROUP} characters")
    return value


def as_person_name(text: str) -> str:
    """Any stored name (a user's display name) made a valid PN: what PN cannot hold is dropped or cut."""
    cleaned = "".join(c for c in text if ord(c) >= 32 and c not in "\\=").strip()
    parts = cleaned.split("^")[:5]
    value = "^".join(parts)
    return value[:MAX_GROUP].rstrip("^ ")
