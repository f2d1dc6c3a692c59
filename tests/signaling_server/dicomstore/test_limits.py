"""Hostile DICOM at every ingest: objects whose headers claim too much, or lie, or name no transfer syntax; STOW
bodies of too many parts. Each is refused with its stable code and leaves nothing behind (SECURITY.md §7)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydicom.dataset import Dataset
from pynetdicom import AE

from signaling_server import errors
from signaling_server.dicomstore.blobs import BLOBS
from signaling_server.dicomstore.ingest import DICOM_STORE
from signaling_server.dicomstore.limits import ImageLimits, PixelGeometry, check_transfer_syntax
from signaling_server.dicomstore.scp import CANNOT_UNDERSTAND, DICOM_SCP, SUCCESS
from signaling_server.settings import Settings
from tests.conftest import World

from .conftest import Start
from .objects import (
    SOP_CLASSES,
    failure,
    image,
    lying_image,
    multipart,
    read,
    rle_image,
    snapshot,
    with_transfer_syntax,
)

FAILED, REFERENCED = "00081198", "00081199"


async def _stow(client: TestClient, world: World, parts: list[Any]) -> tuple[int, dict[str, Any]]:
    content_type, body = multipart(parts)
    headers = {
        "Content-Type": content_type,
        "Accept": "application/dicom+json",
        "Authorization": f"Bearer {world.device_a_credential}",
    }
    response = await client.post("/dicomweb/studies", data=io.BytesIO(body), headers=headers)
    return response.status, await response.json(content_type=None)


def _failures(body: dict[str, Any]) -> list[tuple[int, str]]:
    return [failure(item) for item in body.get(FAILED, {}).get("Value", [])]


def _spool_files_open(tmp: Path) -> list[str]:
    """This process's open files under the blob store's tmp/ (an anonymous spool shows as 'tmp/#123 (deleted)')."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(tmp)):
            found.append(target)
    return found


async def _post_refused_early(client: TestClient, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """POST /dicomweb/studies by hand: the server answers and closes before it has read the body, so the sending is
    allowed to fail while the answer is read (an HTTP client library would report the broken write instead)."""
    url = client.make_url("/dicomweb/studies")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    head = [f"POST {url.path} HTTP/1.1", f"Host: {url.host}:{url.port}", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]

    async def send() -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            await writer.drain()

    sending = asyncio.create_task(send())
    try:
        status = int((await asyncio.wait_for(reader.readline(), 30)).split()[1])
        length = 0
        while (line := await asyncio.wait_for(reader.readline(), 30)) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await asyncio.wait_for(reader.readexactly(length), 30)
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        writer.close()


async def test_a_10000_square_rle_bomb_is_refused_from_its_header(people: Any) -> None:
    """The finding: 1.6 MB of RLE claiming 10000 × 10000 pixels was stored, and rendering it took 630 MB."""
    client, world, _ = people
    bomb = rle_image(10000, 10000)
    assert len(bomb) < 2_000_000
    before = await snapshot(client.app)
    status, body = await _stow(client, world, [bomb, rle_image(64, 64, frames=2001)])
    assert status == 409, body
    assert _failures(body) == [(0xC000, "image_too_large"), (0xC000, "image_too_large")]
    messages = [item["00091002"]["Value"][0] for item in body[FAILED]["Value"]]
    assert "10000 × 10000" in messages[0] and "2001 frames" in messages[1]
    assert await snapshot(client.app) == before


async def test_a_header_that_lies_about_its_pixels_is_refused_as_invalid(people: Any) -> None:
    """The fuzzing finding: Rows = Columns = 65535 with 4 KB of pixel data was stored (200) and never rendered."""
    client, world, _ = people
    before = await snapshot(client.app)
    liars = [
        lying_image(65535, 65535, b"\0" * 4096),
        lying_image(64, 64, b"\0" * (64 * 64 - 2)),  # two bytes short
        lying_image(64, 64, b"\0" * (64 * 64 * 2)),  # a second frame's worth the header does not declare
        lying_image(64, 64, b"\0" * (64 * 64 * 3), frames=4),  # four frames declared, three sent
        with_transfer_syntax(image(), "1.2.840.10008.1.2.5"),  # RLE Lossless named, native pixels sent
    ]
    status, body = await _stow(client, world, liars)
    assert status == 409, body
    assert _failures(body) == [(0xC000, "pixel_data_mismatch")] * len(liars)
    assert await snapshot(client.app) == before
    fine = [lying_image(3, 3, b"\1" * 9 + b"\0"), lying_image(8, 8, b"\2" * 128, frames=2)]  # a pad byte; 2 frames
    status, body = await _stow(client, world, fine)
    assert status == 200, body


@pytest.mark.parametrize("uid", ["1.2.840.10008.1.2.4", "1.2.840.10008.1.2.", "1.2.3.4", "1.2.840.10008.5.1.4.1.1.6.1"])
async def test_an_unknown_or_truncated_transfer_syntax_is_refused_for_good(people: Any, uid: str) -> None:
    """It used to answer 0110H processing failure, which the edge's outbox retries for ever."""
    client, world, _ = people
    before = await snapshot(client.app)
    status, body = await _stow(client, world, [with_transfer_syntax(image(), uid)])
    assert status == 409 and _failures(body) == [(0xC122, "unknown_transfer_syntax")]
    assert await snapshot(client.app) == before


async def test_a_flood_of_tiny_parts_is_refused_and_leaves_nothing(people: Any) -> None:
    """The finding: 50 000 one-byte parts took 84 s and 174 MB, and the answer was 17.6 MB."""
    client, world, _ = people
    tmp = client.app[BLOBS].tmp
    before = await snapshot(client.app)
    content_type, body = multipart([b"x"] * 50_000)
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {world.device_a_credential}"}
    status, answer = await _post_refused_early(client, headers, body)
    assert status == 413 and len(answer) < 1000
    assert json.loads(answer)["error"] == "too_many_parts"
    assert await snapshot(client.app) == before
    assert list(tmp.iterdir()) == [] and _spool_files_open(tmp) == []


async def test_the_part_cap_and_the_image_caps_are_settings(start: Start) -> None:
    server = await start(max_stow_parts=3, max_pixels_per_frame=10_000, max_frames=3, max_pixel_bytes=20_000)
    device = server.device("a")
    status, body = await server.stow(device, [image(rows=10, columns=10, seed=i) for i in range(3)])
    assert status == 200, body
    before = await snapshot(server.app)
    status, body = await server.stow(device, [image(rows=10, columns=10, seed=i) for i in range(4)])
    assert (status, body["error"]) == (413, "too_many_parts") and "at most 3 parts" in body["message"]
    cases = [
        (rle_image(100, 101), "image_too_large"),  # 10 100 pixels per frame
        (rle_image(20, 20, frames=4), "image_too_large"),  # 4 frames
        (image(rows=100, columns=100, rgb=True), "image_too_large"),  # 10 000 pixels but 30 000 bytes
    ]
    status, body = await server.stow(device, [part for part, _ in cases])
    assert status == 409 and _failures(body) == [(0xC000, code) for _, code in cases]
    assert await snapshot(server.app) == before
    status, body = await server.stow(device, [rle_image(100, 100, frames=2), rle_image(10, 10, frames=3)])
    assert status == 200, body  # exactly at the caps


async def test_c_store_answers_the_same_refusals_as_a_failure_status(start: Start) -> None:
    server = await start(dicom_port=0, max_pixels_per_frame=10_000, max_dicom_bytes=200_000)
    port = server.app[DICOM_SCP].port
    objects = [
        read(image(modality="CR", rows=100, columns=101)),  # over the pixels per frame
        read(lying_image(65535, 65535, b"\0" * 4096, SOPClassUID=SOP_CLASSES["CR"])),
        read(image(modality="CR", rows=90, columns=100, rgb=True)),  # 27 000 bytes of pixels: fine
    ]
    big = read(image(modality="CR", rows=95, columns=100))
    big.add_new(0x00091010, "OB", b"\0" * 200_000)  # private bulk: over the object size cap, under the pixel caps
    big.add_new(0x00090010, "LO", "TELEUS TESTS")
    objects.append(big)
    before = await snapshot(server.app)

    def send(datasets: list[Dataset]) -> list[tuple[int, str]]:
        ae = AE("NORTH_CR")
        ae.add_requested_context(SOP_CLASSES["CR"], ["1.2.840.10008.1.2.1"])
        assoc = ae.associate("127.0.0.1", port, ae_title="TELEUS")
        assert assoc.is_established
        try:
            answers = [assoc.send_c_store(ds) for ds in datasets]
        finally:
            assoc.release()
        return [(a.Status, str(a.get("ErrorComment", "")).split(":")[0]) for a in answers]

    answers = await asyncio.to_thread(send, objects)
    assert answers == [
        (CANNOT_UNDERSTAND, "image_too_large"),
        (CANNOT_UNDERSTAND, "pixel_data_mismatch"),
        (SUCCESS, ""),
        (CANNOT_UNDERSTAND, "too_large"),
    ]
    after = await snapshot(server.app)
    assert after.counts[4] == before.counts[4] + 1  # the one object within the limits, nothing of the others


async def test_an_object_stored_before_the_caps_were_lowered_is_not_rendered(start: Start) -> None:
    server = await start(max_pixels_per_frame=100 * 100)
    stored = await server.store(image(rows=100, columns=100))
    path = f"/dicomweb/studies/{stored.study_uid}/series/{stored.series_uid}/instances/{stored.sop_uid}/rendered"
    reader = await server.bearer("expert")
    async with reader.get(server.base + path) as response:
        assert response.status == 200 and response.content_type == "image/jpeg"
    server.app[DICOM_STORE].limits = ImageLimits(max_pixels_per_frame=99 * 100)  # as after a restart with less
    async with reader.get(server.base + path) as response:
        assert response.status == 422 and (await response.json())["error"] == "not_renderable"


def test_geometry_counts_what_a_decoder_allocates() -> None:
    grey = PixelGeometry(rows=512, columns=512, frames=10, samples=1, bits_allocated=16, photometric="MONOCHROME2")
    assert grey.decoded_bytes == grey.native_bytes == 512 * 512 * 10 * 2
    bits = PixelGeometry(rows=10, columns=10, frames=1, samples=1, bits_allocated=1, photometric="MONOCHROME2")
    assert (bits.native_bytes, bits.decoded_bytes) == (13, 100)  # packed on the wire, one byte each decoded
    ybr = PixelGeometry(rows=4, columns=4, frames=1, samples=3, bits_allocated=8, photometric="YBR_FULL_422")
    assert (ybr.native_bytes, ybr.decoded_bytes) == (32, 48)
    limits = ImageLimits(max_pixels_per_frame=100, max_frames=2, max_pixel_bytes=400)
    limits.check_geometry(PixelGeometry(10, 10, 2, 1, 16, "MONOCHROME2"))  # exactly at each cap
    overs = [PixelGeometry(10, 11, 1, 1, 8, ""), PixelGeometry(5, 5, 3, 1, 8, ""), PixelGeometry(10, 10, 1, 3, 16, "")]
    for over in overs:
        with pytest.raises(errors.ImageTooLarge):
            limits.check_geometry(over)
    with pytest.raises(errors.TooLarge):
        ImageLimits(max_dataset_bytes=10).check_size(11)


def test_a_transfer_syntax_must_be_one_of_the_standard() -> None:
    assert check_transfer_syntax("1.2.840.10008.1.2.4.50\0") == "1.2.840.10008.1.2.4.50"
    for uid in ("1.2.840.10008.1.2.4", "", "1.2.276.0.7230010.3.1.4.1", "abc"):
        with pytest.raises(errors.UnknownTransferSyntax):
            check_transfer_syntax(uid)


def test_the_caps_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "TELEUS_MAX_PIXELS_PER_FRAME": "1000",
            "TELEUS_MAX_FRAMES": "7",
            "TELEUS_MAX_PIXEL_BYTES": "9000",
            "TELEUS_MAX_STOW_PARTS": "5",
            "TELEUS_MAX_DICOM_BYTES": "100000",
        }
    )
    assert ImageLimits.from_settings(settings) == ImageLimits(100_000, 1000, 7, 9000)
    assert settings.max_stow_parts == 5
    defaults = Settings.from_env({})
    assert (defaults.max_pixels_per_frame, defaults.max_frames, defaults.max_pixel_bytes) == (1 << 26, 2000, 1 << 30)
    assert defaults.max_stow_parts == 1000
