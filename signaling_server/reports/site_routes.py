"""A site's thyroid nodule scoring system (CLINICAL.md §1: ACR TI-RADS or C-TIRADS, one choice per site).

    POST /api/v1/sites/{id}/thyroid-system   {"system": "acr_tirads" | "c_tirads"} → the site   (admins)

Every thyroid report started afterwards at the site is scored with that system and records it; reports started
before keep theirs (service.py). The site's JSON (`GET /api/v1/sites`) shows the choice as `thyroid_system`.
"""

from __future__ import annotations

import logging

from aiohttp import web

from signaling_server import errors
from signaling_server.api import body
from signaling_server.api.representations import site_json
from signaling_server.appkeys import DB
from signaling_server.auth.identity import caller
from signaling_server.db.models import Site
from signaling_server.reports.tirads import ThyroidSystem

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.post("/api/v1/sites/{id}/thyroid-system")
async def set_thyroid_system(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    data = await body.json_body(request)
    system = ThyroidSystem(body.choice(data, "system", [s.value for s in ThyroidSystem]))
    async with request.app[DB]() as db:
        site = await db.get(Site, request.match_info["id"])
        if site is None:
            raise errors.NotFound("no such site")
        old, site.thyroid_system = site.thyroid_system, system.value
        await db.commit()
    log.info("site %s thyroid system %s -> %s", site.code, old, system)
    return web.json_response(site_json(site))
