"""DICOM peers over REST, for admins (DICOMWEB.md §DICOM peers): list, create, read, change, disable, enable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from signaling_server import errors
from signaling_server.api import body
from signaling_server.api.representations import iso
from signaling_server.appkeys import DB
from signaling_server.auth.identity import caller
from signaling_server.db.models import DicomPeer
from signaling_server.dicomstore import peers
from signaling_server.dicomstore.peers import PeerChanges, Pin

routes = web.RouteTableDef()

_CERTIFICATE_CHARS = 16_000


def peer_json(peer: DicomPeer) -> dict[str, Any]:
    return {
        "id": peer.id,
        "ae_title": peer.ae_title,
        "site_id": peer.site_id,
        "networks": list(peer.networks),
        "tls_client_sha256": peer.tls_client_sha256,
        "tls_client_subject": peer.tls_client_subject,
        "max_dataset_bytes": peer.max_dataset_bytes,
        "max_associations": peer.max_associations,
        "enabled": peer.enabled,
        "created_at": iso(peer.created_at),
    }


@routes.get("/api/v1/dicom-peers")
async def list_peers(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    async with request.app[DB]() as db:
        found = await peers.list_peers(db)
    return web.json_response({"peers": [peer_json(p) for p in found]})


@routes.post("/api/v1/dicom-peers")
async def create_peer(request: web.Request) -> web.Response:
    """`{"ae_title", "site_id", "networks": [CIDR], "tls_client_certificate"? (PEM) | "tls_client_sha256"?,
    "max_dataset_bytes"?, "max_associations"?, "enabled"?}` → 201 Peer."""
    (await caller(request)).require_user("admin")
    data = await body.json_body(request)
    changes = _changes(data)
    async with request.app[DB]() as db:
        peer = await peers.create_peer(
            db,
            _string(data, "ae_title", 64),
            _string(data, "site_id", 32),
            _networks(data) or [],
            pin=changes.pin,
            max_dataset_bytes=_or(changes.max_dataset_bytes, peers.DEFAULT_MAX_DATASET_BYTES),
            max_associations=_or(changes.max_associations, peers.DEFAULT_MAX_ASSOCIATIONS),
            enabled=changes.enabled is not False,
        )
    return web.json_response(peer_json(peer), status=201)


@routes.get("/api/v1/dicom-peers/{id}")
async def get_peer(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    async with request.app[DB]() as db:
        peer = await _by_id(db, request.match_info["id"])
    return web.json_response(peer_json(peer))


@routes.post("/api/v1/dicom-peers/{id}")
async def change_peer(request: web.Request) -> web.Response:
    """Any of the create fields but the AE title; those left out stay; a null certificate unpins it → Peer."""
    (await caller(request)).require_user("admin")
    data = await body.json_body(request)
    if "ae_title" in data:
        raise errors.InvalidDicomPeer("ae_title", "an AE title cannot change: create a new peer and disable this one")
    changes = _changes(data)
    async with request.app[DB]() as db:
        peer = await peers.update_peer(db, (await _by_id(db, request.match_info["id"])).id, changes)
    return web.json_response(peer_json(peer))


@routes.post("/api/v1/dicom-peers/{id}/disable")
async def disable_peer(request: web.Request) -> web.Response:
    return await _set_enabled(request, False)


@routes.post("/api/v1/dicom-peers/{id}/enable")
async def enable_peer(request: web.Request) -> web.Response:
    return await _set_enabled(request, True)


async def _set_enabled(request: web.Request, enabled: bool) -> web.Response:
    (await caller(request)).require_user("admin")
    async with request.app[DB]() as db:
        peer = await _by_id(db, request.match_info["id"])
        peer = await peers.update_peer(db, peer.id, PeerChanges(enabled=enabled))
    return web.json_response(peer_json(peer))


async def _by_id(db: Any, peer_id: str) -> DicomPeer:
    peer = await db.get(DicomPeer, peer_id)
    if peer is None:
        raise errors.NotFound("no such DICOM peer")
    assert isinstance(peer, DicomPeer)
    return peer


def _changes(data: dict[str, Any]) -> PeerChanges:
    unpin = False
    pin: Pin | None = None
    for key in ("tls_client_certificate", "tls_client_sha256"):
        if key in data and data[key] is None:
            unpin = True
        elif key in data:
            pin = Pin.parse(**{key.removeprefix("tls_client_"): _string(data, key, _CERTIFICATE_CHARS)})
    return PeerChanges(
        site_id=_string(data, "site_id", 32) if data.get("site_id") is not None else None,
        networks=_networks(data),
        pin=pin,
        unpin=unpin and pin is None,
        max_dataset_bytes=_integer(data, "max_dataset_bytes"),
        max_associations=_integer(data, "max_associations"),
        enabled=_boolean(data, "enabled"),
    )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _networks(data: dict[str, Any]) -> Sequence[str] | None:
    value = data.get("networks")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise errors.InvalidDicomPeer("networks", 'give a list of CIDR networks, e.g. ["10.1.2.0/24"]')
    return value


def _string(data: dict[str, Any], key: str, max_len: int) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise errors.InvalidDicomPeer(key, f"must be a non-empty string of at most {max_len} characters")
    return value


def _integer(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise errors.InvalidDicomPeer(key, "must be a whole number")
    return value


def _boolean(data: dict[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise errors.InvalidDicomPeer(key, "must be true or false")
    return value
