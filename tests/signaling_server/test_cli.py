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
    assert refused.returncode == 1 and "give --credential or TELEUS_DEVICE_CREDENTIAL" in refused.stderr


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


def test_an_operator_assigns_an_expert_to_the_sites_they_serve(tmp_path: Path) -> None:
    folder = ("--data-dir", str(tmp_path))
    assert run(TELEUS, "site", "add", "north", "North Centre", *folder).returncode == 0
    made = run(TELEUS, "user", "add", "wang", "--role", "expert", "--password", "p" * 12, *folder)
    assert made.returncode == 0, made.stderr
    assigned = run(TELEUS, "user", "assign", "wang", "--site", "north", *folder)
    assert assigned.returncode == 0 and "wang now serves site north" in assigned.stdout, assigned.stderr
    again = run(TELEUS, "user", "assign", "wang", "--site", "north", *folder)
    assert "already serves" in again.stdout
    refused = run(TELEUS, "user", "assign", "nobody", "--site", "north", *folder)
    assert refused.returncode != 0 and "no user 'nobody'" in refused.stderr
