"""bench/load.py in small (a few consultations against a real `teleus server` on PostgreSQL and the floor): the
clients speak the real protocol, every chat line said during the hold reaches its edge, and the experts' homes hear
the churned changes on the event stream and ask for their list again. Timings are the bench's business, not this
test's."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import load


async def test_a_few_consultations_held_over_the_real_protocol(tmp_path: Path) -> None:
    args = argparse.Namespace(
        hold=6.0, settle=2.0, ramp=50.0, poll=1.0, wait=25.0, chat=1.0, sqlite=False, homes="push", churn=2.0
    )
    row = await load.one_count(3, args, tmp_path)
    for server in ("floor", "teleus"):
        held = row[server]
        assert held["client_tasks_failed"] == 0, held["client_failures"]
        assert held["errors"] == {}
        assert held["chats_not_relayed"] == 0
        assert held["changes_per_second"] > 0 and held["notices_per_second"] > 0
        assert held["rest_ms"]["n"] >= 2  # the expert's home asked again on the notices
        assert held["relay_ms"]["n"] >= 3  # every consultation's page spoke at least once
    assert row["teleus"]["server_cpu_percent"] is not None and row["teleus"]["server_rss_mb"]
