"""High-entropy credentials: cookie sessions, API tokens, device secrets.

A credential is `<kind>_<id>_<secret>`; the database keeps only SHA-256 of the secret (the secret has 256 bits
of entropy, so a fast hash is the right tool here; memory-hard hashing is for human passwords).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

SESSION, TOKEN, DEVICE = "ses", "tok", "dev"


@dataclass(frozen=True)
class Credential:
    kind: str
    id: str
    secret: str

    def __str__(self) -> str:
        return f"{self.kind}_{self.id}_{self.secret}"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(stored_hash: str, secret: str) -> bool:
    return hmac.compare_digest(stored_hash, hash_secret(secret))


def parse(value: str) -> Credential | None:
    kind, sep, rest = value.partition("_")
    ident, sep2, secret = rest.partition("_")
    if not (sep and sep2 and kind in {SESSION, TOKEN, DEVICE} and ident and secret):
        return None
    if len(ident) > 32 or len(secret) > 128 or not ident.isalnum():
        return None
    return Credential(kind, ident, secret)
