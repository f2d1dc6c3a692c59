"""signaling_server.strictjson: what it refuses (with why), and properties over any input (hypothesis)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling_server import strictjson

LONE_SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("NaN", "NaN is not a JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a JSON number"),
        ("[1e999]", "the number 1e999 is out of range"),
        ('"\\ud800"', "a string contains a lone surrogate"),
        ('{"\\udc00": 1}', "a string contains a lone surrogate"),
        ('"\ud800"', "the text contains a lone surrogate"),
        (b"\xff", "the text is not UTF-8"),
        (b'"\xed\xa0\x80"', "the text is not UTF-8"),  # a surrogate written in UTF-8 is not UTF-8
        ("[" * 5 + "]" * 5, "nested deeper than 4 levels"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper than 4 levels"),  # json.loads alone: RecursionError
        ("{", "Expecting property name"),
    ],
)
def test_what_is_not_strict_json_is_refused_with_the_reason(raw: str | bytes, why: str) -> None:
    with pytest.raises(strictjson.JsonRefused) as refused:
        strictjson.loads(raw, max_depth=4)
    assert why in str(refused.value)


def test_proper_surrogate_pairs_and_exactly_max_depth_are_fine() -> None:
    assert strictjson.loads('"\\ud83d\\ude00"', max_depth=1) == "\U0001f600"
    assert strictjson.loads("[[[[]]]]", max_depth=4) == [[[[]]]]
    assert strictjson.loads('{"a": {"b": [1.5]}}', max_depth=3) == {"a": {"b": [1.5]}}


def test_dumps_writes_no_nan_and_keeps_text_as_is() -> None:
    assert strictjson.dumps({"text": "图像"}) == '{"text": "图像"}'
    with pytest.raises(ValueError):
        strictjson.dumps([float("nan")])
    assert strictjson.utf8_size("图") == 3 and strictjson.utf8_size("\ud800") == 3 and strictjson.utf8_size(b"ab") == 2


@given(st.text() | st.binary())
def test_any_text_or_bytes_is_a_value_or_refused(raw: str | bytes) -> None:
    try:
        strictjson.loads(raw, max_depth=8)
    except strictjson.JsonRefused:
        pass


@given(JSON_VALUES, st.booleans())
def test_strict_json_round_trips(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    if depth(value) <= 8:
        assert strictjson.loads(text, max_depth=8) == value
        assert strictjson.loads(text.encode(), max_depth=8) == value
    else:
        with pytest.raises(strictjson.JsonRefused):
            strictjson.loads(text, max_depth=8)


@given(JSON_VALUES, LONE_SURROGATES, st.booleans())
def test_a_lone_surrogate_anywhere_is_refused(value: Any, surrogate: str, ascii_only: bool) -> None:
    text = json.dumps([value, {"k": "x" + surrogate}], ensure_ascii=ascii_only)
    with pytest.raises(strictjson.JsonRefused):
        strictjson.loads(text, max_depth=100)


@given(JSON_VALUES)
def test_whatever_loads_accepts_dumps_can_write_and_utf8_can_carry(value: Any) -> None:
    text = json.dumps(value)
    try:
        loaded = strictjson.loads(text, max_depth=100)
    except strictjson.JsonRefused:
        return
    strictjson.dumps(loaded).encode("utf-8")
