"""A STOW-RS client (PS3.18 §10.5): the edge's Part 10 files to ``{server}/dicomweb/studies``.

One request is ``POST`` with ``Content-Type: multipart/related; type="application/dicom"; boundary=…``, one
part per file, the device credential as ``Authorization: Bearer …``, and ``Accept: application/dicom+json``.
The answer is read per instance:

- 200 OK: every instance stored (a body listing Referenced SOP Sequence is read but not required);
- 202 Accepted: those in Referenced SOP Sequence (0008,1199) are stored, those in Failed SOP Sequence
  (0008,1198) failed with their Failure Reason (0008,1197);
- 409 Conflict: nothing stored; the Failed SOP Sequence says why per instance. Failure reason 0111H
  (duplicate SOP instance) means the server already holds this UID: for an outbox whose UIDs name one
  capture each, that is an acknowledgement, not a failure.

The teleus server adds its stable error code and message to each failed item in a private block (creator
"TELEUS 1.0", (0009,xx01) code, (0009,xx02) message); they are kept in ``StowResult.reasons``.

Failure reasons A7xxH (out of resources) and 0110H (processing failure) are the server's trouble and are
retried (the outbox gives a file up after a few 0110H in a row); any other reason is a refusal of that file:
A9xxH, Cxxx (C122H: a transfer syntax the server does not know; C000H: an object it cannot understand or will
not take, such as one over its image limits), 0124H.

Errors (edge_capture/errors.py)::

    EdgeError
    └── StowError(code, message, status, retryable, retry_after)
          retryable: network errors and timeouts (code "network_error"), 5xx, 408 and 429 (honouring Retry-After)
          permanent: any other 4xx, with the server's {"error": code, "message": text} surfaced;
                     401 and 403 are about the device, not the file (``blames_file`` is False)
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from edge_capture.errors import StowError

logger = logging.getLogger(__name__)

REFERENCED_SOP_SEQUENCE = "00081199"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_INSTANCE_UID = "00081155"
FAILURE_REASON = "00081197"
DUPLICATE_SOP_INSTANCE = 0x0111
PROCESSING_FAILURE = 0x0110
RETRYABLE_HTTP = frozenset({408, 429})
DEVICE_HTTP = frozenset({401, 403})
TELEUS_CREATOR = "TELEUS 1.0"


def failure_is_retryable(reason: int) -> bool:
    return reason == PROCESSING_FAILURE or 0xA700 <= reason <= 0xA7FF


@dataclass(frozen=True)
class StowResult:
    """The server's answer per SOP Instance UID sent."""

    status: int
    stored: frozenset[str]
    failed: Mapping[str, int] = field(default_factory=dict)  # SOP Instance UID -> Failure Reason
    reasons: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # UID -> teleus (code, message)

    def acknowledged(self, sop_instance_uid: str) -> bool:
        """Stored now, or already held by the server (a duplicate)."""
        return sop_instance_uid in self.stored or self.failed.get(sop_instance_uid) == DUPLICATE_SOP_INSTANCE


def multipart_body(files: Mapping[str, bytes]) -> tuple[str, bytes]:
    """(Content-Type header, body) of a multipart/related request of application/dicom parts."""
    boundary = uuid.uuid4().hex
    while any(boundary.encode() in data for data in files.values()):  # never in practice; cheap to make sure
        boundary = uuid.uuid4().hex
    parts = []
    for data in files.values():
        parts += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), data, b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return f'multipart/related; type="application/dicom"; boundary={boundary}', b"".join(parts)


def _instances(body: Any, keyword: str) -> list[dict[str, Any]]:
    if isinstance(body, list):  # some servers answer a list of one dataset
        body = body[0] if body else {}
    if not isinstance(body, dict):
        return []
    items = body.get(keyword, {}).get("Value", []) if isinstance(body.get(keyword), dict) else []
    return [item for item in items if isinstance(item, dict)]


def _value(item: dict[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value", []) if isinstance(item.get(tag), dict) else []
    return values[0] if values else None


def _reason(item: dict[str, Any]) -> int:
    value = _value(item, FAILURE_REASON)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0  # 0: the server gave none


def _teleus_reason(item: dict[str, Any]) -> tuple[str, str] | None:
    """The teleus server's stable (code, message) in its private block (creator "TELEUS 1.0", group 0009)."""
    for slot in range(0x10, 0x100):
        if _value(item, f"0009{slot:04X}") == TELEUS_CREATOR:
            code, message = _value(item, f"0009{slot:02X}01"), _value(item, f"0009{slot:02X}02")
            return (code, str(message or "")) if isinstance(code, str) else None
    return None


def parse_response(status: int, body: Any, sent: list[str]) -> StowResult:
    """Per-instance outcome from a 200, 202 or 409 answer with its DICOM JSON body (None when absent)."""
    stored = {_value(i, REFERENCED_SOP_INSTANCE_UID) for i in _instances(body, REFERENCED_SOP_SEQUENCE)}
    failed, reasons = {}, {}
    for item in _instances(body, FAILED_SOP_SEQUENCE):
        uid = _value(item, REFERENCED_SOP_INSTANCE_UID)
        if isinstance(uid, str):
            failed[uid] = _reason(item)
            if (reason := _teleus_reason(item)) is not None:
                reasons[uid] = reason
    if status == 200:
        stored |= set(sent)  # 200 means all of them, whatever the body lists
    stored.discard(None)
    return StowResult(status, frozenset(str(uid) for uid in stored), failed, reasons)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return None  # an HTTP date: rare enough to fall back on our own backoff


class StowClient:
    """POSTs Part 10 files to one server with one device credential; one aiohttp session, made on first use."""

    def __init__(
        self,
        server: str,
        credential: str,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = server.rstrip("/") + "/dicomweb/studies"
        self._credential = credential
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def store(self, files: Mapping[str, bytes]) -> StowResult:
        """Send the files (SOP Instance UID -> Part 10 bytes); raises StowError when the request failed."""
        if not files:
            raise ValueError("nothing to store")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        content_type, body = await asyncio.to_thread(multipart_body, files)  # a clip is tens of MB
        headers = {
            "Content-Type": content_type,
            "Accept": "application/dicom+json",
            "Authorization": f"Bearer {self._credential}",
        }
        try:
            # BytesIO shares the bytes and lets aiohttp send them in chunks without blocking the loop
            async with self._session.post(self.url, data=io.BytesIO(body), headers=headers, ssl=self._ssl) as response:
                status = response.status
                text = await response.text(errors="replace")
                retry_after = _retry_after(response.headers)
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise StowError("network_error", str(error) or type(error).__name__, retryable=True) from error
        try:
            parsed: Any = json.loads(text) if text.strip() else None
        except json.JSONDecodeError:
            parsed = None
        if status in (200, 202, 409):
            result = parse_response(status, parsed, list(files))
            if status != 409 or result.failed:
                return result
        raise self._error(status, parsed, text, retry_after)

    @staticmethod
    def _error(status: int, parsed: Any, text: str, retry_after: float | None) -> StowError:
        code, message = f"http_{status}", text.strip()[:500] or f"HTTP {status}"
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            code, message = parsed["error"], str(parsed.get("message", ""))
        retryable = status >= 500 or status in RETRYABLE_HTTP
        return StowError(code, message, status, retryable, retry_after)
