"""The one error tree of the server.

    TeleusError                      code                 HTTP
    ├── InvalidRequest               invalid_request      400
    │   ├── InvalidDicom             invalid_dicom        400
    │   │   ├── MissingAttribute     missing_attribute    400
    │   │   └── StudyMismatch        study_mismatch       400
    │   ├── BadMultipart             bad_multipart        400
    │   ├── InvalidField             (+ "field": the first bad one)
    │   │   ├── InvalidReview        invalid_review       400  (a trainer's review form)
    │   │   └── InvalidPeerReview    invalid_peer_review  400  (a RADPEER review)
    │   └── ChunkChecksumMismatch    chunk_checksum_mismatch 400
    ├── Unauthenticated              unauthenticated      401
    │   ├── BadCredentials           bad_credentials      401
    │   └── DeviceRevoked            device_revoked       401
    ├── Forbidden                    forbidden            403
    │   ├── CsrfFailed               csrf_failed          403
    │   ├── BadOrigin                bad_origin           403
    │   ├── NotParticipant           not_participant      403
    │   ├── OwnReport                own_report           403  (a reader does not peer-review their own report)
    │   └── RecordingDisabled        recording_disabled   403
    ├── NotFound                     not_found            404
    ├── NotAcceptable                not_acceptable       406
    ├── InvalidTransition            invalid_transition   409
    ├── Conflict                     conflict             409
    │   ├── StudyLocked              study_locked         409
    │   ├── NotLockHolder            not_lock_holder      409
    │   ├── EdgeOffline              edge_offline         409
    │   ├── InstanceConflict         instance_conflict    409
    │   ├── WrongOffset              wrong_offset         409  (+ "offset": the server's)
    │   │   └── ChecksumMismatch     checksum_mismatch    409  (+ "offset": 0, the file restarts)
    │   ├── FileComplete             file_complete        409
    │   ├── NotReviewable            not_reviewable       409  (not a final CR/DX/CT report)
    │   ├── AlreadyReviewed          already_reviewed     409  (one peer review per reviewer and report)
    │   ├── RecordingNotComplete     recording_not_complete 409
    │   └── ExportBusy               export_busy          409
    ├── TooLarge                     too_large            413
    ├── TooManySockets               too_many_sockets     429  (a user's or device's signaling sockets)
    ├── UnsupportedMediaType         unsupported_media_type 415
    └── NotRenderable                not_renderable       422

Errors of the recording domain (recordings/errors.py: not_found, conflict, invalid_dicom, not_renderable) are
turned into the server's error of the same code by `from_recordings`, in the same middleware.

A move a state machine refuses (`signaling_server.states.IllegalMove`, code `invalid_transition`) is raised as
`InvalidTransition` by the module that declares the machine, so callers and the signaling handler see one class.

Raised anywhere inside; turned into `{"error": code, "message": text}` only by the middleware in `app.py`
(HTTP) and by the signaling handler (WebSocket `error` messages use their own codes, see PROTOCOL.md).
"""

from __future__ import annotations

from recordings import errors as recordings_errors
from recordings.errors import RecordingsError


class TeleusError(Exception):
    code = "internal"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_json(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class InvalidRequest(TeleusError):
    code, status = "invalid_request", 400


class InvalidDicom(InvalidRequest):
    """Not a DICOM Part 10 object, or a truncated one."""

    code = "invalid_dicom"


class MissingAttribute(InvalidDicom):
    """A DICOM object without an attribute the store needs (SOP Instance UID, SOP Class UID, Study or Series UID)."""

    code = "missing_attribute"


class StudyMismatch(InvalidDicom):
    """An object sent to /dicomweb/studies/{study} that belongs to another study."""

    code = "study_mismatch"


class BadMultipart(InvalidRequest):
    code = "bad_multipart"


class InvalidField(InvalidRequest):
    """A form that does not fit; the answer names the first bad field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field

    def as_json(self) -> dict[str, str]:
        return {**super().as_json(), "field": self.field}


class InvalidReview(InvalidField):
    code = "invalid_review"


class InvalidPeerReview(InvalidField):
    code = "invalid_peer_review"


class ChunkChecksumMismatch(InvalidRequest):
    """A recording chunk whose bytes do not hash to its X-Chunk-SHA256: nothing was appended."""

    code = "chunk_checksum_mismatch"


class Unauthenticated(TeleusError):
    code, status = "unauthenticated", 401


class BadCredentials(Unauthenticated):
    code = "bad_credentials"


class DeviceRevoked(Unauthenticated):
    code = "device_revoked"


class Forbidden(TeleusError):
    code, status = "forbidden", 403


class CsrfFailed(Forbidden):
    code = "csrf_failed"


class BadOrigin(Forbidden):
    code = "bad_origin"


class NotParticipant(Forbidden):
    code = "not_participant"


class OwnReport(Forbidden):
    code = "own_report"


class RecordingDisabled(Forbidden):
    """The site's policy says its consultations are not recorded."""

    code = "recording_disabled"


class NotFound(TeleusError):
    code, status = "not_found", 404


class NotAcceptable(TeleusError):
    code, status = "not_acceptable", 406


class InvalidTransition(TeleusError):
    code, status = "invalid_transition", 409


class Conflict(TeleusError):
    code, status = "conflict", 409


class StudyLocked(Conflict):
    code = "study_locked"


class NotLockHolder(Conflict):
    code = "not_lock_holder"


class EdgeOffline(Conflict):
    code = "edge_offline"


class InstanceConflict(Conflict):
    """A SOP Instance UID already stored with different content; the stored object stays as it was."""

    code = "instance_conflict"


class WrongOffset(Conflict):
    """A recording chunk sent for another offset than the server's; the answer carries the server's offset."""

    code = "wrong_offset"

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset

    def as_json(self) -> dict[str, object]:  # type: ignore[override]
        return {**super().as_json(), "offset": self.offset}


class ChecksumMismatch(WrongOffset):
    """A whole recording file whose SHA-256 or size differs from the sender's: it was emptied and restarts at 0."""

    code = "checksum_mismatch"


class FileComplete(Conflict):
    """A chunk for a recording file the server already has whole."""

    code = "file_complete"


class NotReviewable(Conflict):
    code = "not_reviewable"


class AlreadyReviewed(Conflict):
    code = "already_reviewed"


class TooLarge(TeleusError):
    code, status = "too_large", 413


class TooManySockets(TeleusError):
    """One more signaling socket than a user (or an edge device) may hold open at once (signaling/limits.py)."""

    code, status = "too_many_sockets", 429


class UnsupportedMediaType(TeleusError):
    code, status = "unsupported_media_type", 415


class NotRenderable(TeleusError):
    """Pixel data that cannot be decoded or shown (no pixels, or a codec this server lacks)."""

    code, status = "not_renderable", 422


class RecordingNotComplete(Conflict):
    """A teaching export asked of a recording that is not whole on the server yet (or failed)."""

    code = "recording_not_complete"


class ExportBusy(Conflict):
    """A teaching export asked while another runs: the server makes one at a time."""

    code = "export_busy"


def from_recordings(exc: RecordingsError) -> TeleusError:
    """The server's error for an error of the recording domain (same code, same message)."""
    kinds: dict[type[RecordingsError], type[TeleusError]] = {
        recordings_errors.NotFound: NotFound,
        recordings_errors.Conflict: Conflict,
        recordings_errors.InvalidDicom: InvalidDicom,
        recordings_errors.NotRenderable: NotRenderable,
    }
    return next((kind(exc.message) for base, kind in kinds.items() if isinstance(exc, base)), TeleusError(exc.message))
