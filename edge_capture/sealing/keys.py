"""The spool key: a 256-bit AES key in a small text file, made on the first run, never sent anywhere.

Where it lives: ``--spool-key-file`` (``TELEUS_EDGE_SPOOL_KEY_FILE``); by default ``teleus-edge-spool.key`` beside
the outbox folder, made there (0600) on the first run. A key file given explicitly is never made by the agent
(a USB stick that is not mounted must not turn into a key on the local disk): ``--new-spool-key`` makes it.

The file holds one key per line, ``teleus-spool-key-v1 <base64>``, the first the one that seals; the others only
open files sealed before a rotation (``--new-spool-key``, :func:`edge_capture.sealing.repairs.new_key`).

A key lying next to the data protects the spools only from someone who copies the spool folders alone; with
the whole disk, the thief has the key too. docs/SECURITY.md §9 says what to do about that (full-disk encryption,
a key on a separate medium).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import stat
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge_capture.errors import SealError
from recordings.private_files import FILE_MODE, make_private_dirs, private_opener

logger = logging.getLogger(__name__)

KEY_BYTES = 32  # AES-256
KEY_ID_BYTES = 8
LINE_PREFIX = "teleus-spool-key-v1 "
DEFAULT_NAME = "teleus-edge-spool.key"
COMMENT = "# teleus edge spool key (docs/SECURITY.md §9): keep it private, and away from the spool's disk if you can\n"


@dataclass(frozen=True)
class SpoolKey:
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise SealError("bad_spool_key", f"a spool key is {KEY_BYTES} bytes, not {len(self.secret)}")

    @classmethod
    def generate(cls) -> SpoolKey:
        return cls(AESGCM.generate_key(bit_length=KEY_BYTES * 8))

    @cached_property
    def id(self) -> bytes:
        """Names the key in every file it seals (a hash of the key: it tells nothing about the key itself)."""
        return hashlib.sha256(b"teleus spool key id\0" + self.secret).digest()[:KEY_ID_BYTES]

    @cached_property
    def aead(self) -> AESGCM:
        return AESGCM(self.secret)


@dataclass(frozen=True)
class Keyring:
    """The key that seals (first) and the older keys that still open files sealed before a rotation."""

    keys: tuple[SpoolKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise SealError("bad_spool_key", "a key file holds at least one key")

    @classmethod
    def generate(cls) -> Keyring:
        return cls((SpoolKey.generate(),))

    @property
    def current(self) -> SpoolKey:
        return self.keys[0]

    def find(self, key_id: bytes) -> SpoolKey | None:
        return next((key for key in self.keys if key.id == key_id), None)


def default_key_file(spool_dir: Path) -> Path:
    """Beside the outbox folder (not in it: a copy of the spool folder alone leaves the key behind)."""
    return spool_dir.parent / DEFAULT_NAME


def encode(keyring: Keyring) -> str:
    return COMMENT + "".join(LINE_PREFIX + base64.b64encode(k.secret).decode() + "\n" for k in keyring.keys)


def decode(text: str, where: str) -> Keyring:
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith(LINE_PREFIX):
            raise SealError("bad_spool_key", f"{where}:{number}: not a teleus spool key line")
        try:
            secret = base64.b64decode(line[len(LINE_PREFIX) :].strip(), validate=True)
        except (binascii.Error, ValueError):
            raise SealError("bad_spool_key", f"{where}:{number}: the key is not base64") from None
        keys.append(SpoolKey(secret))
    if not keys:
        raise SealError("bad_spool_key", f"{where} holds no key")
    return Keyring(tuple(keys))


def load(path: Path, *, create: bool = False) -> Keyring:
    """The keys in ``path``; with ``create``, a new key file is made (0600) when there is none yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if not create:
            raise SealError(
                "spool_key_missing", f"no spool key at {path}: make one with --new-spool-key (docs/SECURITY.md §9)"
            ) from None
        keyring = Keyring.generate()
        make_private_dirs(path.parent)
        try:
            with open(path, "x", encoding="utf-8", opener=private_opener) as out:
                out.write(encode(keyring))
                out.flush()
                os.fsync(out.fileno())
        except FileExistsError:  # another agent on the same folder made it meanwhile: use that one
            return load(path)
        logger.info("spool key: made a new one at %s", path)
        return keyring
    except (OSError, UnicodeDecodeError) as exc:
        raise SealError("bad_spool_key", f"cannot read the spool key {path}: {exc}") from None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning("spool key %s can be read by other accounts (%o): chmod 600 it", path, mode)
    return decode(text, str(path))


def save(path: Path, keyring: Keyring) -> None:
    """Atomically (temporary file, fsync, rename, fsync of the folder), 0600."""
    make_private_dirs(path.parent)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8", opener=private_opener) as out:
        out.write(encode(keyring))
        out.flush()
        os.fsync(out.fileno())
    os.chmod(temporary, FILE_MODE)
    os.replace(temporary, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
