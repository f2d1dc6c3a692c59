"""bench/fuzz.py in short (300 cases against a real `teleus server` subprocess): every check of `make fuzz` but the
memory one (too noisy over so few cases on a shared machine; `make fuzz` checks it over 10 000)."""

from __future__ import annotations

from pathlib import Path

from bench import fuzz


async def test_300_malformed_cases_leave_the_server_whole(tmp_path: Path) -> None:
    report = await fuzz.run(cases=300, seed=20260101, log_dir=tmp_path, warmup=30, broadcasts=20)
    checks = {name: ok for name, ok in report["checks"].items() if name != "rss_within_10_percent"}
    assert all(checks.values()), (checks, {k: v for k, v in report.items() if k.startswith("samples_") and v})
    assert report["cases"] == 300 and set(report["by_kind"]) == {"ws", "rest", "stow"}
    assert report["responses_5xx"] == 0 and report["partial_writes"] == {}
    assert report["fresh_member"]["broadcasts_received"] == 40
    assert report["rss_mb"]["before"] and report["rss_mb"]["after"]
