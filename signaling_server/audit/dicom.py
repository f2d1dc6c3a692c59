"""The audit rows of DICOM's own paths: an object a modality stores by C-STORE, an object the forwarder sends to
the regional PACS. (STOW-RS, QIDO-RS and WADO-RS are HTTP: the middleware audits them.)

    received   actor: the calling AE title (kind "ae", its site); client: the peer's address; status: the DICOM
               status answered; outcome: "ok" or the code of the Error Comment (`forbidden`, `invalid_dicom`…)
    forwarded  actor: this server's AE title (kind "server"); client: the destination "AET@host:port";
               status: 0 accepted, 1 not (the reason in detail.error); outcome: "ok" or "not_sent"
    worklist   actor: the calling AE title (kind "ae", its site); client: the peer's address; action "search",
               method C-FIND; status: 0 answered, else the DICOM failure status; detail: the query's keys that have
               a value ("keys"), how many items were answered and the ids of their orders (at most 100)
    rejected   (audit/rejections.py) actor: the calling AE title; client: its address; status: the A-ASSOCIATE-RJ
               result (1 permanent, 2 transient); outcome: the reason (`unknown_ae`, `address_not_allowed`, ...);
               detail: result "rejected", why, kind "first" | "summary", count, first_at, last_at, ae_titles
"""

from __future__ import annotations

from signaling_server.audit.trail import Actor, Entry

RECEIVED, FORWARDED = "DICOM C-STORE SCP", "DICOM C-STORE SCU"
WORKLIST = "DICOM MWL C-FIND SCP"
MAX_NAMED_ORDERS = 100


def received(
    *, calling_ae: str, address: str | None, sop_uid: str, status: int, comment: str, site_id: str | None
) -> Entry:
    code = comment.split(":", 1)[0].strip() if status != 0 else ""
    return Entry(
        actor=Actor("ae", calling_ae, calling_ae, "modality", site_id),
        client=address,
        action="store",
        method="C-STORE",
        route=RECEIVED,
        status=status,
        outcome=code or ("ok" if status == 0 else f"dicom_{status:04x}"),
        object_kind="instance",
        object_id=sop_uid or None,
    )


def forwarded(calling_ae: str, destination: str, sop_uid: str, error: str | None) -> Entry:
    return Entry(
        actor=Actor("server", calling_ae, calling_ae),
        client=destination,
        action="send",
        method="C-STORE",
        route=FORWARDED,
        status=0 if error is None else 1,
        outcome="ok" if error is None else "not_sent",
        object_kind="instance",
        object_id=sop_uid,
        detail={"error": error[:256]} if error is not None else {},
    )


def worklist_searched(
    *, calling_ae: str, address: str | None, site_id: str, keys: dict[str, str], order_ids: list[str], status: int
) -> Entry:
    return Entry(
        actor=Actor("ae", calling_ae, calling_ae, "modality", site_id),
        client=address,
        action="search",
        method="C-FIND",
        route=WORKLIST,
        status=status,
        outcome="ok" if status == 0 else f"dicom_{status:04x}",
        object_kind="order",
        detail={"keys": keys, "answers": len(order_ids), "orders": order_ids[:MAX_NAMED_ORDERS]},
    )
