"""Where the server keeps recording files (the store, recordings/store.py, under the data folder), and who hears that
a recording is complete."""

from __future__ import annotations

from aiohttp import web

from recordings.store import RecordingStore
from signaling_server.appkeys import SETTINGS
from signaling_server.session_recordings.service import OnComplete, nobody

# who hears that a recording became complete: set by the listener's own resource (the offline QC scorer)
RECORDING_COMPLETE: web.AppKey[OnComplete] = web.AppKey("recording_complete")


def store_of(app: web.Application) -> RecordingStore:
    """The store under the app's data folder (no state of its own: the database orders the writes)."""
    return RecordingStore(app[SETTINGS].data_dir / "recordings")


def on_complete(app: web.Application) -> OnComplete:
    """Who hears that a recording became complete: the offline QC scorer, when the settings run it; else nobody."""
    return app.get(RECORDING_COMPLETE, nobody)
