"""bench/live.py's ``--pin``: the senders and Chromium on separate cores (no timing here: the bench reports)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench import live


def test_pin_puts_the_senders_on_core_0_and_chromium_on_core_1(tmp_path: Path) -> None:
    opts = live.parse(["--pin", "--no-vp8", "--resolutions", "720p", "--cases", "floor_h264,teleus"])
    assert opts.pin
    edge = live.edge_command(opts, "edge-teleus-720p", "http://127.0.0.1:1/", "720p", tmp_path)
    floor = live.floor_command(opts, "floor-h264-720p", 1280, 720, "h264")
    assert edge[:3] == ["taskset", "-c", "0"] and edge[3:6] == [live.PYTHON, "-m", "bench.stamped_edge"]
    assert floor[:3] == ["taskset", "-c", "0"] and floor[3:6] == [live.PYTHON, "-m", "bench.floor_sender"]
    assert opts.commands == {"edge-teleus-720p": edge, "floor-h264-720p": floor}  # what the report records

    wrapper = live.chromium_executable(opts, tmp_path)
    assert wrapper != live.CHROMIUM
    # the wrapper really runs Chromium on core 1 only: ask it for its version under taskset
    out = subprocess.run([wrapper, "--version"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "Chromium" in out
    assert f"taskset -c 1 {live.CHROMIUM}" in Path(wrapper).read_text()


def test_without_pin_the_command_lines_are_bare(tmp_path: Path) -> None:
    opts = live.parse(["--no-vp8"])
    assert not opts.pin
    assert live.edge_command(opts, "edge", "http://127.0.0.1:1/", "720p", tmp_path)[0] == live.PYTHON
    assert live.floor_command(opts, "floor", 1280, 720, "h264")[0] == live.PYTHON
    assert live.chromium_executable(opts, tmp_path) == live.CHROMIUM
