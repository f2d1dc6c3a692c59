"""Least privilege by default (docs/SECURITY.md §2): experts see the sites they serve, trainers see de-identified
data unless granted, admins administer without browsing patients, devices read only what they stream and upload."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import THYROID_REQUEST, Api
from tests.signaling_server.dicomstore.objects import image
from tests.signaling_server.test_signaling import join

from .conftest import NEW_PASSWORD, T0, District


async def live_at(district: District, site: str) -> tuple[str, str]:
    """A consultation made live by the seeded expert at a site, and its recording made by the site's device."""
    sono = await district.api("sono_a" if site == "a" else "sono_b")
    _, consultation = await sono.post("/api/v1/consultations", THYROID_REQUEST)
    ws, welcome = await join(await district.api("expert"), consultation["id"])
    assert welcome["consultation"]["state"] == "live"
    await ws.close()
    credential = district.world.device_a_credential if site == "a" else district.world.device_b_credential
    status, recording = await (await district.api(bearer=credential)).post(
        "/api/v1/recordings", {"consultation_id": consultation["id"]}
    )
    assert status == 201, recording
    return str(consultation["id"]), str(recording["id"])


async def statuses(api: Api, paths: list[str]) -> list[int]:
    return [(await api.get(path))[0] for path in paths]


async def test_an_expert_sees_only_the_sites_they_serve(district: District) -> None:
    study = await district.store(image(patient_id="R-1", name="Chen^Jing"), site="b")
    cid, rid = await live_at(district, "b")
    expert_id = await district.new_user("river_reader", "expert")
    expert = await district.api("river_reader", password=NEW_PASSWORD)
    paths = [f"/api/v1/studies/{study.study_id}", f"/api/v1/consultations/{cid}", f"/api/v1/recordings/{rid}",
             f"/api/v1/patients/{study.patient_id}", f"/api/v1/consultations/{cid}/chat"]  # fmt: skip
    assert await statuses(expert, paths) == [404] * 5
    for path, key in (("/api/v1/studies", "studies"), ("/api/v1/consultations?state=live", "consultations"),
                      ("/api/v1/recordings", "recordings")):  # fmt: skip
        assert (await expert.get(path))[1][key] == [], path

    admin = await district.api("admin")
    for who in ("expert", "sono_b"):  # only an admin assigns
        status, error = await (await district.api(who)).post(f"/api/v1/users/{expert_id}/sites", {"site_id": "x"})
        assert (status, error["error"]) == (403, "forbidden")
    status, error = await admin.post(f"/api/v1/users/{district.world.users['trainer']}/sites",
                                     {"site_id": district.world.site_b})  # fmt: skip
    assert (status, error["error"]) == (400, "invalid_request") and "de-identified" in error["message"]
    path = f"/api/v1/users/{expert_id}/sites"
    assert (await admin.post(path, {"site_id": "nowhere"}))[1]["error"] == "invalid_request"
    status, assigned = await admin.post(path, {"site_id": district.world.site_b})
    assert status == 201 and [a["site_id"] for a in assigned["assignments"]] == [district.world.site_b]
    assert (await admin.post(path, {"site_id": district.world.site_b}))[0] == 200  # already so
    assert await statuses(expert, paths) == [200] * 5
    _, queue = await expert.get("/api/v1/studies")
    assert [s["id"] for s in queue["studies"]] == [study.study_id]

    async with admin.session.delete(f"{admin.base}{path}/{district.world.site_b}",
                                    headers={"X-CSRF-Token": admin.csrf or ""}) as response:  # fmt: skip
        assert response.status == 204
    assert await statuses(expert, paths) == [404] * 5


async def test_a_trainer_sees_de_identified_data_unless_granted(district: District) -> None:
    stored = await district.store(image(patient_id="N-3", name="Wang^Fang", birth_date="19800202"))
    await district.store(image(patient_id="N-3", name="Wang^Fang", birth_date="19800202"))  # a prior
    cid, rid = await live_at(district, "a")
    trainer = await district.api("trainer")

    _, queue = await trainer.get("/api/v1/studies")
    row = next(s for s in queue["studies"] if s["id"] == stored.study_id)
    assert row["patient"] == {"id": None, "local_id": "", "name": "", "deidentified": True} and row["accession"] == ""
    status, page = await trainer.get(f"/api/v1/studies/{stored.study_id}")
    assert status == 200 and page["patient"]["name"] == "" and page["priors"] == []
    assert "Wang" not in str(queue) + str(page) and "N-3" not in str(queue) + str(page)
    assert (await trainer.get(f"/api/v1/patients/{stored.patient_id}"))[0] == 404
    for path in ("/metadata", ""):  # the identified objects and their attributes: no
        async with trainer.session.get(f"{trainer.base}/dicomweb/studies/{stored.study_uid}{path}") as response:
            assert response.status == 404, path
    async with trainer.session.get(f"{trainer.base}/dicomweb/studies") as response:
        assert await response.json(content_type=None) == []
    instance = f"/dicomweb/studies/{stored.study_uid}/series/{stored.series_uid}/instances/{stored.sop_uid}"
    async with trainer.session.get(f"{trainer.base}{instance}/rendered") as response:
        assert response.status == 200 and response.content_type == "image/jpeg"  # pixels, for the review page
    async with trainer.session.get(f"{trainer.base}/dicomweb/studies/{stored.study_uid}/instances") as response:
        found = await response.json(content_type=None)
        assert response.status == 200 and "00100010" not in found[0] and "00100020" not in found[0]
    status, recording = await trainer.get(f"/api/v1/recordings/{rid}")  # a session's recording holds no patient data
    assert status == 200 and "patient" not in recording and recording["study_uid"]
    assert (await trainer.get(f"/api/v1/consultations/{cid}"))[0] == 404  # the live view is identified

    status, _ = await (await district.api("registrar")).post("/api/v1/grants", {
        "kind": "referral", "grantee": {"user_id": district.world.users["trainer"]},
        "objects": [{"kind": "study", "id": stored.study_id}],
        "valid_until": (T0 + timedelta(days=7)).isoformat(), "reason": "case conference",
    })  # fmt: skip
    assert status == 201
    status, page = await trainer.get(f"/api/v1/studies/{stored.study_id}")
    assert page["patient"]["name"] == "Wang^Fang" and page["patient"]["local_id"] == "N-3"


async def test_a_device_reads_nothing_but_what_it_streams_and_uploads(district: District) -> None:
    stored = await district.store(image(patient_id="N-3"))
    cid, rid = await live_at(district, "a")
    edge = await district.api(bearer=district.world.device_a_credential)
    status, error = await edge.get(f"/api/v1/consultations/{cid}/chat")
    assert (status, error["error"]) == (403, "forbidden") and "chat" in error["message"]
    for path in ("/api/v1/studies", f"/api/v1/studies/{stored.study_id}", f"/api/v1/studies/{stored.study_id}/reports",
                 "/api/v1/findings", f"/api/v1/patients/{stored.patient_id}", "/api/v1/recordings"):  # fmt: skip
        status, error = await edge.get(path)
        assert (status, error["error"]) == (403, "forbidden"), path
    async with edge.session.get(f"{edge.base}/dicomweb/studies/{stored.study_uid}/series") as response:
        assert response.status == 403
    for path in (f"/api/v1/recordings/{rid}/media", f"/api/v1/recordings/{rid}/timeline",
                 f"/api/v1/recordings/{rid}/qc", f"/api/v1/recordings/{rid}/reviews"):  # fmt: skip
        assert (await edge.get(path))[0] in (403, 404), path
    # what it needs: its consultations (to stream), its recording's upload state (to resume)
    _, mine = await edge.get("/api/v1/devices/me/consultations")
    assert [c["id"] for c in mine["consultations"]] == [cid]
    assert (await edge.get(f"/api/v1/recordings/{rid}"))[0] == 200
    assert (await edge.get(f"/api/v1/recordings/{rid}/files/media.mp4"))[0] == 200


async def test_an_admin_administers_without_browsing_patients(district: District) -> None:
    stored = await district.store(image(patient_id="N-3", name="Wang^Fang"))
    cid, rid = await live_at(district, "a")
    admin = await district.api("admin")
    paths = [f"/api/v1/studies/{stored.study_id}", f"/api/v1/consultations/{cid}", f"/api/v1/recordings/{rid}",
             f"/api/v1/patients/{stored.patient_id}", f"/api/v1/consultations/{cid}/chat"]  # fmt: skip
    assert await statuses(admin, paths) == [404] * 5
    _, queue = await admin.get("/api/v1/studies")
    assert queue["studies"] == [] and queue["counts"] == {"open": 0, "overdue": 0}
    assert (await admin.get("/api/v1/users"))[0] == 200  # administration stays
    _, assigned = await admin.get("/api/v1/assignments")
    assert {(a["user_id"], a["site_id"]) for a in assigned["assignments"]} == {
        (district.world.users[e], district.site(s)) for e in ("expert", "expert2") for s in ("a", "b")
    }
    status, error = await admin.post("/api/v1/studies", {
        "site_id": district.world.site_a, "patient": {"id": "N-9", "name": "X", "birth_date": "1990-01-01"},
        "accession": "A9", "modality": "CR",
    })  # fmt: skip
    assert (status, error["error"]) == (403, "forbidden")  # orders only for the sites an admin serves
    registrar = await district.api("registrar")
    status, person = await registrar.get(f"/api/v1/patients/{stored.patient_id}")  # the regional index, in full
    assert status == 200 and person["name"] == "Wang^Fang"
    _, studies = await registrar.get(f"/api/v1/patients/{stored.patient_id}/studies")
    assert studies["studies"] == []  # but not the person's studies


