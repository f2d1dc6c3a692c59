"""edge_capture.rtpclock: learning the sender's RTP timestamp origin from what it sent."""

from __future__ import annotations

import logging

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from edge_capture.rtpclock import RtpClock, sent_rtp_timestamp

ORIGIN = 0xFFFF_F000  # close to the wrap, on purpose


def sent(pts: int) -> int:
    return (ORIGIN + pts) % (1 << 32)


def test_origin_is_trusted_once_two_frames_agree() -> None:
    clock = RtpClock("t")
    clock.observe(0, None)  # first recv: nothing sent yet
    assert clock.origin is None
    clock.observe(sent(0), 0)  # frame 0 went out
    assert clock.origin is None and clock.rtp_timestamp(3000) is None
    clock.observe(sent(3000), 3000)
    assert clock.origin == ORIGIN
    assert clock.rtp_timestamp(6000) == (ORIGIN + 6000) % (1 << 32) == 6000 - 0x1000


def test_a_frame_that_did_not_go_out_teaches_nothing() -> None:
    clock = RtpClock("t")
    for pts in (0, 3000):
        clock.observe(sent(pts), pts)
    # frame 6000 produced no packets (encoder buffering, sender disabled): the sender still shows 3000's
    clock.observe(sent(3000), 6000)
    assert clock.origin == ORIGIN
    clock.observe(sent(9000), 9000)
    assert clock.origin == ORIGIN


def test_a_moved_origin_is_dropped_then_relearnt(caplog: pytest.LogCaptureFixture) -> None:
    clock = RtpClock("viewer-9")
    for pts in (0, 3000, 6000):
        clock.observe(sent(pts), pts)
    with caplog.at_level(logging.WARNING):
        clock.observe(12345 + 9000, 9000)  # a new sender loop with another origin
    assert clock.origin is None  # better no map than a wrong one
    assert "viewer-9" in caplog.text and "relearning" in caplog.text
    clock.observe(12345 + 12000, 12000)
    assert clock.origin == 12345


def test_one_stray_observation_does_not_confirm_anything() -> None:
    clock = RtpClock("t")
    clock.observe(sent(0), 0)
    clock.observe(sent(0) + 1, 3000)  # disagrees with the first candidate
    assert clock.origin is None
    clock.observe(sent(6000), 6000)
    assert clock.origin is None  # a candidate needs two agreeing frames in a row
    clock.observe(sent(9000), 9000)
    assert clock.origin == ORIGIN


async def test_aiortc_sender_exposes_the_sent_timestamp() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        sender = pc.addTransceiver("video").sender
        assert sent_rtp_timestamp(sender) == 0  # the attribute exists, nothing sent yet
    finally:
        await pc.close()


def test_without_the_attribute_there_is_no_timestamp() -> None:
    assert sent_rtp_timestamp(object()) is None  # type: ignore[arg-type]
