"""The hash chain, pure: a run of rows verifies, and an edit, a deletion, a reordering or a cut tail is found at the
first row it touches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from signaling_server.audit.chain import FIELDS, GENESIS, Verifier, canonical, parse_anchor, row_hash

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def chain_of(count: int) -> list[dict[str, Any]]:
    rows, prev = [], GENESIS
    for seq in range(1, count + 1):
        fields: dict[str, Any] = {name: None for name in FIELDS}
        fields.update(
            seq=seq,
            at=START + timedelta(seconds=seq),
            actor_kind="user",
            actor_id=f"u{seq % 3}",
            action="read",
            method="GET",
            route="/api/v1/studies/{id}",
            object_kind="study",
            object_id=f"s{seq}",
            detail={"query": {"PatientName": "张^三"}},
            status=200,
            outcome="ok",
        )
        digest = row_hash(prev, fields)
        rows.append({**fields, "prev_hash": prev, "row_hash": digest})
        prev = digest
    return rows


def verify(rows: list[dict[str, Any]], anchor: tuple[int, str] | None = None) -> Any:
    verifier = Verifier(anchor)
    for row in rows:
        if not verifier.feed(row):
            break
    return verifier.verdict()


def test_an_untouched_chain_verifies_and_names_its_head() -> None:
    rows = chain_of(5)
    verdict = verify(rows)
    assert verdict.intact and verdict.rows == 5
    assert (verdict.head_seq, verdict.head_hash) == (5, rows[-1]["row_hash"])
    assert verify([]).intact and verify([]).head_hash == GENESIS


def test_the_canonical_form_ignores_key_order_and_keeps_text_as_utf8() -> None:
    row = chain_of(1)[0]
    shuffled = dict(reversed(list(row.items())))
    assert canonical(row) == canonical(shuffled)
    assert "张^三".encode() in canonical(row)
    other_zone = {**row, "at": row["at"].astimezone(tz=UTC).astimezone()}  # the same instant in local time
    assert canonical(other_zone) == canonical(row)


@pytest.mark.parametrize("field", ["actor_id", "outcome", "status", "detail", "at", "object_id"])
def test_an_edited_field_breaks_the_chain_at_that_row(field: str) -> None:
    rows = chain_of(5)
    changed: dict[str, Any] = {
        "actor_id": "someone-else",
        "outcome": "forbidden",
        "status": 403,
        "detail": {},
        "at": START,
        "object_id": "s99",
    }
    rows[2] = {**rows[2], field: changed[field]}
    verdict = verify(rows)
    assert verdict.broken is not None and verdict.broken.seq == 3 and "edited" in verdict.broken.reason
    assert verdict.rows == 2


def test_a_deleted_row_breaks_the_chain_where_it_was() -> None:
    rows = chain_of(5)
    del rows[1]
    verdict = verify(rows)
    assert verdict.broken is not None and verdict.broken.seq == 3 and "deleted" in verdict.broken.reason


def test_renumbered_rows_after_a_deletion_still_break() -> None:
    rows = chain_of(5)
    del rows[1]
    for row in rows[1:]:
        row["seq"] -= 1  # the gap closed by hand
    verdict = verify(rows)
    assert verdict.broken is not None and verdict.broken.seq == 2


def test_swapped_rows_break_the_chain() -> None:
    rows = chain_of(5)
    rows[1]["seq"], rows[2]["seq"] = rows[2]["seq"], rows[1]["seq"]
    rows.sort(key=lambda row: row["seq"])
    verdict = verify(rows)
    assert verdict.broken is not None and verdict.broken.seq == 2


def test_a_cut_tail_is_found_only_against_an_anchor() -> None:
    rows = chain_of(6)
    anchor = (6, rows[-1]["row_hash"])
    assert verify(rows, anchor).intact
    cut = rows[:4]
    assert verify(cut).intact  # the chain alone cannot tell
    verdict = verify(cut, anchor)
    assert verdict.broken is not None and verdict.broken.seq == 6 and "cut off" in verdict.broken.reason


def test_a_rewritten_trail_does_not_match_its_anchor() -> None:
    rows = chain_of(4)
    anchor = (3, rows[2]["row_hash"])
    rows[2]["outcome"] = "forbidden"  # rewritten from row 3 on, every hash recomputed
    prev = rows[1]["row_hash"]
    for row in rows[2:]:
        row["prev_hash"] = prev
        row["row_hash"] = prev = row_hash(prev, row)
    assert verify(rows).intact
    verdict = verify(rows, anchor)
    assert verdict.broken is not None and verdict.broken.seq == 3 and "anchor" in verdict.broken.reason


@pytest.mark.parametrize("text", ["", "3", "0:" + "a" * 64, "3:" + "A" * 64, "3:" + "a" * 63, "x:" + "a" * 64])
def test_a_malformed_anchor_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="SEQ:SHA256"):
        parse_anchor(text)
    assert parse_anchor("12:" + "ab" * 32) == (12, "ab" * 32)
