"""Who may store into which site and read whose studies, through the real STOW-RS and QIDO-RS routes."""

from __future__ import annotations

from pydicom.uid import generate_uid
from sqlalchemy import select

from signaling_server.appkeys import DB
from signaling_server.db.models import Study

from .conftest import Running
from .objects import failure, image, multipart, snapshot, value


async def _site_of(server: Running, study_uid: str) -> str:
    async with server.app[DB]() as db:
        study = await db.scalar(select(Study).where(Study.study_uid == study_uid))
    assert study is not None
    return study.site_id


async def test_storing_is_limited_to_the_callers_site(server: Running) -> None:
    a_study = generate_uid()
    assert (await server.stow(server.device("a"), [image(study_uid=a_study)]))[0] == 200
    before = await snapshot(server.app)

    status, error = await server.stow(server.device("a"), [image()], path="/dicomweb/studies?site=river")
    assert (status, error["error"]) == (403, "forbidden") and "own site" in error["message"]
    status, body = await server.stow(server.device("b"), [image(study_uid=a_study)])  # into site A's study
    assert status == 409 and failure(body["00081198"]["Value"][0]) == (0x0124, "forbidden")
    sono_b = await server.bearer("sono_b")
    status, error = await server.stow(sono_b, [image()], path="/dicomweb/studies?site=north")
    assert (status, error["error"]) == (403, "forbidden")
    status, error = await server.stow(await server.bearer("trainer"), [image()])
    assert (status, error["error"]) == (403, "forbidden")
    status, error = await server.stow(await server.bearer("expert"), [image()])
    assert (status, error["error"]) == (400, "invalid_request") and "?site=" in error["message"]
    status, error = await server.stow(await server.bearer("admin"), [image()], path="/dicomweb/studies?site=nowhere")
    assert (status, error["error"]) == (400, "invalid_request")
    assert await snapshot(server.app) == before

    b_study = generate_uid()
    status, _ = await server.stow(
        await server.bearer("admin"), [image(study_uid=b_study)], "/dicomweb/studies?site=river"
    )
    assert status == 200 and await _site_of(server, b_study) == server.world.site_b
    status, _ = await server.stow(sono_b, [image(study_uid=(mine := generate_uid()))])
    assert status == 200 and await _site_of(server, mine) == server.world.site_b


async def test_a_console_cookie_needs_its_csrf_token(server: Running) -> None:
    api = await server.api("sono_a")
    content_type, body = multipart([image()])
    url = server.base + "/dicomweb/studies"
    async with api.session.post(url, data=body, headers={"Content-Type": content_type}) as response:
        assert response.status == 403 and (await response.json())["error"] == "csrf_failed"
    headers = {"Content-Type": content_type, "X-CSRF-Token": api.csrf or ""}
    async with api.session.post(url, data=body, headers=headers) as response:
        assert response.status == 200


async def test_readers_see_their_own_site_and_the_sites_they_serve(server: Running) -> None:
    a_study, b_study = generate_uid(), generate_uid()
    await server.store(image(study_uid=a_study), site="a")
    await server.store(image(study_uid=b_study), site="b")
    found = {}
    sees_a = {"sono_a": True, "sono_b": False, "expert": True, "trainer": False, "admin": False, "registrar": False}
    for who, sees in sees_a.items():
        session = await server.bearer(who)
        async with session.get(server.base + "/dicomweb/studies") as response:
            assert response.status == 200
            found[who] = {value(s, "0020000D") for s in await response.json(content_type=None)}
        async with session.get(f"{server.base}/dicomweb/studies/{a_study}/metadata") as response:
            assert response.status == (200 if sees else 404), who
        async with session.get(f"{server.base}/dicomweb/studies/{a_study}/series") as response:
            assert response.status == (200 if sees or who == "trainer" else 404), who  # no patient attributes
    assert found["sono_a"] == {a_study} and found["sono_b"] == {b_study}
    assert found["expert"] == {a_study, b_study}  # the seeded expert serves both sites
    # de-identified sight (trainers) and none (admins, registrars without assignment) reach no DICOMweb data
    assert found["trainer"] == found["admin"] == found["registrar"] == set()
    async with server.device("a").get(server.base + "/dicomweb/studies") as response:
        assert response.status == 403 and (await response.json())["error"] == "forbidden"
