"""A site's own turnaround targets, laid over the server's (TELEUS_TURNAROUND, targets.py): one hospital's CT may be
promised in 45 minutes while the district's promise stays 60 (docs/READING.md, *Turnaround targets*).

    POST /api/v1/sites/{id}/turnaround   {"turnaround": {"CT": {"routine": 45}, "CR": 20} | {}} → Site   (admins)

`{}` gives the site the server's targets again. A study's due time is computed with its site's targets when it is
examined and when its priority changes; studies already due keep their time.
"""

from __future__ import annotations

from aiohttp import web

from signaling_server import errors
from signaling_server.api import body
from signaling_server.api.representations import site_json
from signaling_server.appkeys import DB
from signaling_server.auth.identity import caller
from signaling_server.db.models import Site
from signaling_server.reading.targets import TARGETS

routes = web.RouteTableDef()


@routes.post("/api/v1/sites/{id}/turnaround")
async def set_turnaround(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    data = await body.json_body(request)
    raw = data.get("turnaround")
    try:
        request.app[TARGETS].overridden(raw)
    except ValueError as exc:
        raise errors.InvalidRequest(str(exc)) from None
    assert isinstance(raw, dict)
    async with request.app[DB]() as db:
        site = await db.get(Site, request.match_info["id"])
        if site is None:
            raise errors.NotFound("no such site")
        site.turnaround = {str(m).upper(): v for m, v in raw.items()} or None
        await db.commit()
    return web.json_response(site_json(site))
