"""Where the server keeps recording files: the store (recordings/store.py) under the data folder."""

from __future__ import annotations

from aiohttp import web

from recordings.store import RecordingStore
from signaling_server.appkeys import SETTINGS


def store_of(app: web.Application) -> RecordingStore:
    """The store under the app's data folder (no state of its own: the database orders the writes)."""
    return RecordingStore(app[SETTINGS].data_dir / "recordings")
