"""signaling_server.api.body: strict JSON bodies and field readers; over generated input (hypothesis) they answer a
value or an InvalidRequest, never anything else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling_server import errors
from signaling_server.api import body

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"frame_capture_ms": NaN}', "NaN is not a JSON number"),
        (b'{"seconds": Infinity}', "Infinity is not a JSON number"),
        (b'{"a": 1e999}', "out of range"),
        (b'{"name": "\\ud800"}', "lone surrogate"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "nested deeper than 32 levels"),
        (b"[1]", "the body must be a JSON object"),
    ],
)
def test_bodies_that_are_not_strict_json_objects_are_invalid_requests(raw: bytes, words: str) -> None:
    with pytest.raises(errors.InvalidRequest) as refused:
        body.parse_object(raw)
    assert refused.value.code == "invalid_request" and words in refused.value.message


def test_an_empty_body_is_an_empty_object() -> None:
    assert body.parse_object(b"") == {}


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_body_is_an_object_or_an_invalid_request(raw: bytes) -> None:
    try:
        assert isinstance(body.parse_object(raw), dict)
    except errors.InvalidRequest:
        pass


@given(ANY_JSON)
def test_json_text_of_any_value_is_an_object_or_an_invalid_request(value: Any) -> None:
    try:
        data = body.parse_object(json.dumps({"v": value}).encode())
    except errors.InvalidRequest:
        return
    json.dumps(data, allow_nan=False).encode("utf-8")  # what was accepted can be stored and answered


@given(st.dictionaries(st.sampled_from(["k", "other"]), ANY_JSON, max_size=2))
def test_field_readers_answer_a_value_or_an_invalid_request(data: dict[str, Any]) -> None:
    readers = [
        lambda: body.text(data, "k"),
        lambda: body.text(data, "k", required=False),
        lambda: body.choice(data, "k", ["a", "b"]),
        lambda: body.choice(data, "k", ["a", "b"], required=False),
        lambda: body.date(data, "k"),
        lambda: body.obj(data, "k"),
    ]
    for read in readers:
        try:
            read()
        except errors.InvalidRequest as exc:
            assert exc.status == 400 and exc.message
