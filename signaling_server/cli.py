"""The `teleus` command: server, edge, demo, database and administration."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from signaling_server import errors
from signaling_server.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    changes: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        changes["data_dir"] = Path(args.data_dir)
    if getattr(args, "database_url", None):
        changes["database_url"] = args.database_url
    if getattr(args, "host", None):
        changes["host"] = args.host
    if getattr(args, "port", None):
        changes["port"] = args.port
    if getattr(args, "tls_cert", None):
        changes.update(tls_cert=args.tls_cert, tls_key=args.tls_key or "", cookie_secure=True)
    return settings.with_overrides(**changes)


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from signaling_server.app import create_app

    settings = _settings(args)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ssl_context=settings.ssl_context(),
        print=lambda *_: None,
    )
    return 0


def _qc(args: argparse.Namespace) -> int:
    from recordings.cli import run

    return run(args)


def _db_upgrade(args: argparse.Namespace) -> int:
    from signaling_server.db.migrate import upgrade_sync

    url = _settings(args).effective_database_url
    upgrade_sync(url)
    print(f"database at the newest schema: {url}")
    return 0


def _with_db(action: Callable[[Any], Awaitable[str]]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from signaling_server.db.engine import make_engine, make_sessionmaker
        from signaling_server.db.migrate import upgrade

        async def main() -> str:
            url = _settings(args).effective_database_url
            await upgrade(url)
            engine = make_engine(url)
            try:
                async with make_sessionmaker(engine)() as db:
                    return await action((db, args))
            finally:
                await engine.dispose()

        try:
            print(asyncio.run(main()))
        except errors.TeleusError as exc:
            print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
            return 1
        return 0

    return run


async def _site_add(ctx: Any) -> str:
    from signaling_server import admin

    db, args = ctx
    site = await admin.create_site(db, args.code, args.name, args.ae_title)
    return f"site {site.code} ({site.id})"


async def _user_add(ctx: Any) -> str:
    from signaling_server import admin

    db, args = ctx
    site_id = (await admin.find_site(db, args.site)).id if args.site else None
    user = await admin.create_user(db, args.username, args.name or args.username, args.role, args.password, site_id)
    return f"user {user.username} ({user.role}, {user.id})"


async def _user_assign(ctx: Any) -> str:
    from datetime import UTC, datetime

    from sqlalchemy import select

    from signaling_server import admin, errors
    from signaling_server.access import assignments
    from signaling_server.db.models import User

    db, args = ctx
    site = await admin.find_site(db, args.site)
    user = (await db.scalars(select(User).where(User.username == args.username))).first()
    if user is None:
        raise errors.NotFound(f"no user {args.username!r}")
    made = await assignments.assign(db, user.id, site.id, by=None, at=datetime.now(UTC))
    await db.commit()
    return f"user {user.username} {'now serves' if made else 'already serves'} site {site.code}"


async def _device_add(ctx: Any) -> str:
    from signaling_server import admin

    db, args = ctx
    site = await admin.find_site(db, args.site)
    device, credential = await admin.register_device(db, site.id, args.name)
    return f"device {device.id} at {site.code}\ncredential (shown once): {credential}"


async def _device_rotate(ctx: Any) -> str:
    from signaling_server import admin

    db, args = ctx
    device, credential = await admin.rotate_device(db, args.device_id)
    return f"device {device.id}\nnew credential (shown once): {credential}"


async def _device_revoke(ctx: Any) -> str:
    from signaling_server import admin

    db, args = ctx
    device = await admin.revoke_device(db, args.device_id)
    return f"device {device.id} revoked"


def _teaching_export(args: argparse.Namespace) -> int:
    import json

    from recordings.errors import RecordingsError
    from recordings.teaching import export_path

    try:
        manifest = export_path(Path(args.path), Path(args.output))
    except RecordingsError as exc:
        print(json.dumps(exc.as_json(), ensure_ascii=False))
        return 2
    except OSError as exc:
        print(json.dumps({"error": "unreadable", "message": str(exc)}, ensure_ascii=False))
        return 2
    print(json.dumps(manifest.to_dict(), ensure_ascii=False, indent=2))
    return 0


def _edge(args: argparse.Namespace) -> int:
    """Become the edge agent: `python -m edge_capture` with the same options, in this process's place (same pid,
    signals and exit status). The server's code imports nothing of the edge (docs/ARCHITECTURE.md)."""
    argv = [sys.executable, "-m", "edge_capture", *(["--verbose"] if args.verbose else []), *args.edge_args]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


def _demo(args: argparse.Namespace) -> int:
    from signaling_server.demo import run

    return run(args)


def _db_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="folder for the SQLite file and stored objects (TELEUS_DATA_DIR)")
    p.add_argument("--database-url", help="SQLAlchemy URL, e.g. postgresql+asyncpg://… (TELEUS_DATABASE_URL)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="teleus", description="tele-ultrasound live consultation")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("server", help="run the central server")
    _db_options(p)
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--tls-cert", help="PEM certificate (chain): serve HTTPS and WSS directly (TELEUS_TLS_CERT)")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert (TELEUS_TLS_KEY)")
    p.set_defaults(func=_serve)

    # Every option after `edge` is the edge's own (`teleus edge --help` lists them): passed on untouched.
    p = sub.add_parser("edge", help="run the edge capture agent at a clinic", add_help=False)
    p.set_defaults(func=_edge, edge_args=[])

    p = sub.add_parser("demo", help="server + simulated edge on the embedded defaults")
    p.add_argument("--port", type=int, default=8600)
    p.add_argument("--data-dir", default="data/demo")
    p.set_defaults(func=_demo)

    p = sub.add_parser("qc", help="quality control: score a recording folder, an MP4 or a DICOM file")
    from recordings.cli import add_arguments as add_qc_arguments

    add_qc_arguments(p)
    p.set_defaults(func=_qc)

    p = sub.add_parser("teaching-export", help="de-identified copy of a recording folder or a DICOM image")
    p.add_argument("path", help="a recording folder (media.mp4 + timeline.jsonl, …) or a DICOM file")
    p.add_argument("-o", "--output", required=True, help="a new or empty folder (recording), a file or folder (DICOM)")
    p.set_defaults(func=_teaching_export)

    p = sub.add_parser("db", help="database schema")
    p.add_argument("action", choices=["upgrade"])
    _db_options(p)
    p.set_defaults(func=_db_upgrade)

    site = sub.add_parser("site", help="community centres").add_subparsers(dest="action", required=True)
    p = site.add_parser("add")
    p.add_argument("code")
    p.add_argument("name")
    p.add_argument("--ae-title")
    _db_options(p)
    p.set_defaults(func=_with_db(_site_add))

    user = sub.add_parser("user", help="people").add_subparsers(dest="action", required=True)
    p = user.add_parser("add")
    p.add_argument("username")
    p.add_argument("--name")
    p.add_argument("--role", required=True, choices=["sonographer", "expert", "trainer", "admin", "registrar"])
    p.add_argument("--site", help="site code (sonographers)")
    p.add_argument("--password", required=True)
    _db_options(p)
    p.set_defaults(func=_with_db(_user_add))

    p = user.add_parser("assign", help="the user (expert, admin, registrar) serves the site: sees its patients")
    p.add_argument("username")
    p.add_argument("--site", required=True, help="site code")
    _db_options(p)
    p.set_defaults(func=_with_db(_user_assign))

    device = sub.add_parser("device", help="edge devices").add_subparsers(dest="action", required=True)
    p = device.add_parser("add")
    p.add_argument("--site", required=True, help="site code")
    p.add_argument("name")
    _db_options(p)
    p.set_defaults(func=_with_db(_device_add))
    for name, func in (("rotate", _device_rotate), ("revoke", _device_revoke)):
        p = device.add_parser(name)
        p.add_argument("device_id")
        _db_options(p)
        p.set_defaults(func=_with_db(func))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command == "edge":
        args.edge_args = unknown
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
