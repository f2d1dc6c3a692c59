"""The `teleus` command line as a user runs it: `teleus edge` hands over to the edge's own entry point, and the
server imports nothing of the edge."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

TELEUS = str(Path(sys.executable).parent / "teleus")


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEUS_")}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_teleus_edge_is_the_edge_agents_own_command() -> None:
    helped = run(TELEUS, "edge", "--help")
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: teleus edge") and "--credential" in helped.stdout
    assert run(sys.executable, "-m", "edge_capture", "--help").stdout == helped.stdout
    refused = run(TELEUS, "edge", "--server", "http://127.0.0.1:9")
    assert refused.returncode == 1 and "give --credential-file FILE (- for stdin) or TELEUS_DEVICE_CREDENTIAL" in (
        refused.stderr
    )
    on_argv = run(TELEUS, "edge", "--server", "http://127.0.0.1:9", "--credential", "dev_1_secret")
    assert on_argv.returncode == 1 and "process list" in on_argv.stderr
    insecure = run(TELEUS, "edge", "--server", "http://192.0.2.7:8600", "--credential-file", "-")
    assert insecure.returncode == 1 and "in clear" in insecure.stderr


def test_other_commands_still_refuse_options_they_do_not_know() -> None:
    refused = run(TELEUS, "db", "upgrade", "--bogus")
    assert refused.returncode == 2 and "unrecognized arguments: --bogus" in refused.stderr


def test_no_module_of_the_server_imports_the_edge() -> None:
    """The edge depends on the server's wire codec, never the reverse (import-linter checks the whole graph)."""
    root = Path(__file__).parents[2] / "signaling_server"
    importing = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            importing += [f"{path.relative_to(root)}: {n}" for n in names if n.split(".")[0] == "edge_capture"]
    assert importing == []


def _db_of(data_dir: Path) -> str:
    return str(data_dir / "teleus.sqlite3")


def _stored_user(data_dir: Path, username: str) -> tuple[str, int, int]:
    import sqlite3

    with sqlite3.connect(_db_of(data_dir)) as db:
        row = db.execute(
            "SELECT password_hash, must_change_password, active FROM users WHERE username = ?", (username,)
        ).fetchone()
    return row[0], row[1], row[2]


def run_with_input(stdin: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEUS_")}
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_user_add_takes_the_password_from_a_file_or_stdin_never_from_argv(tmp_path: Path) -> None:
    from signaling_server.auth.passwords import verify_password

    data = str(tmp_path)
    refused = run(TELEUS, "user", "add", "ann", "--role", "admin", "--password", "in plain sight", "--data-dir", data)
    assert refused.returncode == 2 and "passwords are never given on the command line" in refused.stderr
    assert not (tmp_path / "teleus.sqlite3").exists()

    secret_file = tmp_path / "password"
    secret_file.write_text("from a file only\nsecond line ignored\n")
    made = run(TELEUS, "user", "add", "ann", "--role", "admin", "--password-file", str(secret_file), "--data-dir", data)
    assert made.returncode == 0, made.stderr
    stored, must_change, _ = _stored_user(tmp_path, "ann")
    assert verify_password(stored, "from a file only") and must_change == 0

    piped = run_with_input(
        "piped secret\n", TELEUS, "user", "add", "bo", "--role", "expert", "--temporary", "--data-dir", data
    )
    assert piped.returncode == 0, piped.stderr
    stored, must_change, _ = _stored_user(tmp_path, "bo")
    assert verify_password(stored, "piped secret") and must_change == 1
    assert "piped secret" not in piped.stdout + piped.stderr

    empty = run_with_input("", TELEUS, "user", "add", "cy", "--role", "expert", "--data-dir", data)
    assert empty.returncode == 1 and "error: invalid_request: no password given" in empty.stderr
    missing = run(
        TELEUS, "user", "add", "cy", "--role", "expert", "--password-file", str(tmp_path / "nope"), "--data-dir", data
    )
    assert missing.returncode == 1 and "cannot read the password file" in missing.stderr


def test_user_commands_disable_reset_and_change_accounts(tmp_path: Path) -> None:
    from signaling_server.auth.passwords import verify_password

    data = str(tmp_path)
    made = run_with_input("first password\n", TELEUS, "user", "add", "dee", "--role", "expert", "--data-dir", data)
    assert made.returncode == 0, made.stderr
    assert run(TELEUS, "user", "disable", "dee", "--data-dir", data).returncode == 0
    assert _stored_user(tmp_path, "dee")[2] == 0
    refused = run(TELEUS, "user", "disable", "nobody", "--data-dir", data)
    assert refused.returncode == 1 and "error: not_found" in refused.stderr
    assert run(TELEUS, "user", "enable", "dee", "--data-dir", data).returncode == 0

    reset = run(TELEUS, "user", "reset-password", "dee", "--generate", "--data-dir", data)
    assert reset.returncode == 0, reset.stderr
    temporary = reset.stdout.rsplit("temporary password (shown once): ", 1)[1].strip()
    stored, must_change, active = _stored_user(tmp_path, "dee")
    assert verify_password(stored, temporary) and must_change == 1 and active == 1

    changed = run(TELEUS, "user", "set", "dee", "--role", "trainer", "--data-dir", data)
    assert changed.returncode == 0 and "dee: trainer" in changed.stdout
    listed = run(TELEUS, "user", "list", "--data-dir", data)
    assert listed.returncode == 0 and "dee\ttrainer\t-\tmust-change" in listed.stdout
def test_an_operator_assigns_an_expert_to_the_sites_they_serve(tmp_path: Path) -> None:
    folder = ("--data-dir", str(tmp_path))
    assert run(TELEUS, "site", "add", "north", "North Centre", *folder).returncode == 0
    made = run_with_input("p" * 12 + "\n", TELEUS, "user", "add", "wang", "--role", "expert", *folder)
    assert made.returncode == 0, made.stderr
    assigned = run(TELEUS, "user", "assign", "wang", "--site", "north", *folder)
    assert assigned.returncode == 0 and "wang now serves site north" in assigned.stdout, assigned.stderr
    again = run(TELEUS, "user", "assign", "wang", "--site", "north", *folder)
    assert "already serves" in again.stdout
    refused = run(TELEUS, "user", "assign", "nobody", "--site", "north", *folder)
    assert refused.returncode != 0 and "no user 'nobody'" in refused.stderr


def test_administration_makes_a_data_folder_that_does_not_exist_yet(tmp_path: Path) -> None:
    """`teleus site/user/device add` on a fresh machine: the data folder (and its parents) are made, private."""
    data = tmp_path / "new" / "teleus-data"
    site = run(TELEUS, "site", "add", "hospital-1", "区人民医院", "--kind", "hospital", "--data-dir", str(data))
    assert site.returncode == 0, site.stderr
    assert site.stdout.startswith("site hospital-1 (")
    assert "alembic" not in site.stderr  # the answer, not the schema check's chatter
    assert (data / "teleus.sqlite3").is_file() and (data.stat().st_mode & 0o777) == 0o700
    device = run(TELEUS, "device", "add", "us-1", "--site", "hospital-1", "--data-dir", str(data))
    assert device.returncode == 0, device.stderr
    refused = run(TELEUS, "site", "add", "c2", "X", "--kind", "clinic", "--data-dir", str(data))
    assert refused.returncode == 1 and refused.stderr.startswith("error: invalid_request: a site's kind is one of")
