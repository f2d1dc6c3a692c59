"""bench/network.py in short: one loss case through the lab's link, with the real server, edge and console.

It checks the report's shape and that video flowed in every window, not the figures: they depend on the machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import network

pytestmark = [pytest.mark.netlab, pytest.mark.skipif(os.geteuid() != 0, reason="the network lab needs root")]


@pytest.mark.timeout(400)
async def test_a_short_loss_case_reports_a_timeline_of_three_windows(tmp_path: Path) -> None:
    opts = network.Options(cases=["loss5"], baseline=3, impaired=4, recovery=3, warmup=2, log_dir=tmp_path)
    report = await network.run(opts)

    assert report["errors"] == [], report["errors"]
    case = report["cases"]["loss5"]
    assert case["impairment"]["loss_percent_each_way"] == 5.0
    assert set(case["windows"]) == {"baseline", "impaired", "recovery"}
    phases = [row["phase"] for row in case["timeline"]]
    assert phases == sorted(phases, key=network.PHASES.index)  # one window after the other
    assert {p: phases.count(p) for p in network.PHASES} == {"baseline": 3, "impaired": 4, "recovery": 3}
    baseline = case["windows"]["baseline"]
    assert baseline["fps_decoded"] > 0 and baseline["bitrate_mbps"] > 0
    assert baseline["latency_ms"]["glass_to_glass"]["n"] > 0  # stamped frames were read
    # 5 % loss may stall the picture for seconds (a lost packet of a keyframe): video somewhere after the baseline
    later = [row for row in case["timeline"] if row["phase"] != "baseline"]
    assert sum(row["frames_stamped"] for row in later) > 0
    assert all(
        set(w) >= {"fps_decoded", "bitrate_mbps", "latency_ms", "freezes_over_1s"} for w in case["windows"].values()
    )
    # the edge reported what its encoder runs at
    assert any(row["edge_encoder_mbps"] for row in case["timeline"])
    # the impairment was on the wire: the page saw packets lost while it lasted
    assert case["windows"]["impaired"]["packets_lost"] > 0
    assert {"latency_under_200ms_s", "bitrate_back_to_80pct_s"} <= set(case["responses"])
    assert [t["target"].split(":")[0] for t in report["targets"]] == ["loss5"] * 3
    assert all({"target", "value", "pass"} <= set(t) for t in report["targets"])
    assert (tmp_path / "edge-loss5.log").exists()
