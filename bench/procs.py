"""Child processes and /proc readings for the live bench: start, watch, stop; CPU seconds, RSS, host load."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import time
from collections import deque
from pathlib import Path
from typing import Any

import aiohttp

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# util-linux's setpriv sets the parent-death signal and then execs the command: each child gets SIGTERM if the
# bench dies, so nothing outlives a killed run. (Not a preexec_fn: Python code between fork and exec in this threaded
# process can deadlock on a lock another thread held at the fork, and leave a frozen copy of the bench behind.)
SETPRIV = shutil.which("setpriv")


def _dying_with_parent(argv: list[str]) -> list[str]:
    return [SETPRIV, "--pdeathsig", "TERM", "--", *argv] if SETPRIV else argv


def child_env() -> dict[str, str]:
    """The bench's environment without TELEUS_* settings (the children get exactly what their options say)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEUS_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Child:
    """A subprocess whose stdout is read line by line in the background (so it never blocks on a full pipe)
    and whose stderr goes to a log file. ``BENCH {json}`` lines are kept as the latest report."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.name = name
        self.proc = proc
        self.log_path = log_path
        self.lines: deque[str] = deque(maxlen=200)
        self.report: dict[str, Any] | None = None
        self.reports: deque[tuple[float, dict[str, Any]]] = deque(maxlen=2000)  # (monotonic, report)
        self._line_event = asyncio.Event()
        self._reader = asyncio.create_task(self._read(), name=f"stdout-{name}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line.startswith("BENCH "):
                with contextlib.suppress(ValueError):
                    self.report = json.loads(line[6:])
                    self.reports.append((time.monotonic(), self.report))
            else:
                self.lines.append(line)
            self._line_event.set()

    async def first_line(self, timeout: float) -> str:
        """The first stdout line that is not a report, waiting up to ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.lines:
            if not self.running:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}) before it was ready:\n{self.tail()}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{self.name} printed nothing in {timeout:.0f} s:\n{self.tail()}")
            self._line_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._line_event.wait(), min(remaining, 0.5))
        return self.lines[0]

    def tail(self, n: int = 25) -> str:
        try:
            lines = self.log_path.read_text("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    async def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` s. Safe to call twice."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await asyncio.wait_for(self.proc.wait(), 5)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        return self.proc.returncode


async def spawn(name: str, argv: list[str], log_dir: Path, cwd: Path, env: dict[str, str] | None = None) -> Child:
    """``env``: settings added to the child's environment (TELEUS_* included)."""
    log_path = log_dir / f"{name}.log"
    log = await asyncio.to_thread(_open_log, log_path)
    with log:
        proc = await asyncio.create_subprocess_exec(
            *_dying_with_parent(argv),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env={**child_env(), **(env or {})},
            cwd=cwd,
        )
    return Child(name, proc, log_path)


async def wait_up(base: str, server: Child, within: float = 90.0) -> None:
    """Until `base` answers 200 (a teleus server that came up); an error with the server's log tail if it died or
    did not come up within `within` seconds."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as probe:
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with probe.get(base, timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return
            if not server.running or time.monotonic() > deadline:
                raise RuntimeError(f"teleus server did not come up:\n{server.tail()}")
            await asyncio.sleep(0.2)


def _open_log(path: Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab")  # closed by the caller


async def run_command(
    argv: list[str], cwd: Path, timeout: float = 60.0, stdin: str | None = None, env: dict[str, str] | None = None
) -> str:
    """Run a short command to completion (`stdin`: what it reads, e.g. a password; `env`: settings added to its
    environment, as for :func:`spawn`); its stdout, or an error with its output."""
    proc = await asyncio.create_subprocess_exec(
        *_dying_with_parent(argv),
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**child_env(), **(env or {})},
        cwd=cwd,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(None if stdin is None else stdin.encode()), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    text = out.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{text}")
    return text


# ---- /proc ------------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), in seconds; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """utime + stime per native thread id of a process, in seconds."""
    out: dict[str, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[tid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def host_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle, total


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return parents


def descendants(root: int | None = None) -> list[int]:
    """This process (or ``root``) and every process below it."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    found = [root]
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def tree_cpu_seconds() -> float:
    """CPU seconds of the bench and everything it started (browser, driver, servers, senders)."""
    return sum(v for v in (cpu_seconds(pid) for pid in descendants()) if v is not None)


def chromium_pids(root: int | None = None) -> list[int]:
    """Chromium processes descending from this process (Playwright's driver launches the browser)."""
    root = os.getpid() if root is None else root
    parents = _parents()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        if "chromium" in exe or "chrome" in exe:
            found.append(pid)
    return found


def chromium_cpu_seconds() -> float:
    return sum(v for v in (cpu_seconds(pid) for pid in chromium_pids()) if v is not None)
