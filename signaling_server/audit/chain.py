"""The hash chain of the audit trail, pure: canonical bytes of a row, its hash, and the check of a run of rows.

    row_hash(n) = SHA-256( prev_hash(n) ‖ canonical JSON of row n's fields )      prev_hash(n) = row_hash(n − 1)

The first row's `prev_hash` is :data:`GENESIS`. The fields are every column but the two hashes, the sequence number
included, so an edited field, a deleted row (a gap in `seq` and a `prev_hash` that names no row) and a reordering
(swapped sequence numbers) each break the chain at the first row they touch. The canonical JSON sorts keys, has no
spaces and writes text as UTF-8 (not \\u escapes); time is ISO 8601 UTC with microseconds.

What the chain cannot show on its own is a cut tail (the newest rows deleted): `Verifier` takes an anchor, a
`(seq, row_hash)` written down elsewhere earlier (`teleus audit verify` prints the head), and checks it is still
there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64

# Every column of AuditEvent but the two hashes, in the order the console and the CSV show them.
FIELDS = (
    "seq",
    "at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "actor_role",
    "site_id",
    "client",
    "action",
    "method",
    "route",
    "object_kind",
    "object_id",
    "study_id",
    "patient_id",
    "detail",
    "status",
    "outcome",
)


def stamp(at: datetime) -> str:
    """The one text form of a row's time (ISO 8601, UTC, microseconds)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(fields: Mapping[str, Any]) -> bytes:
    """The bytes hashed for a row: its fields (datetimes as :func:`stamp`) as canonical JSON."""
    plain = {name: stamp(fields[name]) if isinstance(fields[name], datetime) else fields[name] for name in FIELDS}
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def row_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(fields)).hexdigest()


@dataclass(frozen=True)
class Break:
    """The first row where the chain does not hold, and why."""

    seq: int
    reason: str


@dataclass(frozen=True)
class Verdict:
    rows: int
    head_seq: int  # 0: an empty trail
    head_hash: str
    broken: Break | None

    @property
    def intact(self) -> bool:
        return self.broken is None


class Verifier:
    """Fed the rows in `seq` order (each a mapping of FIELDS plus `prev_hash` and `row_hash`), it finds the first
    break: a row whose hash is not that of its fields, whose `prev_hash` is not the row before's hash, or whose `seq`
    does not follow the row before's (a gap, a repeat or a reordering)."""

    def __init__(self, anchor: tuple[int, str] | None = None) -> None:
        self.rows = 0
        self.head_seq, self.head_hash = 0, GENESIS
        self.broken: Break | None = None
        self.anchor = anchor
        self._anchor_seen = False

    def feed(self, row: Mapping[str, Any]) -> bool:
        """Check one more row; False once the chain is broken (feed no more)."""
        if self.broken is not None:
            return False
        seq = int(row["seq"])
        if seq != self.head_seq + 1:
            return self._break(seq, f"sequence number {seq} follows {self.head_seq} (a row was deleted or moved)")
        if row["prev_hash"] != self.head_hash:
            return self._break(seq, "its prev_hash is not the hash of the row before it (a row was deleted or moved)")
        if row_hash(row["prev_hash"], row) != row["row_hash"]:
            return self._break(seq, "its fields do not hash to its row_hash (the row was edited)")
        if self.anchor is not None and seq == self.anchor[0]:
            if row["row_hash"] != self.anchor[1]:
                return self._break(seq, "its row_hash is not the anchor's (the trail was rewritten from here on)")
            self._anchor_seen = True
        self.rows += 1
        self.head_seq, self.head_hash = seq, row["row_hash"]
        return True

    def _break(self, seq: int, reason: str) -> bool:
        self.broken = Break(seq, reason)
        return False

    def verdict(self) -> Verdict:
        broken = self.broken
        if broken is None and self.anchor is not None and not self._anchor_seen:
            anchor_seq = self.anchor[0]
            broken = Break(anchor_seq, f"the anchor's row {anchor_seq} is gone (the newest rows were cut off)")
        return Verdict(self.rows, self.head_seq, self.head_hash, broken)


def parse_anchor(text: str) -> tuple[int, str]:
    """`SEQ:SHA256` as `teleus audit verify` prints the head; ValueError when it is not."""
    seq, _, digest = text.strip().partition(":")
    if not seq.isdigit() or int(seq) < 1 or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"an anchor is SEQ:SHA256 (a row number and its 64 hex digits), not {text!r}")
    return int(seq), digest
