"""JSON text as teleus accepts and writes it: RFC 8259 only, Unicode only, nested a bounded depth.

Python's `json` is more lenient than the standard and than the browsers that read what the server writes:

- it reads and writes `NaN`, `Infinity` and `-Infinity`, which `JSON.parse` refuses (and `1e999` reads as inf);
- it reads `"\\ud800"` (a lone surrogate) into a `str` that cannot be encoded as UTF-8, so the first attempt to
  send or store it fails, far from where it came in;
- it recurses once per nesting level, so a deeply nested array raises RecursionError (not ValueError).

`loads` refuses all three with `JsonRefused` (a ValueError whose message says why); `dumps` never writes NaN or
Infinity (ValueError instead). The signaling codec (`signaling/messages.py`) and the REST body reader
(`api/body.py`) both read through here, so both ends agree on what JSON is.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonRefused(ValueError):
    """Text that is not strict JSON (or nested too deep); the message says why, for a human."""


def loads(raw: str | bytes | bytearray, *, max_depth: int) -> Any:
    """The value of `raw` (UTF-8 bytes or text); JsonRefused when it is not strict JSON within `max_depth`
    levels of arrays and objects (the outermost counts as one)."""
    if isinstance(raw, bytes | bytearray):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise JsonRefused("the text is not UTF-8") from None
    else:
        text = raw
        if not _is_unicode(text):
            raise JsonRefused("the text contains a lone surrogate, which is not Unicode")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except JsonRefused:
        raise
    except RecursionError:
        raise JsonRefused(f"the JSON is nested deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise JsonRefused(str(exc)) from None
    # Cheap tests first: the walk is needed only when brackets or surrogate escapes could make it fail.
    deep = text.count("[") + text.count("{") > max_depth
    escapes = _SURROGATE_ESCAPE.search(text) is not None
    if deep or escapes:
        _walk(value, max_depth, escapes)
    return value


def dumps(value: Any) -> str:
    """Compact JSON text, non-ASCII kept as is; ValueError for NaN or Infinity (never written)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def utf8_size(text: str | bytes) -> int:
    """The size in bytes of `text` on the wire (a lone surrogate counts as the 3 bytes it would take)."""
    return len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON number")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise JsonRefused(f"the number {literal[:40]} is out of range")
    return value


def _walk(value: Any, max_depth: int, check_strings: bool) -> None:
    """Depth and lone surrogates, without recursion (the value may be up to ~1000 levels deep)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                raise JsonRefused(f"the JSON is nested deeper than {max_depth} levels")
            for key, child in item.items():
                if check_strings and not _is_unicode(key):
                    raise JsonRefused("a string contains a lone surrogate, which is not Unicode")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > max_depth:
                raise JsonRefused(f"the JSON is nested deeper than {max_depth} levels")
            stack.extend((child, depth + 1) for child in item)
        elif check_strings and isinstance(item, str) and not _is_unicode(item):
            raise JsonRefused("a string contains a lone surrogate, which is not Unicode")
