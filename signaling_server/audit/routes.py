"""The audit trail over REST, for admins (everyone else: 403 `forbidden`); both calls are themselves audited.

    GET /api/v1/audit?filters&before=&limit=   a page of rows, newest first: {"events": [...], "next": seq|null}
    GET /api/v1/audit.csv?filters               every matching row as CSV (UTF-8 with a BOM, for spreadsheets)

The filters are search.py's. In the CSV a cell that a spreadsheet would run as a formula (it starts with =, +, -, @,
a tab or a carriage return: a patient name sent by a modality can) starts with an apostrophe.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from aiohttp import web

from signaling_server.appkeys import DB
from signaling_server.audit import search
from signaling_server.audit.chain import FIELDS, stamp
from signaling_server.auth.identity import caller
from signaling_server.db.models import AuditEvent

routes = web.RouteTableDef()

CSV_COLUMNS = (*FIELDS, "prev_hash", "row_hash")
_CSV_BATCH = 1000
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@routes.get("/api/v1/audit")
async def list_events(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    filters = search.parse_filters(request.query)
    async with request.app[DB]() as db:
        rows, next_before = await search.page(db, filters)
    return web.json_response({"events": [search.event_json(row) for row in rows], "next": next_before})


@routes.get("/api/v1/audit.csv")
async def export_csv(request: web.Request) -> web.StreamResponse:
    (await caller(request)).require_user("admin")
    filters = search.parse_filters(request.query)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="teleus-audit.csv"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    await response.write(("\ufeff" + _csv_line(CSV_COLUMNS)).encode())
    async with request.app[DB]() as db:
        query = await search.statement(db, filters)
        before: int | None = None
        while True:
            batch = query if before is None else query.where(AuditEvent.seq < before)
            rows = (await db.scalars(batch.limit(_CSV_BATCH))).all()
            if rows:
                text = "".join(_csv_line([_cell(getattr(row, name)) for name in CSV_COLUMNS]) for row in rows)
                await response.write(text.encode())
            if len(rows) < _CSV_BATCH:
                break
            before = rows[-1].seq
            db.expunge_all()
    await response.write_eof()
    return response


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    elif hasattr(value, "isoformat"):
        value = stamp(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_line(cells: Any) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()
