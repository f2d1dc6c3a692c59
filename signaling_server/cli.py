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
    from signaling_server.audit.access_log import AccessLogger

    os.umask(0o077)  # besides the explicit modes (docs/SECURITY.md §9): whatever else the server writes is private
    web.run_app(
        create_app(settings),
        access_log_class=AccessLogger,  # no query strings: a QIDO's carry patient names
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
    site = await admin.create_site(db, args.code, args.name, args.kind)
    return f"site {site.code} ({site.id})"


def _read_password(args: argparse.Namespace) -> str:
    """A password from --password-file (its first line), else from standard input when it is not a terminal
    (its first line), else typed twice at a prompt. Never from the command line: argv is readable by every user
    of the machine (ps, /proc) and stays in shell histories."""
    import getpass

    if args.password_file:
        try:
            text = Path(args.password_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise errors.InvalidRequest(f"cannot read the password file: {exc}") from None
        password = text.splitlines()[0].strip() if text else ""
    elif not sys.stdin.isatty():
        password = sys.stdin.readline().strip()
    else:
        password = getpass.getpass("password: ").strip()
        if getpass.getpass("password again: ").strip() != password:
            raise errors.InvalidRequest("the two passwords differ")
    if not password:
        raise errors.InvalidRequest("no password given")
    return password


async def _user_add(ctx: Any) -> str:
    from signaling_server import admin

    db, args = ctx
    site_id = (await admin.find_site(db, args.site)).id if args.site else None
    password = _read_password(args)
    user = await admin.create_user(
        db, args.username, args.name or args.username, args.role, password, site_id, must_change_password=args.temporary
    )
    return f"user {user.username} ({user.role}, {user.id})"


async def _user_list(ctx: Any) -> str:
    from sqlalchemy import select

    from signaling_server.db.models import Site, User

    db, _ = ctx
    sites = {s.id: s.code for s in (await db.scalars(select(Site))).all()}
    lines = []
    for u in (await db.scalars(select(User).order_by(User.username))).all():
        flags = [f for f, on in (("disabled", not u.active), ("must-change", u.must_change_password),
                                 ("totp", u.totp_secret is not None)) if on]  # fmt: skip
        lines.append(f"{u.username}\t{u.role}\t{sites.get(u.site_id or '', '-')}\t{','.join(flags) or '-'}")
    return "\n".join(lines) or "no users"


async def _user_disable(ctx: Any) -> str:
    from signaling_server.auth import accounts

    db, args = ctx
    user = await accounts.disable_user(db, (await accounts.find_user(db, args.username)).id)
    return f"user {user.username} disabled; their sessions ended (a running server closes their sockets shortly)"


async def _user_enable(ctx: Any) -> str:
    from signaling_server.auth import accounts

    db, args = ctx
    user = await accounts.enable_user(db, (await accounts.find_user(db, args.username)).id)
    return f"user {user.username} enabled"


async def _user_reset_password(ctx: Any) -> str:
    from signaling_server.auth import accounts
    from signaling_server.auth.passwords import hash_password

    db, args = ctx
    user = await accounts.find_user(db, args.username)
    password = accounts.temporary_password() if args.generate else _read_password(args)

    async def hasher(value: str) -> str:
        return await asyncio.to_thread(hash_password, value)

    await accounts.reset_password(db, user.id, password, hasher)
    shown = f"\ntemporary password (shown once): {password}" if args.generate else ""
    return f"password of {user.username} reset: to be changed at the next sign-in; sessions and tokens ended{shown}"


async def _user_set(ctx: Any) -> str:
    from signaling_server.auth import accounts

    db, args = ctx
    user = await accounts.find_user(db, args.username)
    user = await accounts.update_user(db, user.id, name=args.name, role=args.role, site_code_or_id=args.site or "")
    return f"user {user.username}: {user.role}, site {user.site_id or '-'}"


async def _user_remove_totp(ctx: Any) -> str:
    from signaling_server.auth import accounts

    db, args = ctx
    user = await accounts.remove_totp(db, (await accounts.find_user(db, args.username)).id)
    return f"second factor of {user.username} removed"


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


def _audit_verify(args: argparse.Namespace) -> int:
    """Check the audit trail's hash chain: exit 0 intact, 1 broken (the first broken row named), 2 not checked."""
    from sqlalchemy.exc import DBAPIError

    from signaling_server.audit.chain import parse_anchor
    from signaling_server.audit.trail import verify
    from signaling_server.db.engine import make_engine, make_sessionmaker

    try:
        anchor = parse_anchor(args.anchor) if args.anchor else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def main() -> Any:
        engine = make_engine(_settings(args).effective_database_url)
        try:
            return await verify(make_sessionmaker(engine), anchor)
        finally:
            await engine.dispose()

    try:
        verdict = asyncio.run(main())
    except DBAPIError as exc:
        print(f"error: the audit trail cannot be read: {exc.orig}", file=sys.stderr)
        return 2
    broken = verdict.broken
    if broken is not None:
        print(f"audit trail BROKEN at row {broken.seq}: {broken.reason}\n{verdict.rows} row(s) before it verified")
        return 1
    print(f"audit trail intact: {verdict.rows} rows; head {verdict.head_seq}:{verdict.head_hash}")
    return 0


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


class _NoPasswordArgument(argparse.Action):
    """`--password P` (and its abbreviations) is refused outright, not taken for `--password-file P`."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        parser.error("passwords are never given on the command line: use --password-file FILE, stdin or the prompt")


def _password_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--password-file",
        help="read the password from the first line of this file (else from stdin, else a prompt); "
        "passwords are never given on the command line",
    )
    p.add_argument("--password", "--pass", nargs="?", action=_NoPasswordArgument, help=argparse.SUPPRESS)


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

    site_parser = sub.add_parser("site", help="community centres, the regional centre, partner hospitals")
    site = site_parser.add_subparsers(dest="action", required=True)
    p = site.add_parser("add")
    p.add_argument("code")
    p.add_argument("name")
    p.add_argument("--kind", default="community", help="community, regional or hospital")
    _db_options(p)
    p.set_defaults(func=_with_db(_site_add))

    user = sub.add_parser("user", help="people").add_subparsers(dest="action", required=True)
    p = user.add_parser("add", help="a new account; the password is prompted for, or read from a file or stdin")
    p.add_argument("username")
    p.add_argument("--name")
    roles = ["sonographer", "doctor", "expert", "trainer", "admin", "registrar"]
    p.add_argument("--role", required=True, choices=roles)
    p.add_argument("--site", help="site code (sonographers)")
    _password_options(p)
    p.add_argument("--temporary", action="store_true", help="the person must change the password at first sign-in")
    _db_options(p)
    p.set_defaults(func=_with_db(_user_add))
    p = user.add_parser("list", help="every account: username, role, site, flags")
    _db_options(p)
    p.set_defaults(func=_with_db(_user_list))
    for name, func, text in (
        ("disable", _user_disable, "no more sign-ins; sessions end, tokens are refused"),
        ("enable", _user_enable, "let a disabled account sign in again"),
        ("remove-totp", _user_remove_totp, "forget the account's second factor (a lost phone)"),
    ):
        p = user.add_parser(name, help=text)
        p.add_argument("username")
        _db_options(p)
        p.set_defaults(func=_with_db(func))
    p = user.add_parser("reset-password", help="a new password, to be changed at the next sign-in")
    p.add_argument("username")
    _password_options(p)
    p.add_argument("--generate", action="store_true", help="make a temporary password and print it once")
    _db_options(p)
    p.set_defaults(func=_with_db(_user_reset_password))
    p = user.add_parser("set", help="change an account's role, site or name")
    p.add_argument("username")
    p.add_argument("--role", choices=["sonographer", "doctor", "expert", "trainer", "admin"])
    p.add_argument("--site", help="site code, or - for none")
    p.add_argument("--name")
    _db_options(p)
    p.set_defaults(func=_with_db(_user_set))

    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(dest="action", required=True)
    p = audit.add_parser("verify", help="check the audit trail's hash chain (exit 1 at the first broken row)")
    p.add_argument("--anchor", help="SEQ:SHA256, a head printed by an earlier verify: that row must still be there")
    _db_options(p)
    p.set_defaults(func=_audit_verify)

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

    from signaling_server.dicomstore.commands import add_commands as add_dicom_commands

    add_dicom_commands(sub, _with_db, _db_options)  # `teleus peer …`, `teleus forward …`
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
    if args.command not in ("server", "demo", "edge", "db") and not args.verbose:
        # an administrator adding a site wants its answer, not the schema check's dozen INFO lines
        logging.getLogger("alembic").setLevel(logging.WARNING)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
