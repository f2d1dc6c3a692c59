"""The one error tree of the edge agent.

    EdgeError                    code                                    answered as
    ├── SourceError              bad_spec | not_found | unreadable |     `teleus edge` exits 2
    │                            no_device | read_failed
    ├── RingClosed               ring_closed                             (ends the ring's readers; never sent)
    ├── ServerError              the server's code (PROTOCOL.md §1)      `teleus edge` exits 3 when `fatal`
    │   │                        or refused (+ status)                   (device_revoked, unauthenticated)
    │   └── OffsetRefused        wrong_offset | checksum_mismatch        the upload goes on from `offset`
    ├── StowError                network_error | spool_file_missing |    retried when `retryable`
    │   │                        the server's code (+ status, retry_after)
    │   └── UploadRejected       the server's code (+ sop_instance_uid)  the file is kept in rejected/
    ├── ConfigError              insecure_server | bad_server_url |      `teleus edge` exits 1 before it starts
    │                            no_credential
    ├── SealError                spool_key_missing | bad_spool_key |     `teleus edge` exits 4 (the key file);
    │                            unknown_spool_key | not_sealed |        a spool file it concerns is kept on
    │                            spool_tampered                          disk and never sent
    ├── MessageError             bad_message | unknown_type |            data-channel `error` (PROTOCOL.md §3)
    │                            not_allowed
    └── CaptureError             capture_failed                          signaling `capture-failed` (§4)
        ├── CapturesOff          captures_off                            (no outbox, or no study to capture for)
        ├── BadCaptureRequest    bad_capture_request
        ├── NoFrame              no_frame                                (the ring holds no or too few frames)
        ├── InvalidLabels        invalid_labels
        └── DicomBuildError      invalid_study_context | laterality_required | bad_frames

Every error has a stable `code` (a class's own, or one of the few listed beside it) and a `message` for people;
`as_json()` is the `{"error": code, "message": text}` shape of the wire. The codes on the wire (data-channel
refusals, `capture-failed`) are part of PROTOCOL.md and do not change.

Not in this tree: the refusals of the pure modules the edge uses, which cannot import the edge: a capture's
labels (`LabelsError`, answered as InvalidLabels) and a calibration file (`CalibrationError`); and the shared
signaling codec's `SignalError` (signaling_server/signaling/messages.py).
"""

from __future__ import annotations


class EdgeError(Exception):
    code = "edge_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def as_json(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class SourceError(EdgeError):
    """A frame source cannot be opened or read (edge_capture/sources/base.py names the codes)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code)


class RingClosed(EdgeError, EOFError):
    """The ring was closed: no frame will ever come. Raised to waiters and to `put` after `close()`.

    Also an EOFError, as qc.live.FrameSource expects of a source that has ended."""

    code = "ring_closed"


class ServerError(EdgeError):
    """The server refused a call; `code` is the stable error code of PROTOCOL.md."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, code)
        self.status = status

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    @property
    def fatal(self) -> bool:
        """The credential itself is refused: retrying will not help."""
        return self.code in {"device_revoked", "unauthenticated"}


class OffsetRefused(ServerError):
    """409 ``wrong_offset`` or ``checksum_mismatch``: the server has ``offset`` bytes of the file; go on from there."""

    def __init__(self, status: int, code: str, message: str, offset: int) -> None:
        super().__init__(status, code, message)
        self.offset = offset


class StowError(EdgeError):
    """A STOW-RS request failed (edge_capture/dicom/stow.py says which failures are retried)."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after

    @property
    def blames_file(self) -> bool:
        """A permanent refusal of the file itself (not the network, the server's health or the credential)."""
        return not self.retryable and self.status not in (401, 403)


class UploadRejected(StowError):
    """The server refused the file for good; it is kept in rejected/."""

    def __init__(self, sop_instance_uid: str, code: str, message: str) -> None:
        super().__init__(code, message)
        self.sop_instance_uid = sop_instance_uid


class ConfigError(EdgeError):
    """The agent's own settings are unsafe or unusable (edge_capture/cli.py, edge_capture/server_url.py)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code)


class SealError(EdgeError):
    """The spool key or a sealed spool file (edge_capture/sealing/): missing or malformed key, a file sealed under
    a key this edge does not hold, a file in clear where a sealed one belongs, or a file whose authentication
    failed (changed, cut short, or not ours). The file is never uploaded as it is."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code)


class MessageError(EdgeError):
    """A refused data-channel message, answered to the page as ``{"type": "error", "code", "message"}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code)


class CaptureError(EdgeError):
    """A capture the server asked for could not be taken; answered as ``capture-failed`` with the code."""

    code = "capture_failed"


class CapturesOff(CaptureError):
    code = "captures_off"


class BadCaptureRequest(CaptureError):
    code = "bad_capture_request"


class NoFrame(CaptureError):
    code = "no_frame"


class InvalidLabels(CaptureError):
    code = "invalid_labels"


class DicomBuildError(CaptureError):
    """The DICOM objects could not be built (edge_capture/dicom/ultrasound.py names the codes)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code)
