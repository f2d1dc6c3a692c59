"""The one error tree of the server.

    TeleusError                      code                 HTTP
    ├── InvalidRequest               invalid_request      400
    │   ├── InvalidDicom             invalid_dicom        400
    │   │   ├── MissingAttribute     missing_attribute    400
    │   │   ├── StudyMismatch        study_mismatch       400
    │   │   ├── PixelDataMismatch    pixel_data_mismatch  400  (its length is not what Rows, Columns… say)
    │   │   └── UnknownTransferSyntax unknown_transfer_syntax 400
    │   ├── BadMultipart             bad_multipart        400
    │   ├── InvalidField             (+ "field": the first bad one)
    │   │   ├── InvalidReview        invalid_review       400  (a trainer's review form)
    │   │   ├── InvalidPeerReview    invalid_peer_review  400  (a RADPEER review)
    │   │   ├── InvalidDicomPeer     invalid_dicom_peer   400  (a DICOM peer's AE title, networks, certificate …)
    │   │   ├── InvalidSiteHeader    invalid_site_header  400  (a site's name, address or phone on printed reports)
    │   │   └── InvalidOrder         invalid_order        400  (an order's patient, exam, priority, accession …)
    │   ├── InvalidLogo              invalid_logo         400  (a site logo that is not a whole PNG or JPEG image)
    │   └── ChunkChecksumMismatch    chunk_checksum_mismatch 400
    ├── Unauthenticated              unauthenticated      401
    │   ├── BadCredentials           bad_credentials      401
    │   ├── DeviceRevoked            device_revoked       401
    │   ├── AccountDisabled          account_disabled     401  (the right password, or a token, of a disabled user)
    │   ├── TokenExpired             token_expired        401
    │   ├── TotpRequired             totp_required        401  (the password was right: send the 6-digit code too)
    │   └── TotpInvalid              totp_invalid         401  (a wrong, stale or replayed code)
    ├── Forbidden                    forbidden            403
    │   ├── CsrfFailed               csrf_failed          403
    │   ├── BadOrigin                bad_origin           403
    │   ├── ScopeForbidden           scope_forbidden      403  (a read-only token, or a token where a session is needed)
    │   ├── PasswordChangeRequired   password_change_required 403 (until the user sets a new password)
    │   ├── TotpEnrolmentRequired    totp_enrolment_required 403 (an admin without TOTP when TELEUS_ADMIN_TOTP is on)
    │   ├── NotParticipant           not_participant      403
    │   ├── OwnReport                own_report           403  (a reader does not peer-review their own report)
    │   └── RecordingDisabled        recording_disabled   403
    ├── NotFound                     not_found            404
    ├── NotAcceptable                not_acceptable       406
    ├── InvalidTransition            invalid_transition   409
    │   └── AlreadyApproved          already_approved     409  (a report approved before: archiving or final)
    ├── UnconfirmedWarnings          unconfirmed_warnings 409  (+ "warnings": ids the reader must confirm first)
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
    │   ├── ExportBusy               export_busy          409
    │   ├── ReviewCopyPending        review_copy_pending  409  (+ "retry_after": a de-identified copy is being made)
    │   ├── LastAdmin                last_admin           409  (the last active admin is not disabled or demoted)
    │   ├── KeptApart                kept_apart           409  (a registrar decided two identities are two people)
    │   └── DuplicateAccession       duplicate_accession  409  (an order's accession number is taken, for ever)
    ├── TooLarge                     too_large            413
    │   ├── ImageTooLarge            image_too_large      413  (over the pixel caps, read from the header)
    │   └── TooManyParts             too_many_parts       413  (a STOW-RS body of more parts than allowed)
    ├── UnsupportedMediaType         unsupported_media_type 415
    ├── NotRenderable                not_renderable       422
    ├── TooManySockets               too_many_sockets     429  (a user's or device's signaling sockets)
    ├── TooManyStreams               too_many_streams     429  (a user's change-notice streams in one process)
    ├── TooManyAttempts              too_many_attempts    429  (+ "retry_after" seconds and a Retry-After header)
    ├── ServerBusy                   server_busy          503  (+ "retry_after": the password hashing pool is full)
    ├── ReviewCopyFailed             review_copy_failed   503  (+ "retry_after": making the de-identified copy failed)
    └── AuditUnavailable             audit_unavailable    503  (a read of patient data is never answered unaudited)

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
        self.headers: dict[str, str] = {}  # extra HTTP headers of the answer (Retry-After)

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


class PixelDataMismatch(InvalidDicom):
    """Native pixel data whose length is not Rows × Columns × frames × samples × bits (one pad byte allowed)."""

    code = "pixel_data_mismatch"


class UnknownTransferSyntax(InvalidDicom):
    """A Transfer Syntax UID that names no transfer syntax (unknown, truncated or malformed)."""

    code = "unknown_transfer_syntax"


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


class InvalidDicomPeer(InvalidField):
    code = "invalid_dicom_peer"


class InvalidSiteHeader(InvalidField):
    code = "invalid_site_header"


class InvalidLogo(InvalidRequest):
    """A site logo whose bytes are not a PNG or JPEG image that decodes (whatever its Content-Type said)."""

    code = "invalid_logo"


class ChunkChecksumMismatch(InvalidRequest):
    """A recording chunk whose bytes do not hash to its X-Chunk-SHA256: nothing was appended."""

    code = "chunk_checksum_mismatch"


class Unauthenticated(TeleusError):
    code, status = "unauthenticated", 401


class BadCredentials(Unauthenticated):
    code = "bad_credentials"


class DeviceRevoked(Unauthenticated):
    code = "device_revoked"


class AccountDisabled(Unauthenticated):
    code = "account_disabled"


class TokenExpired(Unauthenticated):
    code = "token_expired"


class TotpRequired(Unauthenticated):
    code = "totp_required"


class TotpInvalid(Unauthenticated):
    code = "totp_invalid"


class Forbidden(TeleusError):
    code, status = "forbidden", 403


class CsrfFailed(Forbidden):
    code = "csrf_failed"


class BadOrigin(Forbidden):
    code = "bad_origin"


class ScopeForbidden(Forbidden):
    code = "scope_forbidden"


class PasswordChangeRequired(Forbidden):
    code = "password_change_required"


class TotpEnrolmentRequired(Forbidden):
    code = "totp_enrolment_required"


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


class AlreadyApproved(InvalidTransition):
    """Approving a report that was approved already (its SR is being archived, or it is final)."""

    code = "already_approved"


class UnconfirmedWarnings(TeleusError):
    """A report signed or approved while a warning (a missing Doppler angle, a likely unit slip) is unconfirmed."""

    code, status = "unconfirmed_warnings", 409

    def __init__(self, message: str, warnings: list[str]) -> None:
        super().__init__(message)
        self.warnings = warnings

    def as_json(self) -> dict[str, object]:  # type: ignore[override]
        return {**super().as_json(), "warnings": self.warnings}


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


class ImageTooLarge(TooLarge):
    """An image over the configured pixel caps (per frame, frames, decoded bytes), refused from its header."""

    code = "image_too_large"


class TooManyParts(TooLarge):
    """A STOW-RS body with more parts than `TELEUS_MAX_STOW_PARTS`: refused as soon as one part too many begins."""

    code = "too_many_parts"


class TooManySockets(TeleusError):
    """One more signaling socket than a user (or an edge device) may hold open at once (signaling/limits.py)."""

    code, status = "too_many_sockets", 429


class TooManyStreams(TeleusError):
    """One more change-notice stream (`GET /api/v1/events`) than a user may hold open in one server process."""

    code, status = "too_many_streams", 429


class UnsupportedMediaType(TeleusError):
    code, status = "unsupported_media_type", 415


class NotRenderable(TeleusError):
    """Pixel data that cannot be decoded or shown (no pixels, or a codec this server lacks)."""

    code, status = "not_renderable", 422


class AuditUnavailable(TeleusError):
    """The audit trail could not record a read of patient data, so the read is not answered (docs/SECURITY.md §6)."""

    code, status = "audit_unavailable", 503


class RecordingNotComplete(Conflict):
    """A teaching export asked of a recording that is not whole on the server yet (or failed)."""

    code = "recording_not_complete"


class ExportBusy(Conflict):
    """A teaching export asked while another runs: the server makes one at a time."""

    code = "export_busy"


class LastAdmin(Conflict):
    """Disabling or demoting the last active admin would leave nobody to administer the server."""

    code = "last_admin"


class _RetryLater(TeleusError):
    """A refusal that says when to come back: `retry_after` seconds, in the body and as Retry-After."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)
        self.headers["Retry-After"] = str(self.retry_after)

    def as_json(self) -> dict[str, object]:  # type: ignore[override]
        return {**super().as_json(), "retry_after": self.retry_after}


class TooManyAttempts(_RetryLater):
    """Sign-in attempts are backed off per account and per address; this one was not even checked."""

    code, status = "too_many_attempts", 429


class ServerBusy(_RetryLater):
    """Every slot of the password hashing pool is taken: the attempt was not checked."""

    code, status = "server_busy", 503


class ReviewCopyPending(_RetryLater, Conflict):
    """The de-identified review copy of a recording's media is being made (or queued): ask again later."""

    code, status = "review_copy_pending", 409


class ReviewCopyFailed(_RetryLater):
    """Making the de-identified review copy failed; it is tried again after `retry_after` (the original is never
    served instead)."""

    code, status = "review_copy_failed", 503


class KeptApart(Conflict):
    """A registrar rejected this pair of identities (or unlinked them): they are never linked again."""

    code = "kept_apart"


class InvalidOrder(InvalidField):
    code = "invalid_order"


class DuplicateAccession(Conflict):
    """An order's accession number is another order's already (cancelled ones included: a number is never reused)."""

    code = "duplicate_accession"


def from_recordings(exc: RecordingsError) -> TeleusError:
    """The server's error for an error of the recording domain (same code, same message)."""
    kinds: dict[type[RecordingsError], type[TeleusError]] = {
        recordings_errors.NotFound: NotFound,
        recordings_errors.Conflict: Conflict,
        recordings_errors.InvalidDicom: InvalidDicom,
        recordings_errors.NotRenderable: NotRenderable,
    }
    return next((kind(exc.message) for base, kind in kinds.items() if isinstance(exc, base)), TeleusError(exc.message))
