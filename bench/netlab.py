"""A small network lab for tests and benchmarks: Linux network namespaces, veth links, nftables and tc.

Needs root (``ip netns``, ``nft`` from Debian ``nftables``, ``tc``). This kernel has no netem: loss is an nftables
``numgen random`` drop, the rate a ``tc tbf`` shaper, and delay a userspace wire (``bench/netdelay.py``).

    with Lab() as lab:
        clinic = lab.namespace("clinic")
        expert = lab.namespace("expert")
        up = lab.link(clinic, None)           # clinic <-> this (root) namespace, where the server listens
        lab.link(expert, None)
        proc = clinic.popen(["python3", "-m", "edge_capture", "--server", f"http://{up.b_address}:8080"])
        clinic.cut(); clinic.restore()        # drop every packet in and out of the clinic, then stop dropping
        clinic.loss(5.0)                      # drop 5 % of the packets each way; loss(0) stops it
        clinic.rate(4.0)                      # 4 Mbit/s each way on every link of the clinic; rate(None) stops it
        far = lab.link(lab.namespace("far"), None, delay_ms=50)   # 50 ms each way: a 100 ms round trip
        far.set_delay(150)                    # a 300 ms round trip from now on
        browser = await p.chromium.launch(executable_path=str(expert.chromium()), args=[...])

The model:

- ``Lab`` is a context manager. Its namespaces are named ``netlab-<pid>-<token>-<name>`` (unique per run and per
  lab); leaving the ``with`` (normally or by an exception) deletes them, which also deletes their veth pairs,
  including ends in the root namespace. Entering a lab first deletes namespaces a killed run left behind: those
  named ``netlab-<pid>-…`` whose process is gone.
- ``lab.link(a, b, subnet=None)`` joins namespace ``a`` to namespace ``b`` (or, when ``b`` is None, to the root
  namespace: the host, where host processes such as the teleus server, coturn or a test's aiohttp app listen) with
  a veth pair. ``a``'s end gets the subnet's first host address, ``b``'s end (or the host's) the second. Without a
  subnet one free /24 is taken from 10.231.0.0/16 (allocation is serialised across processes by a file lock and
  skips subnets already on the host, so parallel test workers do not collide). Only connected routes are set: a
  namespace reaches the addresses of its own links and nothing else (no default route, so two namespaces that
  are each linked to the host cannot reach each other even when the host forwards IP). ``ns.route(dest, via)``
  adds one: e.g. ``expert.route(up.b_address, via=expert_up.b_address)`` lets the expert reach the host's
  address on the clinic's link (a service listening there, such as a TURN relay) and still not the clinic.
- ``lab.link(a, b, delay_ms=D)`` makes the pair of TAP devices of a ``bench/netdelay.py`` process instead of a
  veth pair: the same addresses, routes and interface names, but every frame crosses a userspace wire that holds
  it ``D`` ms in each direction (``link.set_delay(ms)`` changes it; ``link.delay_ms`` is the current value). Loss,
  cut and rate apply to these ends as to a veth's (the shaper sits on each end's egress, before the wire). The
  process lives as long as the lab (it ends when the lab closes its stdin) and runs in the root namespace.
- ``Namespace.popen(argv, **kw)`` is ``subprocess.Popen`` inside the namespace; ``Namespace.argv(argv)`` gives the
  prefixed command line for ``asyncio.create_subprocess_exec``; ``Namespace.run(argv)`` runs and checks.
- ``cut()`` / ``restore()`` and ``loss(percent)`` are one nftables table (``netdev netlab``) in the namespace:
  ingress and egress hooks on the namespace's ends of its links (so loopback inside it is never dropped, and a
  sender sees no socket error: the packet is lost on the wire). Set them after making the namespace's links
  (a later link is covered at the next call). Loss drops IP packets only (ARP is kept), in each direction
  separately: a round trip through a namespace with ``loss(p)`` survives with probability ``(1 - p/100)**2``.
- ``rate(mbit)`` puts a ``tbf`` shaper on both ends of every link of the namespace (egress of each end is one
  direction), so the namespace sends and receives at most ``mbit`` per link.
- ``chromium()`` writes a wrapper script that runs ``/usr/bin/chromium`` inside the namespace and returns its
  path, to pass as Playwright's ``executable_path`` (Playwright's pipes are inherited through ``ip netns exec``).

Tested by tests/bench/test_netlab.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

logger = logging.getLogger(__name__)

PREFIX = "netlab-"
POOL = ipaddress.IPv4Network("10.231.0.0/16")
LOCK_PATH = Path(tempfile.gettempdir()) / "teleus-netlab.lock"
CHROMIUM = "/usr/bin/chromium"
NFT_TABLE = "netlab"


def _run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lab_namespaces() -> list[str]:
    """Every namespace on the machine made by a lab (this run's or another's)."""
    out = _run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def remove_stale() -> list[str]:
    """Delete the namespaces of labs whose process is gone (a killed run); returns their names."""
    removed = []
    for name in lab_namespaces():
        pid_text = name[len(PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit() and not pid_alive(int(pid_text)):
            _run(["ip", "netns", "delete", name], check=False)
            removed.append(name)
    if removed:
        logger.info("netlab: removed stale namespaces %s", removed)
    return removed


def _host_networks() -> list[ipaddress.IPv4Network]:
    out = _run(["ip", "-j", "-4", "addr", "show"]).stdout
    nets = []
    for link in json.loads(out or "[]"):
        for info in link.get("addr_info", []):
            nets.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    return nets


class DelayWire:
    """A running ``bench/netdelay.py``: the userspace wire between a delayed link's two TAP devices."""

    def __init__(self, tap_a: str, tap_b: str, delay_ms: float) -> None:
        self.delay_ms = _check_delay(delay_ms)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.netdelay", tap_a, tap_b, "--delay-ms", str(delay_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != "ready":
            self.close()
            raise RuntimeError(f"netdelay did not start (exit {self.process.returncode}): {line!r}")

    def set_delay(self, delay_ms: float) -> None:
        self.delay_ms = _check_delay(delay_ms)
        assert self.process.stdin is not None
        self.process.stdin.write(f"{delay_ms}\n")
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                if self.process.stdin is not None:
                    self.process.stdin.close()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _check_delay(delay_ms: float) -> float:
    if not 0.0 <= delay_ms <= 10_000.0:
        raise ValueError(f"delay must be within 0..10000 ms, not {delay_ms}")
    return float(delay_ms)


@dataclass(frozen=True)
class Link:
    """One veth pair: ``a`` end in namespace ``a``, ``b`` end in namespace ``b`` (None: the root namespace)."""

    subnet: ipaddress.IPv4Network
    a: Namespace
    a_interface: str
    a_address: str
    b: Namespace | None
    b_interface: str
    b_address: str
    wire: DelayWire | None = None

    @property
    def delay_ms(self) -> float:
        """The one-way delay this link adds in each direction (0 for a veth pair)."""
        return self.wire.delay_ms if self.wire else 0.0

    def set_delay(self, delay_ms: float) -> None:
        """Change the one-way delay of a link made with ``delay_ms`` (frames already on the wire keep theirs)."""
        if self.wire is None:
            raise ValueError("this link is a veth pair: make it with lab.link(..., delay_ms=...) to delay it")
        self.wire.set_delay(delay_ms)

    def address_of(self, namespace: Namespace | None) -> str:
        """This link's address in ``namespace`` (None: the host's end)."""
        if namespace is self.a:
            return self.a_address
        if namespace is self.b:
            return self.b_address
        raise ValueError(f"{namespace} is not on this link")


@dataclass(eq=False)
class Namespace:
    """One network namespace of a lab (see the module docstring)."""

    lab: Lab
    short_name: str
    name: str
    links: list[Link] = field(default_factory=list)
    _cut: bool = False
    _loss_percent: float = 0.0

    def __repr__(self) -> str:
        return f"Namespace({self.name})"

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(self.argv(argv), **kwargs)

    def run(self, argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(self.argv(argv), check=check)

    def route(self, destination: str, via: str) -> None:
        """Reach ``destination`` (an address or subnet) through the gateway ``via`` on one of this namespace's
        links (e.g. one address of the host that is on another link)."""
        self.run(["ip", "route", "replace", destination, "via", via])

    @property
    def addresses(self) -> list[str]:
        return [link.address_of(self) for link in self.links]

    def cut(self) -> None:
        """Drop every packet into and out of this namespace (loopback inside it still works)."""
        self._cut = True
        self._apply_filter()

    def restore(self) -> None:
        """Undo ``cut()`` (a loss set by ``loss()`` stays)."""
        self._cut = False
        self._apply_filter()

    def loss(self, percent: float) -> None:
        """Drop ``percent`` % of the packets in each direction, at random (0 stops dropping)."""
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"loss must be within 0..100 %, not {percent}")
        self._loss_percent = percent
        self._apply_filter()

    def rate(self, mbit: float | None) -> None:
        """Shape both directions of every link of this namespace to ``mbit`` Mbit/s (None removes the shaper)."""
        for link in self.links:
            for owner, interface in ((link.a, link.a_interface), (link.b, link.b_interface)):
                tc = ["tc", "qdisc"]
                if mbit is None:
                    cmd = [*tc, "del", "dev", interface, "root"]
                    _run(owner.argv(cmd) if owner else cmd, check=False)
                    continue
                bits_per_s = int(mbit * 1_000_000)
                # The bucket must hold at least one timer tick of traffic (HZ >= 100) and one full-size packet.
                burst = max(16_000, bits_per_s // 8 // 100)
                cmd = [*tc, "replace", "dev", interface, "root", "tbf", "rate", f"{bits_per_s}bit",
                       "burst", str(burst), "latency", "100ms"]
                _run(owner.argv(cmd) if owner else cmd)

    def chromium(self) -> Path:
        """A script running /usr/bin/chromium inside this namespace (Playwright's ``executable_path``)."""
        path = self.lab.directory / f"chromium-{self.short_name}"
        if not path.exists():
            path.write_text(f'#!/bin/sh\nexec ip netns exec {self.name} {CHROMIUM} "$@"\n')
            path.chmod(0o755)
        return path

    def _apply_filter(self) -> None:
        # netdev ingress/egress hooks on the namespace's own link ends: a drop there is a loss on the wire (a
        # sender's socket sees no error, as with a real lossy link), and loopback is never touched.
        rule = ""
        if self._cut:
            rule = "drop"
        elif self._loss_percent > 0:
            # Hundredths of a percent, so fractional losses work.
            # IP only: a lost ARP exchange would drop everything queued behind it, an all-or-nothing loss.
            rule = f"meta protocol {{ ip, ip6 }} numgen random mod 10000 < {round(self._loss_percent * 100)} drop"
        script = [f"table netdev {NFT_TABLE} {{}}", f"delete table netdev {NFT_TABLE}"]
        own_ends = [link.a_interface if link.a is self else link.b_interface for link in self.links]
        if rule and own_ends:
            chains = []
            for i, interface in enumerate(own_ends):
                for hook in ("ingress", "egress"):
                    chains.append(
                        f"  chain {hook}{i} {{\n    type filter hook {hook} device \"{interface}\" priority 0;\n"
                        f"    {rule}\n  }}"
                    )
            script.append(f"table netdev {NFT_TABLE} {{\n" + "\n".join(chains) + "\n}")
        result = subprocess.run(
            self.argv(["nft", "-f", "-"]), input="\n".join(script) + "\n", capture_output=True, text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"nft in {self.name} failed: {result.stderr.strip()}")


class Lab:
    """Namespaces and links that exist for the ``with`` block and are always removed after it."""

    def __init__(self) -> None:
        if shutil.which("nft") is None or shutil.which("ip") is None:
            raise RuntimeError("netlab needs `ip` and `nft` (Debian iproute2, nftables) and root")
        self.token = secrets.token_hex(2)
        self.namespaces: list[Namespace] = []
        self.links: list[Link] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._subnets: set[ipaddress.IPv4Network] = set()

    @property
    def directory(self) -> Path:
        assert self._tmp is not None, "use the Lab in a with block"
        return Path(self._tmp.name)

    def __enter__(self) -> Lab:
        remove_stale()
        self._tmp = tempfile.TemporaryDirectory(prefix="netlab-")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            _run(["ip", "netns", "delete", ns.name], check=False)
        for link in self.links:
            if link.wire is not None:  # its TAP devices go with it
                link.wire.close()
            elif link.b is None:  # normally gone with its namespace; make sure
                _run(["ip", "link", "delete", link.b_interface], check=False)
        self.namespaces.clear()
        self.links.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def namespace(self, name: str) -> Namespace:
        if any(ns.short_name == name for ns in self.namespaces):
            raise ValueError(f"namespace {name!r} already in this lab")
        full = f"{PREFIX}{os.getpid()}-{self.token}-{name}"
        _run(["ip", "netns", "add", full])
        ns = Namespace(self, name, full)
        self.namespaces.append(ns)
        ns.run(["ip", "link", "set", "lo", "up"])
        return ns

    def link(
        self, a: Namespace, b: Namespace | None, subnet: str | None = None, delay_ms: float | None = None
    ) -> Link:
        index = len(self.links)
        a_if = f"nl{self.token}{index:02d}a"
        b_if = f"nl{self.token}{index:02d}b"
        wire: DelayWire | None = None
        with self._allocation_lock():
            net = ipaddress.IPv4Network(subnet) if subnet else self._free_subnet()
            hosts = net.hosts()
            a_ip, b_ip = str(next(hosts)), str(next(hosts))
            if delay_ms is None:
                _run(["ip", "link", "add", a_if, "type", "veth", "peer", "name", b_if])
            else:
                wire = DelayWire(a_if, b_if, delay_ms)
            try:
                _run(["ip", "link", "set", a_if, "netns", a.name])
                if b is not None:
                    _run(["ip", "link", "set", b_if, "netns", b.name])
                for owner, interface, ip in ((a, a_if, a_ip), (b, b_if, b_ip)):
                    for cmd in (["ip", "addr", "add", f"{ip}/{net.prefixlen}", "dev", interface],
                                ["ip", "link", "set", interface, "up"]):
                        _run(owner.argv(cmd) if owner else cmd)
            except Exception:
                if wire is not None:
                    wire.close()
                raise
            self._subnets.add(net)
        link = Link(net, a, a_if, a_ip, b, b_if, b_ip, wire)
        self.links.append(link)
        a.links.append(link)
        if b is not None:
            b.links.append(link)
        return link

    @contextlib.contextmanager
    def _allocation_lock(self) -> Iterator[None]:
        with LOCK_PATH.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _free_subnet(self) -> ipaddress.IPv4Network:
        taken = set(self._subnets)
        host = _host_networks()
        for candidate in POOL.subnets(new_prefix=24):
            if candidate in taken or any(candidate.overlaps(n) for n in host):
                continue
            return candidate
        raise RuntimeError(f"netlab: no free /24 left in {POOL}")
