"""edge_capture.errors: one tree, stable codes, the wire shape; the tree drawn in the docstring is the code's."""

from __future__ import annotations

import re

import pytest

from edge_capture import errors
from edge_capture.errors import (
    BadCaptureRequest,
    CaptureError,
    CapturesOff,
    DicomBuildError,
    EdgeError,
    InvalidLabels,
    MessageError,
    NoFrame,
    OffsetRefused,
    RingClosed,
    ServerError,
    SourceError,
    StowError,
    UploadRejected,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (CapturesOff("this edge does not capture for this consultation"), "captures_off"),
        (BadCaptureRequest("kind must be still or clip"), "bad_capture_request"),
        (NoFrame("no frame has been captured yet"), "no_frame"),
        (InvalidLabels("side: use R, L or none"), "invalid_labels"),
        (DicomBuildError("laterality_required", "a carotid capture needs a side"), "laterality_required"),
        (CaptureError("the disk is full"), "capture_failed"),
        (MessageError("not_allowed", "an observer follows view-only"), "not_allowed"),
        (MessageError("bad_message", "points must be a list"), "bad_message"),
        (SourceError("no_device", "nothing at /dev/video9"), "no_device"),
        (RingClosed("ring is closed"), "ring_closed"),
        (StowError("network_error", "connection refused", retryable=True), "network_error"),
        (UploadRejected("1.2.3", "invalid_dicom", "not DICOM"), "invalid_dicom"),
        (ServerError(401, "device_revoked", "this device was revoked"), "device_revoked"),
        (OffsetRefused(409, "wrong_offset", "the server has 100 bytes", 100), "wrong_offset"),
    ],
    ids=lambda x: x if isinstance(x, str) else type(x).__name__,
)
def test_every_error_has_a_stable_code_and_a_message_for_people(error: EdgeError, code: str) -> None:
    assert isinstance(error, EdgeError)
    assert error.code == code
    assert error.as_json() == {"error": code, "message": error.message}
    assert str(error).endswith(f"{code}: {error.message}")


def test_the_capture_refusals_are_answered_as_capture_errors() -> None:
    """Everything a capture can refuse with is caught as one class and answered with its own code."""
    for error in (
        CapturesOff("x"),
        BadCaptureRequest("x"),
        NoFrame("x"),
        InvalidLabels("x"),
        DicomBuildError("a", "x"),
    ):
        assert isinstance(error, CaptureError)
    assert not isinstance(MessageError("bad_message", "x"), CaptureError)


def test_server_errors_say_when_retrying_cannot_help() -> None:
    assert ServerError(401, "device_revoked", "revoked").fatal
    assert ServerError(401, "unauthenticated", "who are you").fatal
    assert not ServerError(503, "unavailable", "later").fatal
    assert str(ServerError(404, "not_found", "no such consultation")) == "404 not_found: no such consultation"
    assert OffsetRefused(409, "checksum_mismatch", "restart", 0).offset == 0


def test_stow_errors_blame_the_file_only_when_permanent_and_not_about_the_device() -> None:
    assert StowError("invalid_dicom", "not DICOM", 400).blames_file
    assert not StowError("unavailable", "later", 503, retryable=True).blames_file
    assert not StowError("device_revoked", "revoked", 401).blames_file
    assert UploadRejected("1.2.3", "study_mismatch", "wrong study").sop_instance_uid == "1.2.3"


def test_the_tree_in_the_docstring_is_the_class_tree() -> None:
    assert errors.__doc__ is not None
    drawn = re.findall(r"^\s*(?:[│ ]*[├└]── )?([A-Z][A-Za-z]+)\s{2,}", errors.__doc__, re.M)
    classes = {name: cls for name, cls in vars(errors).items() if isinstance(cls, type) and issubclass(cls, EdgeError)}
    assert set(drawn) == set(classes)
    for name, cls in classes.items():
        assert name == "EdgeError" or cls.__bases__[0].__name__ in drawn[: drawn.index(name)]
