"""Capture requests with the real app: REST → the edge's socket → `capture-status` for the whole room."""

from __future__ import annotations

from typing import Any

from tests.conftest import THYROID_REQUEST
from tests.signaling_server.test_signaling import join, recv_type

LABELS = {"side": "R", "structure": "thyroid right lobe", "plane": "transverse", "mode": "B"}


async def test_a_capture_request_reaches_the_edge_and_its_outcome_reaches_everyone(people: Any) -> None:
    client, world, open_api = people
    sono = await open_api("sono_a")
    _, c = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    cid = c["id"]
    expert = await open_api("expert")
    status, error = await expert.post(f"/api/v1/consultations/{cid}/captures", {"kind": "still"})
    assert status == 403 and error["error"] == "not_participant"  # not the consultation's expert yet

    edge_api = await open_api(bearer=world.device_a_credential)
    edge, _ = await join(edge_api, cid)
    expert_ws, _ = await join(expert, cid)
    sono_ws, _ = await join(sono, cid)

    body = {"kind": "still", "labels": LABELS, "frame_capture_ms": 1_790_000_000_000.5}
    status, accepted = await expert.post(f"/api/v1/consultations/{cid}/captures", body)
    assert status == 202, accepted
    command = await recv_type(edge, "capture")
    assert command["id"] == accepted["id"] and command["labels"] == LABELS
    assert command["frame_capture_ms"] == body["frame_capture_ms"] and command["by_role"] == "expert"
    assert (await recv_type(sono_ws, "capture-status"))["state"] == "requested"

    await edge.send_json(
        {"type": "captured", "id": command["id"], "sop_uid": "1.2.3.4", "frames": 1, "frame_capture_ms": 1.0}
    )
    for ws in (sono_ws, expert_ws):
        status_msg = await recv_type(ws, "capture-status")
        while status_msg["state"] != "captured":
            status_msg = await recv_type(ws, "capture-status")
        assert status_msg["sop_uid"] == "1.2.3.4" and status_msg["id"] == command["id"]

    # The sonographer captures a clip too (the foot switch); a page cannot pretend to be the edge.
    status, clip = await sono.post(f"/api/v1/consultations/{cid}/captures", {"kind": "clip", "seconds": 3})
    assert status == 202
    assert (await recv_type(edge, "capture"))["seconds"] == 3
    await sono_ws.send_json({"type": "captured", "id": clip["id"], "sop_uid": "9.9", "frames": 3})
    assert (await recv_type(sono_ws, "error"))["code"] == "not_allowed"
    await edge.send_json({"type": "capture-failed", "id": clip["id"], "code": "ring_empty", "message": "no frames"})
    failed = await recv_type(expert_ws, "capture-status")
    while failed["state"] != "failed":
        failed = await recv_type(expert_ws, "capture-status")
    assert failed["detail"]["code"] == "ring_empty"

    for bad, field in (
        ({"kind": "movie"}, "kind"),
        ({"kind": "clip", "seconds": 60}, "seconds"),
        ({"kind": "still", "labels": "R"}, "labels"),
        ({"kind": "still", "frame_capture_ms": "now"}, "frame_capture_ms"),
    ):
        status, error = await expert.post(f"/api/v1/consultations/{cid}/captures", bad)
        assert status == 400 and error["error"] == "invalid_request" and field in error["message"], error

    await edge.close()
    await recv_type(expert_ws, "peer-left")
    status, error = await expert.post(f"/api/v1/consultations/{cid}/captures", {"kind": "still"})
    assert status == 409 and error["error"] == "edge_offline"
    for ws in (expert_ws, sono_ws):
        await ws.close()


async def test_observers_and_other_sites_cannot_capture(people: Any) -> None:
    client, world, open_api = people
    sono = await open_api("sono_a")
    _, c = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    cid = c["id"]
    expert = await open_api("expert")
    expert_ws, _ = await join(expert, cid)
    for who in ("trainer", "expert2", "sono_b"):
        api = await open_api(who)
        status, error = await api.post(f"/api/v1/consultations/{cid}/captures", {"kind": "still"})
        assert status in (403, 404), (who, error)
        assert error["error"] in ("forbidden", "not_participant", "not_found")
    await expert_ws.close()
