"""multipart/related parsing without sockets: any chunking, every malformation, and the writer read back."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

from signaling_server import errors
from signaling_server.dicomstore.multipart import (
    MultipartParser,
    MultipartWriter,
    boundary_of,
    media_ranges,
    media_type,
)


def _parse(body: bytes, boundary: str, chunk: int) -> list[tuple[str, bytes]]:
    parser = MultipartParser(boundary)
    for at in range(0, len(body), chunk):
        parser.feed(body[at : at + chunk])
    parts = parser.finish()
    found = [(part.content_type, part.read()) for part in parts]
    parser.close()
    return found


def _body(boundary: str, parts: list[bytes], preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    chunks = [preamble]
    for data in parts:
        chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), data, b"\r\n"]
    return b"".join([*chunks, f"--{boundary}--\r\n".encode(), epilogue])


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_parts_come_out_whole_whatever_the_chunking(chunk: int) -> None:
    boundary = "b0undary"
    tricky = b"\r\n--b0undarY" + os.urandom(3000) + b"x--b0undary\r\n-b0undary"  # near-delimiters, not delimiters
    parts = [os.urandom(10_000), b"", tricky]
    body = _body(boundary, parts, preamble=b"ignored preamble\r\n", epilogue=b"ignored epilogue")
    assert _parse(body, boundary, chunk) == [("application/dicom", p) for p in parts]


def test_writer_output_reads_back() -> None:
    writer = MultipartWriter("application/dicom")
    payloads = [os.urandom(5000), os.urandom(10)]
    body = b"".join(writer.head(transfer_syntax="1.2.840.10008.1.2.1") + p + writer.tail() for p in payloads)
    body += writer.closing()
    kind, params = media_type(writer.content_type)
    assert kind == "multipart/related" and params["type"] == "application/dicom"
    assert [data for _, data in _parse(body, params["boundary"], 999)] == payloads


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"no boundary anywhere" * 4000, "wrong or missing boundary"),
        (b"--other\r\nContent-Type: application/dicom\r\n\r\nx\r\n--other--", "does not contain the boundary"),
        (b"--b\r\nContent-Type: application/dicom\r\n\r\nhalf a part", "ended before the closing boundary"),
        (b"--b\r\nContent-Type application/dicom\r\n\r\nx\r\n--b--", "malformed part header"),
        (b"--b garbage\r\n\r\nx\r\n--b--", "garbage after a boundary"),
        (b"--b\r\n" + b"X-Long: " + b"a" * 20000, "headers are longer"),
    ],
)
def test_malformed_bodies(body: bytes, words: str) -> None:
    parser = MultipartParser("b")
    with pytest.raises(errors.BadMultipart, match=words):
        parser.feed(body)
        parser.finish()


def test_content_type_and_accept_values() -> None:
    assert boundary_of('multipart/related; type="application/dicom"; boundary="a b:c"') == "a b:c"
    assert boundary_of("Multipart/Related; BOUNDARY=xyz") == "xyz"
    with pytest.raises(errors.BadMultipart, match="no boundary"):
        boundary_of('multipart/related; type="application/dicom"')
    with pytest.raises(errors.BadMultipart, match="1-70"):
        boundary_of("multipart/related; boundary=" + "x" * 71)
    with pytest.raises(errors.UnsupportedMediaType):
        boundary_of("application/dicom")
    ranges = media_ranges('multipart/related; type="application/dicom"; transfer-syntax=*, image/png;q=0.5, */*')
    assert ranges == [
        ("multipart/related", {"type": "application/dicom", "transfer-syntax": "*"}),
        ("image/png", {"q": "0.5"}),
        ("*/*", {}),
    ]
    assert media_ranges('a/b; x="1,2", c/d') == [("a/b", {"x": "1,2"}), ("c/d", {})]


def test_the_part_one_too_many_is_refused_as_it_begins() -> None:
    parser = MultipartParser("b", max_parts=3)
    for _ in range(3):
        parser.feed(b"--b\r\nContent-Type: application/dicom\r\n\r\nx\r\n")
    parser.feed(b"--b\r\nContent-Type: application")  # the fourth part's headers are not complete yet
    with pytest.raises(errors.TooManyParts, match="at most 3 parts"):
        parser.feed(b"/dicom\r\n\r\n")
    assert parser.spool.closed  # nothing of the three parts is kept either


def test_parts_are_streamed_to_an_anonymous_file_not_kept_in_memory(tmp_path: Path) -> None:
    payload = os.urandom(1 << 16)
    parser = MultipartParser("b", tmp_path)
    tracemalloc.start()
    try:
        parser.feed(b"--b\r\nContent-Type: application/dicom\r\n\r\n")
        for _ in range(320):  # 20 MiB in 64 KiB chunks
            parser.feed(payload)
        parser.feed(b"\r\n--b\r\nContent-Type: application/dicom\r\n\r\nsecond\r\n--b--\r\n")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # a few chunks' worth, not 20 MiB
    first, second = parser.finish()
    assert (first.size, first.read()[-len(payload):], second.read()) == (320 << 16, payload, b"second")
    assert os.fstat(parser.spool.fileno()).st_nlink == 0 and list(tmp_path.iterdir()) == []  # no name on disk
    parser.close()
