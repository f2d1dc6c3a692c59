"""The errors of the recording domain (the teaching export, reading recording files).

    RecordingsError                  code
    ├── NotFound                     not_found            nothing to export at that path
    ├── Conflict                     conflict             the export's target folder is in use
    ├── InvalidDicom                 invalid_dicom        not a (readable) DICOM Part 10 object
    └── NotRenderable                not_renderable       media or pixels that cannot be decoded

The codes are the server's codes for the same conditions (signaling_server/errors.py): the server maps each
class to its own error (`errors.from_recordings`) at the HTTP edge, the CLI prints `{"error", "message"}`.
"""

from __future__ import annotations


class RecordingsError(Exception):
    code = "recordings_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_json(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class NotFound(RecordingsError):
    code = "not_found"


class Conflict(RecordingsError):
    code = "conflict"


class InvalidDicom(RecordingsError):
    code = "invalid_dicom"


class NotRenderable(RecordingsError):
    code = "not_renderable"
