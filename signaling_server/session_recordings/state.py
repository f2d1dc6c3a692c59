"""The recording state machine, computed in one place.

::

    recording ──end (files still arriving)──▶ uploading ──last listed file complete──▶ complete
        │  └──────────end (every listed file already complete)────────────────────────▶ complete
        └──fail──▶ failed ◀──fail── uploading

``recording``: the edge is recording the consultation and uploading as it goes. ``uploading``: the edge has
ended the recording and listed its files; some are not whole on the server yet. ``complete``: every listed file
is whole and verified by SHA-256. ``failed``: the edge reported that it cannot deliver the recording (its copy
is lost). ``complete`` and ``failed`` are final.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from signaling_server import errors

log = logging.getLogger(__name__)


class RecordingState(StrEnum):
    RECORDING = "recording"
    UPLOADING = "uploading"
    COMPLETE = "complete"
    FAILED = "failed"


FINAL_STATES = frozenset({RecordingState.COMPLETE, RecordingState.FAILED})

_ALLOWED: dict[RecordingState, frozenset[RecordingState]] = {
    RecordingState.RECORDING: frozenset({RecordingState.UPLOADING, RecordingState.COMPLETE, RecordingState.FAILED}),
    RecordingState.UPLOADING: frozenset({RecordingState.COMPLETE, RecordingState.FAILED}),
    RecordingState.COMPLETE: frozenset(),
    RecordingState.FAILED: frozenset(),
}


def after_upload(ended: bool, all_listed_complete: bool) -> RecordingState:
    """The state the files say a live (not failed) recording is in."""
    if not ended:
        return RecordingState.RECORDING
    return RecordingState.COMPLETE if all_listed_complete else RecordingState.UPLOADING


def transition(recording_id: str, consultation_id: str, old: str, new: RecordingState) -> RecordingState:
    """Check the move ``old -> new`` (a no-op when equal) and log it; raises InvalidTransition otherwise."""
    current = RecordingState(old)
    if new is current:
        return new
    if new not in _ALLOWED[current]:
        raise errors.InvalidTransition(f"a recording that is {current} cannot become {new}")
    log.info("consultation %s: recording %s: %s -> %s", consultation_id, recording_id, current, new)
    return new
