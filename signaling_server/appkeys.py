"""The server's core shared state, declared once as typed AppKeys: settings, the database, the QC weights, the clock.

A feature's own resource (the rooms, the DICOM blob store, the forwarder, the offline QC scorer…) has its key
declared once beside its class, in the feature's module (e.g. signaling_server/signaling/rooms.py `ROOMS`), so the
core never imports a feature, not even for a type; the app factory (app.py) is the one place that sets them all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from signaling_server.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
DB = web.AppKey("db", async_sessionmaker[AsyncSession])
QC_WEIGHTS: web.AppKey[dict[str, float]] = web.AppKey("qc_weights")  # TELEUS_QC_WEIGHTS, checked at start
# The wall clock (aware UTC) that sign-in, sessions, tokens, TOTP and access grants read; a test sets its own.
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
