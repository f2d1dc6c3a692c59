"""edge_capture.agent against the real app over TCP: the agent learns of its consultations by a long poll that
the server answers when they change (consultations/doorbell.py), and stopping the agent ends its wait."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from edge_capture.agent import EdgeAgent, EdgeConfig
from signaling_server.app import create_app
from signaling_server.consultations.doorbell import DOORBELL
from signaling_server.settings import Settings
from tests.conftest import THYROID_REQUEST, Api, seed
from tests.waiting import eventually


async def test_the_agent_waits_on_the_server_and_hears_of_a_consultation_at_once(
    db_url: str, aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    app = create_app(Settings(data_dir=tmp_path / "server", database_url=db_url))
    server = await aiohttp_server(app)
    client = await aiohttp_client(server)
    world = await seed(app)
    config = EdgeConfig(
        server_url=str(server.make_url("/")),
        credential=world.device_a_credential,
        ice_hosts=("127.0.0.1",),
        spool_dir=tmp_path / "outbox",
        recordings_dir=tmp_path / "edge-recordings",
        record=False,
        wait_seconds=30,
    )
    agent = EdgeAgent(config)
    task = asyncio.create_task(agent.run())
    sono = Api(client)
    try:
        await asyncio.wait_for(agent.ready.wait(), 60)
        bell = app[DOORBELL]
        # The agent's question is held by the server: it is not asking again every second.
        await eventually(lambda: bell.waiting(world.device_a) == 1, what="the agent's question held")
        await sono.login("sono_a")
        status, made = await sono.post("/api/v1/consultations", THYROID_REQUEST)
        assert status == 201
        await eventually(lambda: made["id"] in agent.links, what="the agent linked to the new consultation")
        # It asks again with the new version, and is held again.
        await eventually(lambda: bell.waiting(world.device_a) == 1, what="held again")
    finally:
        agent.stop()
        await asyncio.wait_for(task, 60)  # stopping ends the agent's held question at once, not after its 30 s
        await sono.close()
