"""STOW-RS client against a real HTTP server on 127.0.0.1: the body, the answers, the errors."""

from __future__ import annotations

import socket
from io import BytesIO

import pytest

from edge_capture.dicom.stow import (
    DUPLICATE_SOP_INSTANCE,
    StowClient,
    StowError,
    failure_is_retryable,
    multipart_body,
    parse_response,
)
from edge_capture.dicom.ultrasound import build_still
from edge_capture.sources.synthetic import SyntheticSource
from qc.labels import CaptureLabels
from tests.edge_capture.dicom.conftest import StowServer, context, parse_multipart, synthetic_frames


def part10(source: SyntheticSource, count: int = 1) -> dict[str, bytes]:
    files = {}
    for frame in synthetic_frames(source, count):
        ds = build_still(frame, context(), CaptureLabels())
        out = BytesIO()
        ds.save_as(out, enforce_file_format=True)
        files[str(ds.SOPInstanceUID)] = out.getvalue()
    return files


def test_multipart_body_splits_back_into_the_files(thyroid: SyntheticSource) -> None:
    files = part10(thyroid, 2)
    content_type, body = multipart_body(files)
    assert content_type.startswith('multipart/related; type="application/dicom"; boundary=')
    assert [str(ds.SOPInstanceUID) for ds in parse_multipart(content_type, body)] == list(files)


async def test_store_sends_every_file_and_reads_the_acknowledgement(
    stow_server: StowServer, thyroid: SyntheticSource
) -> None:
    files = part10(thyroid, 2)
    client = StowClient(stow_server.url, stow_server.credential)
    try:
        result = await client.store(files)
    finally:
        await client.close()
    assert result.status == 200 and result.stored == set(files)
    assert all(result.acknowledged(uid) for uid in files)
    assert stow_server.requests == [list(files)]
    assert set(stow_server.stored) == set(files)
    assert stow_server.stored[next(iter(files))].PatientName == "张^三"


async def test_a_duplicate_answered_409_counts_as_acknowledged(
    stow_server: StowServer, thyroid: SyntheticSource
) -> None:
    files = part10(thyroid)
    client = StowClient(stow_server.url, stow_server.credential)
    try:
        await client.store(files)
        again = await client.store(files)
    finally:
        await client.close()
    (uid,) = files
    assert again.status == 409 and again.failed == {uid: DUPLICATE_SOP_INSTANCE}
    assert again.acknowledged(uid)


@pytest.mark.parametrize(
    ("action", "code", "status", "retryable", "blames_file"),
    [
        ("503", "unavailable", 503, True, False),
        ("500", "unavailable", 500, True, False),
        ("429", "slow_down", 429, True, False),
        ("400", "invalid_dicom", 400, False, True),
        ("401", "unauthorized", 401, False, False),
    ],
)
async def test_http_errors_are_classified(
    stow_server: StowServer,
    thyroid: SyntheticSource,
    action: str,
    code: str,
    status: int,
    retryable: bool,
    blames_file: bool,
) -> None:
    stow_server.script = [action]
    client = StowClient(stow_server.url, stow_server.credential)
    try:
        with pytest.raises(StowError) as caught:
            await client.store(part10(thyroid))
    finally:
        await client.close()
    error = caught.value
    assert (error.code, error.status, error.retryable, error.blames_file) == (code, status, retryable, blames_file)
    if action == "400":
        assert error.message == "not an ultrasound image"
    if action == "429":
        assert error.retry_after == 0.0


async def test_partial_failures_come_back_per_instance(stow_server: StowServer, thyroid: SyntheticSource) -> None:
    files = part10(thyroid)
    (uid,) = files
    client = StowClient(stow_server.url, stow_server.credential)
    try:
        stow_server.script = ["202-fail", "409-missing"]
        busy = await client.store(files)
        refused = await client.store(files)
    finally:
        await client.close()
    assert busy.status == 202 and busy.failed == {uid: 0xA700} and not busy.acknowledged(uid)
    assert failure_is_retryable(busy.failed[uid])
    assert refused.status == 409 and refused.failed == {uid: 0xA900}
    assert refused.reasons == {uid: ("missing_attribute", "PatientID is missing")}
    assert not failure_is_retryable(0xA900)


async def test_a_dropped_connection_is_a_retryable_network_error(
    stow_server: StowServer, thyroid: SyntheticSource
) -> None:
    stow_server.script = ["drop"]
    client = StowClient(stow_server.url, stow_server.credential)
    try:
        with pytest.raises(StowError) as caught:
            await client.store(part10(thyroid))
    finally:
        await client.close()
    assert caught.value.code == "network_error" and caught.value.retryable


async def test_nobody_listening_is_a_retryable_network_error(thyroid: SyntheticSource) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = StowClient(f"http://127.0.0.1:{port}", "x", connect_timeout=2)
    try:
        with pytest.raises(StowError) as caught:
            await client.store(part10(thyroid))
    finally:
        await client.close()
    assert caught.value.code == "network_error" and caught.value.retryable and caught.value.status is None


def test_parse_response_reads_dicom_json() -> None:
    body = {
        "00081199": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1.2.3"]}}]},
        "00081198": {
            "vr": "SQ",
            "Value": [{"00081155": {"vr": "UI", "Value": ["1.2.4"]}, "00081197": {"vr": "US", "Value": [0xC000]}}],
        },
    }
    result = parse_response(202, body, ["1.2.3", "1.2.4", "1.2.5"])
    assert result.stored == {"1.2.3"} and result.failed == {"1.2.4": 0xC000}
    assert parse_response(200, None, ["1.2.3"]).stored == {"1.2.3"}  # 200 stores all, whatever the body says
    assert parse_response(202, [body], []).stored == {"1.2.3"}
    assert parse_response(202, "nonsense", ["1.2.3"]).stored == frozenset()
