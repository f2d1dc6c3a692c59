"""`teleus peer …` and `teleus forward …`: DICOM peers and forward jobs from the command line (README.md).

`cli.py` adds these subcommands with its own database wrapper (`with_db`), so each runs on the configured database
after bringing it to the newest schema, exactly like `teleus site` and `teleus device`. Building the parser imports
nothing of the DICOM stack: every `teleus` command (the edge agent's too) builds the whole parser, and pydicom,
pynetdicom and the models cost over a CPU-second to import; the commands import them when they run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from signaling_server import errors

if TYPE_CHECKING:
    from signaling_server.db.models import DicomPeer
    from signaling_server.dicomstore.peers import Pin

WithDb = Callable[[Callable[[Any], Awaitable[str]]], Callable[[argparse.Namespace], int]]


def add_commands(sub: Any, with_db: WithDb, db_options: Callable[[argparse.ArgumentParser], None]) -> None:
    peer = sub.add_parser("peer", help="DICOM peers (modalities sending by C-STORE)").add_subparsers(
        dest="action", required=True
    )
    p = peer.add_parser("add", help="a new peer of a site")
    p.add_argument("ae_title")
    p.add_argument("--site", required=True, help="site code")
    _peer_options(p, adding=True)
    db_options(p)
    p.set_defaults(func=with_db(_peer_add))
    p = peer.add_parser("set", help="change a peer (the options given; the others stay)")
    p.add_argument("peer", help="AE title or id")
    p.add_argument("--site", help="site code")
    _peer_options(p, adding=False)
    switch = p.add_mutually_exclusive_group()
    switch.add_argument("--enable", dest="enabled", action="store_const", const=True)
    switch.add_argument("--disable", dest="enabled", action="store_const", const=False)
    db_options(p)
    p.set_defaults(func=with_db(_peer_set))
    p = peer.add_parser("disable", help="refuse every association of a peer")
    p.add_argument("peer", help="AE title or id")
    db_options(p)
    p.set_defaults(func=with_db(_peer_disable))
    p = peer.add_parser("list")
    db_options(p)
    p.set_defaults(func=with_db(_peer_list))

    forward = sub.add_parser("forward", help="forwarding to the regional PACS").add_subparsers(
        dest="action", required=True
    )
    p = forward.add_parser("list", help="forward jobs in one state, as JSON lines")
    p.add_argument("--state", default="failed", help="pending, sent or failed (default failed)")
    p.add_argument("--limit", type=int, default=100)
    db_options(p)
    p.set_defaults(func=with_db(_forward_list))
    p = forward.add_parser("requeue", help="failed jobs pending again, due now, attempts 0")
    p.add_argument("job_ids", nargs="*", type=int, help="the jobs to re-queue (or --all-failed)")
    p.add_argument("--all-failed", action="store_true", help="every failed job")
    db_options(p)
    p.set_defaults(func=with_db(_forward_requeue))


def _peer_options(p: argparse.ArgumentParser, *, adding: bool) -> None:
    p.add_argument(
        "--network", action="append", required=adding, metavar="CIDR",
        help="a network the peer may connect from (repeat for more; on `set` the list replaces the old one)",
    )  # fmt: skip
    pin = p.add_mutually_exclusive_group()
    pin.add_argument("--cert", type=Path, help="its TLS client certificate (PEM): pinned by SHA-256")
    pin.add_argument("--cert-sha256", help="the SHA-256 fingerprint of its TLS client certificate")
    if not adding:
        pin.add_argument("--no-cert", action="store_true", help="no longer require a client certificate")
    p.add_argument("--max-dataset-bytes", type=int)
    p.add_argument("--max-associations", type=int)


def _pin(args: argparse.Namespace) -> Pin | None:
    from signaling_server.dicomstore.peers import Pin

    if args.cert:
        try:
            pem = args.cert.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise errors.InvalidDicomPeer("tls_client_certificate", f"cannot read {args.cert}: {exc}") from None
        return Pin.parse(certificate=pem)
    if args.cert_sha256:
        return Pin.parse(sha256=args.cert_sha256)
    return None


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _describe(peer: DicomPeer) -> str:
    certificate = f"certificate {peer.tls_client_sha256}" if peer.tls_client_sha256 else "no certificate"
    state = "enabled" if peer.enabled else "DISABLED"
    return (
        f"{peer.ae_title} ({peer.id}) site {peer.site_id}: {', '.join(peer.networks)}; {certificate}; "
        f"{peer.max_dataset_bytes} bytes, {peer.max_associations} associations; {state}"
    )


async def _peer_add(ctx: Any) -> str:
    from signaling_server import admin
    from signaling_server.dicomstore import peers

    db, args = ctx
    site = await admin.find_site(db, args.site)
    peer = await peers.create_peer(
        db, args.ae_title, site.id, args.network, pin=_pin(args),
        max_dataset_bytes=_or(args.max_dataset_bytes, peers.DEFAULT_MAX_DATASET_BYTES),
        max_associations=_or(args.max_associations, peers.DEFAULT_MAX_ASSOCIATIONS),
    )  # fmt: skip
    return _describe(peer)


async def _peer_set(ctx: Any) -> str:
    from signaling_server import admin
    from signaling_server.dicomstore import peers
    from signaling_server.dicomstore.peers import PeerChanges

    db, args = ctx
    peer = await peers.find_peer(db, args.peer)
    changes = PeerChanges(
        site_id=(await admin.find_site(db, args.site)).id if args.site else None,
        networks=args.network,
        pin=_pin(args),
        unpin=args.no_cert,
        max_dataset_bytes=args.max_dataset_bytes,
        max_associations=args.max_associations,
        enabled=args.enabled,
    )
    return _describe(await peers.update_peer(db, peer.id, changes))


async def _peer_disable(ctx: Any) -> str:
    from signaling_server.dicomstore import peers
    from signaling_server.dicomstore.peers import PeerChanges

    db, args = ctx
    peer = await peers.find_peer(db, args.peer)
    return _describe(await peers.update_peer(db, peer.id, PeerChanges(enabled=False)))


async def _peer_list(ctx: Any) -> str:
    from signaling_server.dicomstore import peers

    db, _ = ctx
    return "\n".join(_describe(p) for p in await peers.list_peers(db)) or "no DICOM peers"


async def _forward_list(ctx: Any) -> str:
    from signaling_server.dicomstore import forward_routes

    db, args = ctx
    jobs = await forward_routes.list_jobs(db, args.state, args.limit)
    return "\n".join(json.dumps(job, ensure_ascii=False) for job in jobs) or f"no {args.state} forward jobs"


async def _forward_requeue(ctx: Any) -> str:
    from signaling_server.dicomstore import forward_routes

    db, args = ctx
    if bool(args.job_ids) == args.all_failed:
        raise errors.InvalidRequest("give the ids of the jobs to re-queue, or --all-failed (not both)")
    requeued = await forward_routes.requeue_jobs(db, None if args.all_failed else args.job_ids)
    return f"re-queued {len(requeued)} forward job(s): {' '.join(map(str, requeued))}".rstrip(": ")
