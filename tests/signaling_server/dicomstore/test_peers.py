"""DICOM peers: the admission rule as a table, the admins' REST API and `teleus peer`, and AE titles shown to admins
only. (The listener applying the rule to real associations is in test_scp.py and test_tls.py.)"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from signaling_server.dicomstore.peers import Knock, PeerPolicy, Refusal, admit

from .certificates import Authority

TELEUS = str(Path(sys.executable).parent / "teleus")
PIN = "ab" * 32


def _policy(**changes: Any) -> PeerPolicy:
    fields: dict[str, Any] = {
        "id": "p1", "ae_title": "NORTH_CR", "site_id": "s1",
        "networks": (ipaddress.ip_network("10.1.2.0/24"), ipaddress.ip_network("2001:db8::/48")),
        "tls_client_sha256": None, "max_dataset_bytes": 1 << 20, "max_associations": 2, "enabled": True,
    }  # fmt: skip
    return PeerPolicy(**{**fields, **changes})


@pytest.mark.parametrize(
    ("knock", "peer", "open_now", "refusal"),
    [
        (Knock("NORTH_CR", "10.1.2.7"), _policy(), 0, None),
        (Knock("NORTH_CR", "::ffff:10.1.2.7"), _policy(), 0, None),  # IPv4 on a dual-stack listener
        (Knock("NORTH_CR", "2001:db8::5"), _policy(), 1, None),
        (Knock("NORTH_CR", "10.1.2.7"), None, 0, Refusal.UNKNOWN_AE),
        (Knock("NORTH_CR", "10.1.2.7"), _policy(enabled=False), 0, Refusal.DISABLED),
        (Knock("NORTH_CR", "10.1.3.7"), _policy(), 0, Refusal.ADDRESS_NOT_ALLOWED),
        (Knock("NORTH_CR", "not an address"), _policy(), 0, Refusal.ADDRESS_NOT_ALLOWED),
        (Knock("NORTH_CR", "10.1.2.7"), _policy(tls_client_sha256=PIN), 0, Refusal.CERTIFICATE_REQUIRED),
        (Knock("NORTH_CR", "10.1.2.7", "cd" * 32), _policy(tls_client_sha256=PIN), 0, Refusal.CERTIFICATE_MISMATCH),
        (Knock("NORTH_CR", "10.1.2.7", PIN), _policy(tls_client_sha256=PIN), 0, None),
        (Knock("NORTH_CR", "10.1.2.7"), _policy(), 2, Refusal.TOO_MANY_ASSOCIATIONS),
        # the first failing check is the one reported: the address before the certificate
        (Knock("NORTH_CR", "10.9.9.9"), _policy(tls_client_sha256=PIN), 0, Refusal.ADDRESS_NOT_ALLOWED),
    ],
)
def test_admission(knock: Knock, peer: PeerPolicy | None, open_now: int, refusal: Refusal | None) -> None:
    assert admit(knock, peer, open_now) is refusal


def test_a_peer_open_to_anywhere_is_noticed() -> None:
    assert _policy(networks=(ipaddress.ip_network("0.0.0.0/0"),)).open_to_anywhere
    assert not _policy().open_to_anywhere


async def test_admins_manage_peers_and_nobody_else_may(people: tuple[TestClient, Any, Any], tmp_path: Path) -> None:
    _, world, open_api = people
    admin, expert, sono = await open_api("admin"), await open_api("expert"), await open_api("sono_b")
    for who in (expert, sono):
        assert (await who.get("/api/v1/dicom-peers"))[0] == 403
        status, error = await who.post("/api/v1/dicom-peers", {"ae_title": "RIVER_US", "site_id": world.site_b,
                                                                "networks": ["10.2.0.0/24"]})  # fmt: skip
        assert (status, error["error"]) == (403, "forbidden")

    certificate = Authority(tmp_path, "district").issue("river-us")
    status, peer = await admin.post(
        "/api/v1/dicom-peers",
        {"ae_title": " RIVER_US ", "site_id": world.site_b, "networks": ["10.2.0.0/24", "10.2.1.7"],
         "tls_client_certificate": certificate.cert.read_text(), "max_dataset_bytes": 1 << 30},
    )  # fmt: skip
    assert status == 201, peer
    assert (peer["ae_title"], peer["site_id"], peer["networks"]) == ("RIVER_US", world.site_b,
                                                                      ["10.2.0.0/24", "10.2.1.7/32"])  # fmt: skip
    assert peer["tls_client_sha256"] == certificate.sha256 and "CN=river-us" in peer["tls_client_subject"]
    assert (peer["max_dataset_bytes"], peer["max_associations"], peer["enabled"]) == (1 << 30, 4, True)
    for who in (expert, sono):
        assert (await who.post(f"/api/v1/dicom-peers/{peer['id']}/disable"))[0] == 403

    status, changed = await admin.post(f"/api/v1/dicom-peers/{peer['id']}",
                                       {"networks": ["10.2.2.0/24"], "tls_client_certificate": None})  # fmt: skip
    assert status == 200 and changed["networks"] == ["10.2.2.0/24"] and changed["tls_client_sha256"] is None
    assert changed["max_dataset_bytes"] == 1 << 30  # left as it was
    status, changed = await admin.post(f"/api/v1/dicom-peers/{peer['id']}", {"tls_client_sha256": "CD:" * 31 + "CD"})
    assert status == 200 and changed["tls_client_sha256"] == "cd" * 32 and changed["tls_client_subject"] is None
    assert (await admin.post(f"/api/v1/dicom-peers/{peer['id']}/disable"))[1]["enabled"] is False
    assert (await admin.post(f"/api/v1/dicom-peers/{peer['id']}/enable"))[1]["enabled"] is True
    status, listed = await admin.get("/api/v1/dicom-peers")
    assert [p["ae_title"] for p in listed["peers"]] == ["NORTH_CR", "RIVER_US"]
    assert (await admin.get(f"/api/v1/dicom-peers/{peer['id']}"))[1] == (await admin.get("/api/v1/dicom-peers"))[1][
        "peers"
    ][1]


BAD_PEERS = [
    ({"ae_title": "BAD\\AE"}, "ae_title"),
    ({"ae_title": "WAY_TOO_LONG_AE_TITLE"}, "ae_title"),
    ({"networks": []}, "networks"),
    ({"networks": "10.0.0.0/8"}, "networks"),
    ({"networks": ["10.1.2.3/24"]}, "networks"),  # host bits set: a typo, most likely
    ({"networks": ["north"]}, "networks"),
    ({"site_id": "nowhere"}, "site_id"),
    ({"tls_client_certificate": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"},
     "tls_client_certificate"),
    ({"tls_client_sha256": "abc"}, "tls_client_sha256"),
    ({"max_dataset_bytes": 0}, "max_dataset_bytes"),
    ({"max_dataset_bytes": "1GB"}, "max_dataset_bytes"),
    ({"max_associations": 1000}, "max_associations"),
    ({"enabled": "yes"}, "enabled"),
]  # fmt: skip


async def test_a_bad_peer_is_refused_with_the_field_and_nothing_is_stored(
    people: tuple[TestClient, Any, Any],
) -> None:
    _, world, open_api = people
    admin = await open_api("admin")
    good = {"ae_title": "RIVER_US", "site_id": world.site_b, "networks": ["10.2.0.0/24"]}
    for body, field in BAD_PEERS:
        status, error = await admin.post("/api/v1/dicom-peers", {**good, **body})
        assert (status, error["error"], error.get("field")) == (400, "invalid_dicom_peer", field), (body, error)
    assert [p["ae_title"] for p in (await admin.get("/api/v1/dicom-peers"))[1]["peers"]] == ["NORTH_CR"]


async def test_duplicates_and_unknown_peers(people: tuple[TestClient, Any, Any]) -> None:
    _, world, open_api = people
    admin = await open_api("admin")
    status, error = await admin.post("/api/v1/dicom-peers", {"ae_title": "NORTH_CR", "site_id": world.site_b,
                                                             "networks": ["10.2.0.0/24"]})  # fmt: skip
    assert (status, error["error"]) == (409, "conflict")
    assert (await admin.post("/api/v1/dicom-peers/nope/disable"))[1]["error"] == "not_found"
    [north] = (await admin.get("/api/v1/dicom-peers"))[1]["peers"]
    status, error = await admin.post(f"/api/v1/dicom-peers/{north['id']}", {"ae_title": "OTHER"})
    assert (status, error["field"]) == (400, "ae_title")


async def test_only_admins_see_the_sites_ae_titles(people: tuple[TestClient, Any, Any]) -> None:
    """The finding: every signed-in user could list every site's AE title, and pose as that site with it."""
    _, world, open_api = people
    for username in ("sono_a", "sono_b", "expert", "trainer"):
        status, data = await (await open_api(username)).get("/api/v1/sites")
        assert status == 200 and len(data["sites"]) == 2
        assert all("ae_title" not in s and "ae_titles" not in s for s in data["sites"]), data
        assert "NORTH_CR" not in str(data)
    status, data = await (await open_api("admin")).get("/api/v1/sites")
    assert {s["code"]: s["ae_titles"] for s in data["sites"]} == {"north": ["NORTH_CR"], "river": []}


def _teleus(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEUS_")}
    return subprocess.run([TELEUS, *argv], capture_output=True, text=True, env=env, timeout=120, check=False)


def test_teleus_peer_commands(tmp_path: Path) -> None:
    (folder := tmp_path / "data").mkdir()
    data = ["--data-dir", str(folder)]
    certificate = Authority(tmp_path, "district").issue("north-cr")
    assert _teleus("site", "add", "north", "North", *data).returncode == 0
    added = _teleus("peer", "add", "NORTH_CR", "--site", "north", "--network", "10.1.2.0/24",
                    "--cert", str(certificate.cert), *data)  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "NORTH_CR (" in added.stdout and f"certificate {certificate.sha256}" in added.stdout
    changed = _teleus("peer", "set", "NORTH_CR", "--network", "10.1.3.0/24", "--network", "10.1.4.0/24",
                      "--no-cert", "--max-dataset-bytes", "1000000", *data)  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert "10.1.3.0/24, 10.1.4.0/24; no certificate; 1000000 bytes, 4 associations; enabled" in changed.stdout
    assert "DISABLED" in _teleus("peer", "disable", "NORTH_CR", *data).stdout
    assert "DISABLED" in _teleus("peer", "list", *data).stdout
    refused = _teleus("peer", "add", "RIVER_CR", "--site", "north", "--network", "10.1.2.3/24", *data)
    assert refused.returncode == 1 and refused.stderr.startswith("error: invalid_dicom_peer: networks: ")
