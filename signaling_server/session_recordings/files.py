"""Where the server keeps recording files (the store, recordings/store.py, under the data folder), and who hears that
a recording is complete."""

from __future__ import annotations

from aiohttp import web

from recordings.store import RecordingStore
from signaling_server.appkeys import QC_SCORER, SETTINGS
from signaling_server.session_recordings.service import OnComplete, nobody


def store_of(app: web.Application) -> RecordingStore:
    """The store under the app's data folder (no state of its own: the database orders the writes)."""
    return RecordingStore(app[SETTINGS].data_dir / "recordings")


def on_complete(app: web.Application) -> OnComplete:
    """Who hears that a recording became complete: the offline QC scorer, when the settings run it."""
    scorer = app.get(QC_SCORER)
    return scorer.submit if scorer is not None else nobody
