"""DICOM TLS (PS3.15 B.1, the BCP 195 profile): the listener's context, the PACS forward's context, and certificate
pins.

* The listener (`TELEUS_DICOM_TLS_PORT`) presents `TELEUS_DICOM_TLS_CERT`/`_KEY` and asks every peer for a client
  certificate signed by `TELEUS_DICOM_TLS_CLIENT_CA` (required unless `TELEUS_DICOM_TLS_CLIENT_CERT=optional`).
  Which peer a certificate belongs to is not decided here: a peer pins its certificate by SHA-256
  (`peers.py`), so one CA can sign every site's certificates without any site being able to act as another.
* The forward (`TELEUS_PACS_TLS=1`) checks the PACS's certificate against `TELEUS_PACS_TLS_CA` (the system's CAs
  when empty) and its host name, and presents `TELEUS_PACS_TLS_CERT`/`_KEY` when the PACS asks for one.

Both speak TLS 1.2 or newer only.
"""

from __future__ import annotations

import hashlib
import re
import ssl

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from signaling_server.settings import Settings

_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def listener_context(settings: Settings) -> ssl.SSLContext:
    """The TLS listener's server context (raises ValueError when it is not configured)."""
    if not settings.dicom_tls_cert:
        raise ValueError("TELEUS_DICOM_TLS_PORT needs TELEUS_DICOM_TLS_CERT (and its key)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.dicom_tls_cert, settings.dicom_tls_key or None)
    if settings.dicom_tls_client_ca:
        context.load_verify_locations(settings.dicom_tls_client_ca)
        context.verify_mode = ssl.CERT_REQUIRED if settings.dicom_tls_client_cert_required else ssl.CERT_OPTIONAL
    elif settings.dicom_tls_client_cert_required:
        raise ValueError("client certificates are required: set TELEUS_DICOM_TLS_CLIENT_CA to the CA that signs them")
    return context


def pacs_context(settings: Settings) -> ssl.SSLContext | None:
    """The forward's client context, or None when the PACS is reached without TLS."""
    if not settings.pacs_tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.pacs_tls_ca or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.pacs_tls_cert:
        context.load_cert_chain(settings.pacs_tls_cert, settings.pacs_tls_key or None)
    return context


def fingerprint(der: bytes) -> str:
    """The pin of a certificate: the SHA-256 of its DER encoding, lower-case hex (what `openssl x509 -fingerprint
    -sha256` prints, without the colons)."""
    return hashlib.sha256(der).hexdigest()


def parse_pin(text: str) -> str:
    """A fingerprint as people write it (upper or lower case, with or without colons); ValueError otherwise."""
    pin = text.strip().lower().replace(":", "")
    if not _FINGERPRINT.match(pin):
        raise ValueError("a certificate fingerprint is 64 hex digits (SHA-256), colons allowed")
    return pin


def read_certificate(pem: str) -> tuple[str, str]:
    """The pin and subject of a PEM certificate; ValueError when it is not one."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise ValueError("not a PEM certificate (-----BEGIN CERTIFICATE----- …)") from None
    return fingerprint(certificate.public_bytes(Encoding.DER)), certificate.subject.rfc4514_string()
