"""The network lab itself: links carry traffic, cut/restore/loss/rate act on it, names are unique, nothing is left."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from bench import netlab
from bench.netlab import Lab, Namespace

pytestmark = [pytest.mark.netlab, pytest.mark.skipif(os.geteuid() != 0, reason="the network lab needs root")]

# A TCP echo server inside a namespace: prints "ready", then echoes one line per connection (until killed).
SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    with c:
        data = c.recv(65536)
        while data:
            c.sendall(data)
            data = c.recv(65536)
"""
# A client: one connection with a timeout; exit 0 when the echo came back.
CLIENT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])) as c:
        c.sendall(b"hello\\n"); sys.exit(0 if c.recv(16) == b"hello\\n" else 1)
except OSError:
    sys.exit(2)
"""
# A sink counting bytes; a sender of N bytes.
SINK = """
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
print("ready", flush=True)
c, _ = s.accept(); n = 0
while (d := c.recv(65536)):
    n += len(d)
print(n, flush=True)
"""
SENDER = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60) as c:
    c.sendall(b"x" * int(sys.argv[3]))
"""
PORT = 7000


def _serve(ns: Namespace, address: str, script: str = SERVER) -> subprocess.Popen[str]:
    proc = ns.popen([sys.executable, "-c", script, address, str(PORT)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _connects(ns: Namespace, address: str, timeout: float = 3.0) -> bool:
    return ns.run([sys.executable, "-c", CLIENT, address, str(PORT), str(timeout)], check=False).returncode == 0


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


@pytest.fixture
def pair(lab: Lab) -> Iterator[tuple[Namespace, Namespace, str]]:
    """Two linked namespaces and an echo server in the second, at the address given."""
    a, b = lab.namespace("a"), lab.namespace("b")
    link = lab.link(a, b)
    server = _serve(b, link.b_address)
    try:
        yield a, b, link.b_address
    finally:
        _stop(server)


def test_a_link_carries_tcp_between_two_namespaces(pair: tuple[Namespace, Namespace, str]) -> None:
    a, _, address = pair
    assert _connects(a, address)


def test_cut_stops_traffic_and_restore_brings_it_back(pair: tuple[Namespace, Namespace, str]) -> None:
    a, b, address = pair
    b.cut()
    assert not _connects(a, address, timeout=1.0)
    b.restore()
    assert _connects(a, address)
    a.cut()
    assert not _connects(a, address, timeout=1.0)
    a.restore()
    assert _connects(a, address)


def test_loss_drops_some_packets_not_all(lab: Lab) -> None:
    a, b = lab.namespace("a"), lab.namespace("b")
    link = lab.link(a, b)
    b.loss(50.0)
    # 200 UDP datagrams from b to a: each survives b's output filter with probability 1/2.
    recv = a.popen(
        [sys.executable, "-c",
         "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind((sys.argv[1],7001))\n"
         "s.settimeout(3);print('ready',flush=True);n=0\n"
         "try:\n  while True: s.recv(64); n+=1\nexcept TimeoutError: pass\nprint(n,flush=True)",
         link.a_address],
        stdout=subprocess.PIPE, text=True,
    )
    assert recv.stdout is not None and recv.stdout.readline().strip() == "ready"
    b.run([sys.executable, "-c",
           "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
           "for _ in range(200): s.sendto(b'x',(sys.argv[1],7001))", link.a_address])
    received = int(recv.stdout.readline())
    _stop(recv)
    assert 20 < received < 180  # binomial(200, 0.5): outside these bounds with probability ~1e-30
    b.loss(0)
    assert "numgen" not in b.run(["nft", "list", "ruleset"]).stdout
    b.cut()
    assert "drop" in b.run(["nft", "list", "ruleset"]).stdout


def test_rate_slows_a_bulk_transfer(lab: Lab) -> None:
    a, b = lab.namespace("a"), lab.namespace("b")
    link = lab.link(a, b)
    a.rate(4.0)
    sink = _serve(b, link.b_address, SINK)
    size = 1_000_000  # 8 Mbit: at least 2 s at 4 Mbit/s (a busy machine only makes it slower)
    started = time.monotonic()
    a.run([sys.executable, "-c", SENDER, link.b_address, str(PORT), str(size)])
    assert sink.stdout is not None and int(sink.stdout.readline()) == size
    assert time.monotonic() - started > 1.5
    _stop(sink)
    a.rate(None)
    assert "tbf" not in a.run(["tc", "qdisc", "show"]).stdout


# A client timing TCP round trips of one small message on one connection; prints the fastest, in ms.
PINGER = """
import socket, sys, time
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30) as c:
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    best = None
    for _ in range(5):
        t = time.monotonic(); c.sendall(b"x")
        c.recv(16)
        ms = (time.monotonic() - t) * 1000
        best = ms if best is None else min(best, ms)
    print(best)
"""


def _fastest_round_trip_ms(ns: Namespace, address: str) -> float:
    return float(ns.run([sys.executable, "-c", PINGER, address, str(PORT)]).stdout)


def test_a_delayed_link_holds_every_packet_for_its_delay_each_way(lab: Lab) -> None:
    a, b = lab.namespace("a"), lab.namespace("b")
    link = lab.link(a, b, delay_ms=40)
    assert link.delay_ms == 40
    server = _serve(b, link.b_address)
    try:
        # the fastest of several round trips: a busy machine only adds to it, never takes from it
        assert _fastest_round_trip_ms(a, link.b_address) >= 80
        link.set_delay(0)
        assert link.delay_ms == 0
        assert _fastest_round_trip_ms(a, link.b_address) < 80
        # the lab's other impairments act on a delayed link's ends as on a veth's
        a.cut()
        assert not _connects(a, link.b_address, timeout=1.0)
        a.restore()
        assert _connects(a, link.b_address)
    finally:
        _stop(server)
    sink = _serve(b, link.b_address, SINK)
    link.set_delay(20)
    a.run([sys.executable, "-c", SENDER, link.b_address, str(PORT), "2000000"])
    assert sink.stdout is not None and int(sink.stdout.readline()) == 2_000_000  # every byte, in order
    _stop(sink)
    with pytest.raises(ValueError):
        lab.link(a, None).set_delay(10)  # a veth pair has no wire to delay


def test_a_host_link_reaches_a_host_process_and_namespaces_stay_apart(lab: Lab) -> None:
    a, b = lab.namespace("a"), lab.namespace("b")
    up_a, up_b = lab.link(a, None), lab.link(b, None)
    assert up_a.subnet != up_b.subnet
    with socket.create_server(("0.0.0.0", 0)) as server:
        port = server.getsockname()[1]

        def echo() -> None:
            for _ in range(2):
                conn, _ = server.accept()
                with conn:
                    conn.sendall(conn.recv(64))

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        for ns, link in ((a, up_a), (b, up_b)):
            result = ns.run([sys.executable, "-c", CLIENT, link.b_address, str(port), "5"], check=False)
            assert result.returncode == 0
        thread.join(timeout=10)
    # a cannot reach b's address (no route), b cannot reach a's.
    assert a.run([sys.executable, "-c", CLIENT, up_b.a_address, "9", "1"], check=False).returncode == 2
    assert b.run([sys.executable, "-c", CLIENT, up_a.a_address, "9", "1"], check=False).returncode == 2
    # A route to the host's address on a's link lets b reach a service there, and still not a.
    b.route(up_a.b_address, via=up_b.b_address)
    with socket.create_server((up_a.b_address, 0)) as service:
        port = service.getsockname()[1]
        thread = threading.Thread(target=lambda: service.accept()[0].close(), daemon=True)
        thread.start()
        probe = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()"
        b.run([sys.executable, "-c", probe, up_a.b_address, str(port)])
        thread.join(timeout=10)
    assert b.run([sys.executable, "-c", CLIENT, up_a.a_address, "9", "1"], check=False).returncode == 2


def test_names_are_unique_per_lab_and_everything_is_removed_after() -> None:
    with Lab() as one, Lab() as two:
        x, y = one.namespace("clinic"), two.namespace("clinic")
        assert x.name != y.name
        link = one.link(x, None)
        assert {x.name, y.name} <= set(netlab.lab_namespaces())
        host_if = link.b_interface
        assert subprocess.run(["ip", "link", "show", host_if], capture_output=True).returncode == 0
    assert not {x.name, y.name} & set(netlab.lab_namespaces())
    assert subprocess.run(["ip", "link", "show", host_if], capture_output=True).returncode != 0


def test_cleanup_happens_on_failure_too() -> None:
    with pytest.raises(RuntimeError, match="boom"), Lab() as lab:
        ns = lab.namespace("x")
        raise RuntimeError("boom")
    assert ns.name not in netlab.lab_namespaces()


def test_a_killed_runs_namespaces_are_removed_by_the_next_lab() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"{netlab.PREFIX}{dead.pid}-dead-x"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    with Lab() as lab:
        assert stale not in netlab.lab_namespaces()
        ours = lab.namespace("alive")
        assert ours.name in netlab.lab_namespaces()  # a live process's lab is kept


async def test_chromium_runs_inside_a_namespace(lab: Lab) -> None:
    from aiohttp import web
    from playwright.async_api import async_playwright

    from tests.e2e.browser import BASE_ARGS

    a = lab.namespace("browser")
    up = lab.link(a, None)
    app = web.Application()

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.remote}", content_type="text/html")

    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, up.b_address, 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(a.chromium()), args=BASE_ARGS)
            try:
                page = await browser.new_page()
                await page.goto(f"http://{up.b_address}:{port}/")
                # The server saw the namespace's address: the browser's traffic left through the lab link.
                assert await page.text_content("body") == f"hello {up.a_address}"
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
