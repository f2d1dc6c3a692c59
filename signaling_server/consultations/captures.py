"""Capture requests during a live consultation: who may ask, what they may ask for.

The request travels REST → server → the edge's signaling socket (PROTOCOL.md §2 `capture`), so a script can
capture exactly as the console does. The edge takes the source frame from its own ring (never the decoded
stream), writes DICOM and uploads it by STOW-RS; the room hears `capture-status` at each step.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import select

from signaling_server import errors
from signaling_server.appkeys import DB
from signaling_server.auth.identity import Caller
from signaling_server.consultations.service import ConsultationView
from signaling_server.consultations.state import ConsultationState
from signaling_server.db.models import Instance, Study
from signaling_server.signaling.messages import CaptureCommand, CaptureStatus
from signaling_server.signaling.rooms import ROOMS

if TYPE_CHECKING:
    from signaling_server.dicomstore.ingest import StoredInstance

KINDS = ("still", "clip")
MAX_CLIP_SECONDS = 10.0
MAX_LABELS_BYTES = 2048


def check(caller: Caller, view: ConsultationView, data: dict[str, Any]) -> CaptureCommand:
    """Validate a capture request from the consultation's expert or a sonographer of its site; the answer is the
    command the edge receives (the one capture request of both sides: the edge derives its own from it)."""
    user = caller.require_user("expert", "sonographer")
    consultation = view.consultation
    if user.role == "expert" and consultation.expert_id != user.id:
        raise errors.NotParticipant("only the consultation's expert captures; observers watch")
    if user.role == "sonographer" and user.site_id != consultation.site_id:
        raise errors.NotParticipant("you are not part of this consultation")
    if consultation.state != ConsultationState.LIVE:
        raise errors.InvalidTransition(
            f"captures are taken during a live consultation; this one is {consultation.state}"
        )
    kind = data.get("kind", "still")
    if kind not in KINDS:
        raise errors.InvalidRequest("kind: use 'still' or 'clip'")
    seconds = data.get("seconds")
    if kind == "clip":
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0.5 <= seconds <= MAX_CLIP_SECONDS:
            raise errors.InvalidRequest(f"seconds: a clip lasts 0.5 to {MAX_CLIP_SECONDS:g} s")
        seconds = float(seconds)
    else:
        seconds = None
    labels = data.get("labels", {})
    if not isinstance(labels, dict) or len(json.dumps(labels)) > MAX_LABELS_BYTES:
        raise errors.InvalidRequest(f"labels: a JSON object of at most {MAX_LABELS_BYTES} bytes")
    at = data.get("frame_capture_ms")
    if at is not None and (not isinstance(at, int | float) or isinstance(at, bool) or at <= 0):
        raise errors.InvalidRequest("frame_capture_ms: the edge-clock capture time of a displayed frame, or null")
    return CaptureCommand(
        id=secrets.token_hex(8),
        kind=kind,
        seconds=seconds,
        labels=labels,
        frame_capture_ms=None if at is None else float(at),
        by=user.name,
        by_role=user.role,
    )


# The images the console's strip shows; a presentation state (the marks) travels with its image, not as a tile.
ANNOUNCED_CLASSES = ("1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.3.1")  # US Image, US Multi-frame


async def announce_stored(app: web.Application, stored: StoredInstance) -> None:
    """Tell a live consultation's room that one of its captures is stored and searchable."""
    if stored.sop_class_uid not in ANNOUNCED_CLASSES:
        return
    async with app[DB]() as db:
        row = (
            await db.execute(
                select(Study.consultation_id, Instance.frames)
                .join(Instance, Instance.study_id == Study.id)
                .where(Instance.sop_uid == stored.sop_uid)
            )
        ).first()
    if row is None or row[0] is None:
        return
    room = app[ROOMS].existing(row[0])
    if room is not None:
        detail = {"study_uid": stored.study_uid, "series_uid": stored.series_uid, "frames": row[1]}
        room.broadcast(CaptureStatus(None, "stored", stored.sop_uid, detail))
