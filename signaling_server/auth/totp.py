"""The optional second factor: RFC 6238 time-based one-time passwords (6 digits, 30 s), through pyotp.

A code is accepted for its own 30-second step and the steps either side (phones drift), and only once: the step
it was accepted for is stored, and a code of that step or an earlier one is refused afterwards.
"""

from __future__ import annotations

import hmac
import io
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno

ISSUER = "teleus"
_WINDOW = 1  # steps accepted either side of now


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str  # otpauth://totp/... for an authenticator app
    qr_svg: str  # the same URI as a QR code (SVG)


def new_enrolment(username: str) -> Enrolment:
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, border=2, dark="#000", light="#fff", xmldecl=False)
    return Enrolment(secret, uri, out.getvalue().decode())


def accepted_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step `code` is valid for around `now` and later than `last_step`, or None when it is not."""
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    step_now = int(now.timestamp()) // totp.interval
    for step in range(step_now - _WINDOW, step_now + _WINDOW + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.at(step * totp.interval), code):
            return step
    return None
