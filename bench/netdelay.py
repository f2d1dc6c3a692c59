"""A userspace link with a fixed one-way delay: two TAP devices, every Ethernet frame carried across after a wait.

This kernel has no netem qdisc, so ``bench/netlab.py`` adds delay with this process::

    python -m bench.netdelay TAP_A TAP_B --delay-ms 50

It creates the TAP devices ``TAP_A`` and ``TAP_B`` (in its own network namespace; netlab then moves each into the
namespace it joins and gives it an address), writes ``ready`` on stdout, and from then on forwards every frame read
from one device to the other once ``delay`` ms have passed since it was read: a wire of that one-way delay in each
direction, carrying everything (ARP, ICE, DTLS, RTP, the signaling socket's TCP). Frames leave in the order they came
(one FIFO per direction), so a change of delay never reorders them. A line on stdin sets a new delay (ms, applied to
frames read from then on); the end of stdin (the parent gone or done) ends it and takes the devices with it.

A TAP device hands userspace whole frames with their checksums done and no segmentation offload, so nothing has to
be fixed up on the way (a veth read with a packet socket would give checksum-less, 64 KB GSO frames). A frame waits
in a Python deque: the delay is exact to the scheduler's grain (well under a millisecond on a quiet host; the
process asks for real-time round-robin priority so that a saturated host delays it as little as it can).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import os
import select
import struct
import sys
import time
from collections import deque

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
MAX_FRAME = 65_536


def open_tap(name: str) -> int:
    """A new TAP device ``name``, its frames read and written whole (no packet-info header) on the returned fd."""
    if len(name.encode()) > 15:
        raise ValueError(f"interface name too long: {name!r}")
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def parse_delay(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 10_000.0:
        raise ValueError(f"delay must be within 0..10000 ms, not {value}")
    return value / 1000.0


def forward(fd_a: int, fd_b: int, delay_s: float, control: int | None) -> None:
    """Carry frames between the two TAP fds, ``delay_s`` late, until ``control`` (stdin) ends."""
    queues: dict[int, deque[tuple[float, bytes]]] = {fd_a: deque(), fd_b: deque()}
    other = {fd_a: fd_b, fd_b: fd_a}
    watched = [fd_a, fd_b] + ([control] if control is not None else [])
    while True:
        now = time.monotonic()
        due = [q[0][0] for q in queues.values() if q]
        timeout = max(0.0, min(due) - now) if due else None
        readable, _, _ = select.select(watched, [], [], timeout)
        now = time.monotonic()
        down = False
        for fd in readable:
            if fd == control:
                line = os.read(fd, 4096)
                if not line:
                    return
                for text in line.decode().split():
                    delay_s = parse_delay(text)
                continue
            while True:
                try:
                    frame = os.read(fd, MAX_FRAME)
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBADFD:
                        raise
                    down = True  # not up yet (or no longer): readable but nothing to read
                    break
                queues[fd].append((now + delay_s, frame))
        if down:
            time.sleep(0.01)
        now = time.monotonic()
        for fd, queue in queues.items():
            while queue and queue[0][0] <= now:
                _, frame = queue.popleft()
                try:
                    os.write(other[fd], frame)
                except OSError:  # the device is down (its namespace going away): the frame is lost on the wire
                    pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.netdelay", description=__doc__.split("\n\n")[0])
    p.add_argument("tap_a")
    p.add_argument("tap_b")
    p.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay, each direction")
    a = p.parse_args(argv)
    delay_s = parse_delay(str(a.delay_ms))
    fd_a, fd_b = open_tap(a.tap_a), open_tap(a.tap_b)
    # A wire does not slow down when the host is busy: real-time priority (the process mostly sleeps in select,
    # a few % of a core at 6 Mb/s), so a saturated bench host adds as little jitter to the delay as it can.
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(10))
    print("ready", flush=True)
    try:
        forward(fd_a, fd_b, delay_s, sys.stdin.fileno())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
