"""Consultations over REST: who requests, who sees what, the state machine's refusals."""

from __future__ import annotations

from typing import Any

from tests.conftest import THYROID_REQUEST


async def test_sonographer_requests_and_sees_only_their_site(people: Any) -> None:
    _, world, open_api = people
    sono_a, sono_b, expert = await open_api("sono_a"), await open_api("sono_b"), await open_api("expert")
    status, c = await sono_a.post("/api/v1/consultations", THYROID_REQUEST)
    assert status == 201
    assert c["state"] == "requested" and c["device_id"] == world.device_a and c["site"]["code"] == "north"
    assert c["patient"]["name"] == "张^三" and c["requested_by"]["name"] == "Sono A"
    status, listed = await sono_b.get("/api/v1/consultations")
    assert listed["consultations"] == []
    status, err = await sono_b.get(f"/api/v1/consultations/{c['id']}")
    assert (status, err["error"]) == (404, "not_found")
    status, listed = await expert.get("/api/v1/consultations?state=requested,live")
    assert [x["id"] for x in listed["consultations"]] == [c["id"]]
    assert listed["consultations"][0]["waiting_seconds"] >= 0
    device = await open_api(bearer=world.device_a_credential)
    status, mine = await device.get("/api/v1/devices/me/consultations")
    assert [x["id"] for x in mine["consultations"]] == [c["id"]]
    device_b = await open_api(bearer=world.device_b_credential)
    assert (await device_b.get("/api/v1/devices/me/consultations"))[1]["consultations"] == []


async def test_request_validation(people: Any) -> None:
    _, _, open_api = people
    sono, expert = await open_api("sono_a"), await open_api("expert")
    bad = [
        ({**THYROID_REQUEST, "exam_type": "knee"}, "exam_type"),
        ({**THYROID_REQUEST, "patient": {"id": "", "name": "A"}}, "'id'"),
        ({**THYROID_REQUEST, "patient": {**THYROID_REQUEST["patient"], "birth_date": "1970-13-40"}}, "birth_date"),
        ({**THYROID_REQUEST, "patient": {**THYROID_REQUEST["patient"], "sex": "X"}}, "sex"),
        ({**THYROID_REQUEST, "patient": "P1"}, "patient"),
    ]
    for body, word in bad:
        status, err = await sono.post("/api/v1/consultations", body)
        assert (status, err["error"]) == (400, "invalid_request") and word in err["message"], err
    status, err = await expert.post("/api/v1/consultations", THYROID_REQUEST)
    assert (status, err["error"]) == (403, "forbidden")
    status, err = await expert.get("/api/v1/consultations?state=bogus")
    assert (status, err["error"]) == (400, "invalid_request")


async def test_state_machine_refuses_illegal_moves(people: Any) -> None:
    _, _, open_api = people
    sono, expert = await open_api("sono_a"), await open_api("expert")
    _, c = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    status, err = await sono.post(f"/api/v1/consultations/{c['id']}/end")
    assert (status, err["error"]) == (409, "invalid_transition")
    assert err["message"] == "a consultation that is requested cannot become ended"
    status, done = await sono.post(f"/api/v1/consultations/{c['id']}/cancel")
    assert status == 200 and done["state"] == "cancelled" and done["ended_at"]
    status, err = await sono.post(f"/api/v1/consultations/{c['id']}/cancel")
    assert (status, err["error"]) == (409, "invalid_transition")
    other = await open_api("sono_a2")
    _, c2 = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    status, err = await other.post(f"/api/v1/consultations/{c2['id']}/cancel")
    assert (status, err["error"]) == (403, "not_participant")
    status, err = await expert.post(f"/api/v1/consultations/{c2['id']}/end")
    assert (status, err["error"]) == (403, "not_participant")
