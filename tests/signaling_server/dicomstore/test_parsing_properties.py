"""Properties of Part 10 parsing over generated input (hypothesis): any bytes and any mutation of a valid object are
either a well-formed ParsedInstance or refused with InvalidDicom (or its MissingAttribute / StudyMismatch)."""

from __future__ import annotations

import functools

from hypothesis import given
from hypothesis import strategies as st

from signaling_server import errors
from signaling_server.dicomstore.parsing import ParsedInstance, parse_instance

from .objects import image

_UID_CHARS = set("0123456789.")


@functools.cache
def valid() -> bytes:
    return image(rows=8, columns=8)


def parsed_or_refused(raw: bytes) -> ParsedInstance | None:
    try:
        found = parse_instance(raw)
    except errors.InvalidDicom as exc:
        documented = {"invalid_dicom", "missing_attribute", "study_mismatch", "unknown_transfer_syntax"}
        documented |= {"pixel_data_mismatch", "image_too_large", "too_large"}  # the caps (docs/SECURITY.md §7)
        assert exc.code in documented and exc.message
        return None
    for uid in (found.sop_uid, found.sop_class_uid, found.study_uid, found.series_uid):
        assert 0 < len(uid) <= 64 and set(uid) <= _UID_CHARS
    assert found.size == len(raw) and found.frames >= 1
    return found


@given(st.binary(max_size=600))
def test_any_bytes_are_refused_as_invalid_dicom(raw: bytes) -> None:
    assert parsed_or_refused(raw) is None


@given(st.binary(max_size=400))
def test_any_bytes_after_a_part10_header_parse_or_are_refused(tail: bytes) -> None:
    parsed_or_refused(b"\0" * 128 + b"DICM" + tail)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(valid())
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, len(raw)))
        if kind == "flip" and at < len(raw):
            raw[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del raw[at:]
        elif kind == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del raw[at : at + draw(st.integers(1, 8))]
    return bytes(raw)


@given(mutated())
def test_mutated_objects_parse_or_are_refused(raw: bytes) -> None:
    parsed_or_refused(raw)


@given(st.integers(0, 4096))
def test_every_truncation_of_an_image_is_refused(keep: int) -> None:
    raw = valid()
    if keep < len(raw):
        assert parsed_or_refused(raw[:keep]) is None
