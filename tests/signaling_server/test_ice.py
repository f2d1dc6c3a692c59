"""TURN credentials and the ICE configuration: the REST API rule as another tool computes it, as the real coturn
accepts it (UDP, TCP, TLS) and refuses it (wrong secret, expired), the settings, and GET /api/v1/config."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aioice import stun, turn

from signaling_server import ice
from signaling_server.appkeys import CLOCK
from signaling_server.settings import Settings
from tests.conftest import Api, make_app, seed
from tests.turnserver import coturn

SECRET = "a-shared-secret-of-some-length"
NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
TURN_URLS = ("turn:turn.example.cn:3478?transport=udp", "turn:turn.example.cn:3478?transport=tcp",
             "turns:turn.example.cn:443?transport=tcp")  # fmt: skip


def test_the_password_is_base64_hmac_sha1_of_the_username_as_openssl_computes_it() -> None:
    cred = ice.mint(SECRET, "device-7", NOW, 3600)
    openssl = subprocess.run(
        ["openssl", "dgst", "-sha1", "-hmac", SECRET, "-binary"], input=cred.username.encode(), capture_output=True,
        check=True,
    )  # fmt: skip
    base64 = subprocess.run(["base64"], input=openssl.stdout, capture_output=True, check=True)
    assert cred.credential == base64.stdout.decode().strip()


def test_the_username_is_the_expiry_then_the_subject() -> None:
    cred = ice.mint(SECRET, "u42", NOW, 4 * 3600)
    expiry, subject = cred.username.split(":")
    assert subject == "u42"
    assert int(expiry) == int(NOW.timestamp()) + 4 * 3600
    assert cred.expires_at == NOW + timedelta(hours=4)
    assert ice.mint(SECRET, "u42", NOW, 60).credential != cred.credential  # another expiry, another password
    assert ice.mint("another secret", "u42", NOW, 4 * 3600).credential != cred.credential


async def _allocate(port: int, username: str, password: str, transport: str, tls: ssl.SSLContext | None = None) -> None:
    """One TURN Allocate against coturn; raises stun.TransactionFailed when refused."""
    relay, _ = await turn.create_turn_endpoint(
        asyncio.DatagramProtocol, ("127.0.0.1", port), username, password, transport=transport, ssl=tls
    )
    relay.close()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "turn.pem", directory / "turn.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_coturn_accepts_a_minted_credential_and_refuses_a_wrong_secret_or_an_expired_one(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    with coturn(tmp_path / "coturn", ["127.0.0.1"], "127.0.0.1", SECRET, tls=(cert, key)) as turn_server:
        port, tls_port = turn_server.port, turn_server.tls_port
        assert tls_port is not None
        now = datetime.now(UTC)
        good = ice.mint(SECRET, "device-7", now, 3600)
        await _allocate(port, good.username, good.credential, "udp")
        await _allocate(port, good.username, good.credential, "tcp")
        trusted = ssl.create_default_context(cafile=str(cert))
        await _allocate(tls_port, good.username, good.credential, "tcp", trusted)  # turns: (TURN over TLS)

        wrong = ice.mint("not the secret", "device-7", now, 3600)
        with pytest.raises(stun.TransactionFailed, match="401"):
            await _allocate(port, wrong.username, wrong.credential, "udp")
        expired = ice.mint(SECRET, "device-7", now - timedelta(hours=2), 3600)  # ended an hour ago
        with pytest.raises(stun.TransactionFailed, match="401"):
            await _allocate(port, expired.username, expired.credential, "udp")


async def test_an_allocation_made_in_time_outlives_its_credential(tmp_path: Path) -> None:
    """Why the lifetime need not cover a call: coturn checks the expiry when an allocation is made, and still
    refreshes the allocation after its credential has expired."""
    with coturn(tmp_path / "coturn", ["127.0.0.1"], "127.0.0.1", SECRET) as turn_server:
        cred = ice.mint(SECRET, "device-7", datetime.now(UTC), 2)
        loop = asyncio.get_running_loop()
        server = ("127.0.0.1", turn_server.port)
        transport, client = await loop.create_datagram_endpoint(
            lambda: turn.TurnClientUdpProtocol(server, username=cred.username, password=cred.credential,
                                               lifetime=600, channel_refresh_time=300),
            remote_addr=server,
        )  # fmt: skip
        try:
            await client.connect()
            # Until the credential has expired (coturn's clock is this machine's).
            await asyncio.sleep((cred.expires_at - datetime.now(UTC)).total_seconds() + 1.5)
            refresh = stun.Message(message_method=stun.Method.REFRESH, message_class=stun.Class.REQUEST)
            refresh.attributes["LIFETIME"] = 600
            response, _ = await client.request_with_retry(refresh)
            assert response.attributes["LIFETIME"] == 600
            with pytest.raises(stun.TransactionFailed, match="401"):  # but it opens no new allocation
                await _allocate(turn_server.port, cred.username, cred.credential, "udp")
        finally:
            if client.refresh_task is not None:
                client.refresh_task.cancel()
            transport.close()


# ---- settings ------------------------------------------------------------------------------------------------


def test_the_secret_comes_from_a_file_and_the_lifetime_defaults_to_four_hours(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "turn.secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o644)
    settings = Settings.from_env({
        "TELEUS_TURN_URLS": ",".join(TURN_URLS), "TELEUS_TURN_SECRET_FILE": str(secret),
        "TELEUS_ICE_RELAY_SITES": "north, hill",
    })  # fmt: skip
    assert settings.turn_secret == SECRET and settings.turn_urls == TURN_URLS
    assert settings.turn_credential_seconds == 4 * 3600
    assert settings.relay_sites == ("north", "hill") and settings.ice_transport_policy == "all"
    assert SECRET not in repr(settings)
    assert "can be read by other accounts" in caplog.text


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TELEUS_TURN_URLS": TURN_URLS[0]}, "TELEUS_TURN_SECRET_FILE"),
        ({"TELEUS_ICE_TRANSPORT_POLICY": "relay"}, "needs a TURN server"),
        ({"TELEUS_ICE_RELAY_SITES": "north"}, "needs a TURN server"),
        ({"TELEUS_ICE_TRANSPORT_POLICY": "turn-only"}, "must be all or relay"),
        ({"TELEUS_TURN_SECRET_FILE": "/nonexistent/turn.secret"}, "cannot read"),
    ],
)
def test_settings_refuse_a_turn_configuration_that_cannot_work(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_an_empty_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        Settings.from_env({"TELEUS_TURN_URLS": TURN_URLS[0], "TELEUS_TURN_SECRET_FILE": str(tmp_path / "empty")})


# ---- GET /api/v1/config ----------------------------------------------------------------------------------------


@pytest.fixture
async def config_of(aiohttp_client: Any, db_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    """`config_of(username | None, bearer=None)` → (status, headers, body) of GET /api/v1/config on a server with
    TURN, a STUN server, and the site `north` relay-only."""
    app = await make_app(
        db_url, tmp_path, ice_servers=("stun:stun.example.cn:3478",), turn_urls=TURN_URLS, turn_secret=SECRET,
        relay_sites=("north",),
    )  # fmt: skip
    app[CLOCK] = lambda: NOW
    client = await aiohttp_client(app)
    world = await seed(app)
    opened: list[Api] = []

    async def get(username: str | None, bearer: str | None = None) -> tuple[int, Any, Any]:
        api = Api(client, bearer)
        opened.append(api)
        if username:
            await api.login(username)
        async with api.session.get(api.base + "/api/v1/config") as r:
            return r.status, r.headers, await r.json()

    get.world = world  # type: ignore[attr-defined]
    yield get
    for api in opened:
        await api.close()


async def test_a_signed_in_page_gets_a_turn_credential_minted_for_its_user(config_of: Any) -> None:
    world = config_of.world
    status, headers, body = await config_of("expert")
    assert status == 200 and headers["Cache-Control"] == "no-store"
    stun_entry, turn_entry = body["ice_servers"]
    assert stun_entry == {"urls": "stun:stun.example.cn:3478"}
    assert turn_entry["urls"] == list(TURN_URLS)
    expiry = int(NOW.timestamp()) + 4 * 3600
    assert turn_entry["username"] == f"{expiry}:{world.users['expert']}"
    assert turn_entry["credential"] == ice.turn_password(SECRET, turn_entry["username"])
    assert datetime.fromisoformat(body["expires_at"]) == NOW + timedelta(hours=4)
    assert body["ice_transport_policy"] == "all"  # an expert belongs to no site


async def test_a_relay_only_sites_sonographer_and_edge_relay_and_other_sites_do_not(config_of: Any) -> None:
    world = config_of.world
    _, _, sono = await config_of("sono_a")
    assert sono["ice_transport_policy"] == "relay"
    _, _, edge = await config_of(None, bearer=world.device_a_credential)
    assert edge["ice_transport_policy"] == "relay"
    assert edge["ice_servers"][1]["username"].endswith(f":{world.device_a}")
    _, _, other_edge = await config_of(None, bearer=world.device_b_credential)
    assert other_edge["ice_transport_policy"] == "all"
    _, _, other_sono = await config_of("sono_b")
    assert other_sono["ice_transport_policy"] == "all"


async def test_nobody_unauthenticated_gets_a_credential(config_of: Any) -> None:
    status, _, body = await config_of(None)
    assert status == 401 and body["error"] == "unauthenticated"


async def test_without_turn_there_is_no_credential(aiohttp_client: Any, sqlite_url: str, tmp_path: Path) -> None:
    app = await make_app(sqlite_url, tmp_path, ice_servers=("stun:stun.example.cn:3478",))
    client = await aiohttp_client(app)
    world = await seed(app)
    async with client.get("/api/v1/config", headers={"Authorization": f"Bearer {world.device_a_credential}"}) as r:
        body = await r.json()
    assert body == {"ice_servers": [{"urls": "stun:stun.example.cn:3478"}], "ice_transport_policy": "all",
                    "expires_at": None}  # fmt: skip
