"""`teleus server` as deployed: its access log names each request's path, never its query string, so a QIDO-RS
search for a patient by name or ID leaves neither in the log."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.conftest import PASSWORD
from tests.waiting import eventually

TELEUS = str(Path(sys.executable).parent / "teleus")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _answers(base: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(base + "/api/v1/config") as r:
            return r.status in (200, 401)
    except aiohttp.ClientError:
        return False


async def test_a_qido_search_by_name_leaves_no_name_in_the_access_log(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEUS_")}
    env.update(TELEUS_DATA_DIR=str(tmp_path), TELEUS_DICOM_PORT="off", TELEUS_QC_SCORING="0")
    made = await asyncio.to_thread(
        subprocess.run,
        [TELEUS, "user", "add", "auditor", "--role", "admin"],  # the password on stdin, never on the command line
        input=PASSWORD + "\n", capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert made.returncode == 0, made.stderr
    port = _free_port()
    server = await asyncio.create_subprocess_exec(
        TELEUS, "server", "--port", str(port), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    search = {"PatientName": "张^三*", "PatientID": "ID-4411-SECRET", "StudyDate": "20250101-"}
    try:
        await eventually(lambda: _answers(base), timeout=120, what="the server to answer")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.post(base + "/api/v1/auth/login", json={"username": "auditor", "password": PASSWORD}) as r:
                assert r.status == 200
            headers = {"Accept": "application/dicom+json"}
            async with http.get(base + "/dicomweb/studies", params=search, headers=headers) as r:
                assert r.status == 200
            async with http.get(base + "/api/v1/studies", params={"q": "ID-4411-SECRET"}) as r:
                assert r.status == 200
    finally:
        server.terminate()
        _, err = await asyncio.wait_for(server.communicate(), 60)
    log = err.decode(errors="replace")
    access = [line for line in log.splitlines() if "aiohttp.access" in line]
    assert any('"GET /dicomweb/studies HTTP/1.1" 200' in line for line in access), log
    assert any('"GET /api/v1/studies HTTP/1.1" 200' in line for line in access), log
    assert not any("?" in line for line in access), access
    for secret in ("ID-4411-SECRET", "张", "%E5%BC%A0", "PatientName"):
        assert secret not in log, secret
