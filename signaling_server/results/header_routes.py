"""A site's printed-report header over REST (admins change it; docs/RESULTS.md):

    GET    /api/v1/sites/{id}/header   → {"site_id", "code", "name", "address", "phone", "logo": bool}; anyone
                                       signed in
    PUT    /api/v1/sites/{id}/header   {"name"?, "address"?, "phone"?} → the header; admins; 400 invalid_site_header
                                       (+ "field") for an unknown field, a name left empty, text over its limit
                                       (name 200, address 300, phone 40 characters) or on more than one line
    PUT    /api/v1/sites/{id}/logo     the image itself as the body, Content-Type image/png or image/jpeg → the
                                       header; admins; 415 unsupported_media_type (another type), 413 too_large
                                       (over 256 KiB), 400 invalid_logo (bytes that are not a whole image of the
                                       declared type, or over 2000 pixels a side)
    DELETE /api/v1/sites/{id}/logo     → the header without logo; admins
    GET    /api/v1/sites/{id}/logo     the logo (its checked media type, nosniff); any signed-in user; 404 without one

The changes are audited as writes of the site (audit/coverage.py); a site that does not exist answers 404.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from signaling_server import errors
from signaling_server.api import body
from signaling_server.appkeys import DB
from signaling_server.auth.identity import caller
from signaling_server.db.models import Site
from signaling_server.results import header

routes = web.RouteTableDef()


def header_json(site: Site) -> dict[str, Any]:
    return {
        "site_id": site.id,
        "code": site.code,
        "name": site.name,
        "address": site.address,
        "phone": site.phone,
        "logo": site.logo_type is not None,
    }


@routes.get("/api/v1/sites/{id}/header")
async def read_header(request: web.Request) -> web.Response:
    (await caller(request)).require_user()
    async with request.app[DB]() as db:
        site = await header.site(db, request.match_info["id"])
    return web.json_response(header_json(site))


@routes.put("/api/v1/sites/{id}/header")
async def set_header(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    changes = header.header_fields(await body.json_body(request))
    async with request.app[DB]() as db:
        site = await header.set_header(db, request.match_info["id"], changes)
    return web.json_response(header_json(site))


@routes.put("/api/v1/sites/{id}/logo")
async def set_logo(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    declared = request.content_type
    if declared not in (header.PNG, header.JPEG):
        raise errors.UnsupportedMediaType("a logo is sent as image/png or image/jpeg")
    if (request.content_length or 0) > header.MAX_LOGO_BYTES:
        raise errors.TooLarge(f"a logo is at most {header.MAX_LOGO_BYTES // 1024} KiB")
    data = await _capped_body(request, header.MAX_LOGO_BYTES)
    media_type = header.logo_type(declared, data)
    async with request.app[DB]() as db:
        site = await header.set_logo(db, request.match_info["id"], data, media_type)
    return web.json_response(header_json(site))


async def _capped_body(request: web.Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise errors.TooLarge(f"a logo is at most {limit // 1024} KiB")
        chunks.append(chunk)
    return b"".join(chunks)


@routes.delete("/api/v1/sites/{id}/logo")
async def remove_logo(request: web.Request) -> web.Response:
    (await caller(request)).require_user("admin")
    async with request.app[DB]() as db:
        site = await header.set_logo(db, request.match_info["id"], None, None)
    return web.json_response(header_json(site))


@routes.get("/api/v1/sites/{id}/logo")
async def read_logo(request: web.Request) -> web.Response:
    (await caller(request)).require_user()
    async with request.app[DB]() as db:
        logo = await header.logo_of(db, request.match_info["id"])
    if logo is None:
        raise errors.NotFound("this site has no logo")
    data, media_type = logo
    return web.Response(
        body=data, content_type=media_type, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    )
