"""Password hashing with Argon2id (memory-hard), through argon2-cffi."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# 46 MiB, one pass: one of OWASP's recommended Argon2id settings; a login costs ~60 ms of one core here.
_hasher = PasswordHasher(time_cost=1, memory_cost=46 * 1024, parallelism=1)

# Verified against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("teleus-no-such-user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
