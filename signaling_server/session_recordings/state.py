"""The recording state machine, computed in one place.

::

    recording ──end (files still arriving)──▶ uploading ──last listed file complete──▶ complete
        │  └──────────end (every listed file already complete)────────────────────────▶ complete
        └──fail──▶ failed ◀──fail── uploading

``recording``: the edge is recording the consultation and uploading as it goes. ``uploading``: the edge has
ended the recording and listed its files; some are not whole on the server yet. ``complete``: every listed file
is whole and verified by SHA-256. ``failed``: the edge reported that it cannot deliver the recording (its copy
is lost). ``complete`` and ``failed`` are final. A repeat (``complete -> complete``) is a no-op.

The one move is :func:`transition`; each move writes a ``ConsultationEvent`` of kind ``recording``
(``{"recording_id", "from", "to"}``, and the edge's ``reason`` for ``failed``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from signaling_server import errors
from signaling_server.db.models import ConsultationEvent, Recording
from signaling_server.states import IllegalMove, Machine, move

log = logging.getLogger(__name__)


class RecordingState(StrEnum):
    RECORDING = "recording"
    UPLOADING = "uploading"
    COMPLETE = "complete"
    FAILED = "failed"


FINAL_STATES = frozenset({RecordingState.COMPLETE, RecordingState.FAILED})

MACHINE = Machine(
    "recording",
    {
        RecordingState.RECORDING: {RecordingState.UPLOADING, RecordingState.COMPLETE, RecordingState.FAILED},
        RecordingState.UPLOADING: {RecordingState.COMPLETE, RecordingState.FAILED},
    },
    final=FINAL_STATES,
    log=log,
)


def after_upload(ended: bool, all_listed_complete: bool) -> RecordingState:
    """The state the files say a live (not failed) recording is in."""
    if not ended:
        return RecordingState.RECORDING
    return RecordingState.COMPLETE if all_listed_complete else RecordingState.UPLOADING


def trail(recording: Recording, old: str | None, new: str, **detail: Any) -> ConsultationEvent:
    """The consultation's event of a recording's move (``old`` None: the recording was made)."""
    return ConsultationEvent(
        consultation_id=recording.consultation_id,
        kind="recording",
        detail={"recording_id": recording.id, "from": old, "to": new, **detail},
    )


def transition(
    recording: Recording, new: RecordingState, record: Callable[[ConsultationEvent], object], **detail: Any
) -> RecordingState:
    """Move ``recording`` to ``new`` (a no-op when it is there) and ``record`` the event with ``detail``;
    raises InvalidTransition when the move is not allowed. Returns the new state."""

    def event(old: RecordingState, new: RecordingState) -> None:
        record(trail(recording, old, new, **detail))

    try:
        recording.state = move(
            MACHINE,
            RecordingState(recording.state),
            new,
            entity_id=recording.id,
            context_id=recording.consultation_id,
            on_event=event,
        )
    except IllegalMove as refused:
        raise errors.InvalidTransition(refused.message) from refused
    return new
