"""Properties of the multipart/related reader over generated input (hypothesis): any bytes, any Content-Type and any
mutation of a valid body raise only the documented errors; a valid body gives its parts back whatever the chunking."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from signaling_server import errors
from signaling_server.dicomstore.multipart import MultipartParser, boundary_of, media_ranges, media_type

from .objects import multipart

BOUNDARY = uuid.uuid4().hex


def parse(boundary: str, body: bytes, cuts: list[int]) -> list[bytes]:
    parser = MultipartParser(boundary)  # the parts are spooled in one temporary file, closed with the parser
    try:
        at = 0
        for cut in [*sorted({min(max(c, 0), len(body)) for c in cuts}), len(body)]:
            parser.feed(body[at:cut])
            at = cut
        return [part.read() for part in parser.finish()]
    finally:
        parser.close()


@given(st.text(max_size=200))
def test_content_types_parse_or_are_refused_with_their_codes(value: str) -> None:
    media_type(value)
    media_ranges(value)
    try:
        boundary_of(value)
    except (errors.UnsupportedMediaType, errors.BadMultipart):
        pass


@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=5))
def test_any_bytes_are_parts_or_bad_multipart(body: bytes, cuts: list[int]) -> None:
    try:
        parse(BOUNDARY, body, cuts)
    except errors.BadMultipart:
        pass


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=4), st.lists(st.integers(0, 1500), max_size=6))
def test_valid_bodies_give_their_parts_back_whatever_the_chunking(parts: list[bytes], cuts: list[int]) -> None:
    content_type, body = multipart(list(parts), boundary=BOUNDARY)
    assert boundary_of(content_type) == BOUNDARY
    assert parse(BOUNDARY, body, cuts) == parts


@st.composite
def mutated_body(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.binary(max_size=100), min_size=1, max_size=3))
    body = bytearray(multipart(list(parts), boundary=BOUNDARY)[1])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body)))
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        if kind == "flip" and at < len(body):
            body[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del body[at:]
        elif kind == "insert":
            body[at:at] = draw(st.sampled_from([b"\r\n", b"--", BOUNDARY.encode(), b"\r\n\r\n", b":", b"\x00"]))
        elif kind == "delete":
            del body[at : at + draw(st.integers(1, 10))]
    return bytes(body)


@given(mutated_body(), st.lists(st.integers(0, 600), max_size=4))
def test_mutated_bodies_are_parts_or_bad_multipart(body: bytes, cuts: list[int]) -> None:
    try:
        parse(BOUNDARY, body, cuts)
    except errors.BadMultipart:
        pass
