"""coturn for tests: started from the example docs/turnserver.conf, with a test's addresses, ports and secret."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "turnserver.conf"
TURNSERVER = "/usr/bin/turnserver"
# What a test sets itself; every other line of the example is used as written.
OVERRIDDEN = {
    "listening-port", "tls-listening-port", "listening-ip", "relay-ip", "min-port", "max-port",
    "static-auth-secret", "cert", "pkey", "log-file", "pidfile",
}  # fmt: skip


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def config(
    directory: Path, listen: list[str], relay: str, secret: str, port: int, relay_ports: tuple[int, int],
    tls: tuple[Path, Path, int] | None = None,
) -> str:
    """The example configuration with these addresses and ports (TLS only when a certificate, key and port are
    given)."""
    kept = []
    for line in EXAMPLE.read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if key in OVERRIDDEN or line.startswith("#") or not line.strip():
            continue
        kept.append(line)
    ours = [f"listening-port={port}", *(f"listening-ip={ip}" for ip in listen), f"relay-ip={relay}",
            f"min-port={relay_ports[0]}", f"max-port={relay_ports[1]}", f"static-auth-secret={secret}",
            f"log-file={directory / 'turnserver.log'}", f"pidfile={directory / 'turnserver.pid'}",
            f"userdb={directory / 'turndb'}"]  # fmt: skip
    if tls is None:
        ours.append("no-tls")
    else:
        cert, key, tls_port = tls
        ours += [f"tls-listening-port={tls_port}", f"cert={cert}", f"pkey={key}"]
    return "\n".join(kept + ours) + "\n"


class Turn(NamedTuple):
    port: int
    tls_port: int | None
    pid: int


@contextlib.contextmanager
def coturn(
    directory: Path, listen: list[str], relay: str, secret: str, tls: tuple[Path, Path] | None = None,
) -> Iterator[Turn]:
    """Run turnserver until the block ends; yields its ports (TLS: None without a certificate) and pid once it
    accepts TCP on every listening address."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port(listen[0])
    tls_port = free_port(listen[0]) if tls else None
    low = 20000 + (port % 20000)
    conf = directory / "turnserver.conf"
    conf.write_text(config(directory, listen, relay, secret, port, (low, low + 200),
                           (tls[0], tls[1], tls_port) if tls and tls_port else None))  # fmt: skip
    proc = subprocess.Popen([TURNSERVER, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        pending = [(ip, p) for ip in listen for p in (port, tls_port) if p]
        while pending:
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (directory / "turnserver.log").read_text() if (directory / "turnserver.log").exists() else ""
                raise RuntimeError(f"turnserver did not start ({proc.returncode}):\n{log[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(pending[0], timeout=1):
                pending.pop(0)
                continue
            time.sleep(0.1)
        yield Turn(port, tls_port, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
