"""Every piece of shared application state, declared once as a typed AppKey."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from signaling_server.settings import Settings

if TYPE_CHECKING:
    from signaling_server.reading.targets import Targets
    from signaling_server.signaling.rooms import RoomRegistry

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
DB = web.AppKey("db", async_sessionmaker[AsyncSession])
ROOMS: web.AppKey[RoomRegistry] = web.AppKey("rooms")
TARGETS: web.AppKey[Targets] = web.AppKey("targets")
