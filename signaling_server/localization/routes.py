"""The catalogs over REST, for the console (no sign-in needed: they hold no patient data).

GET /api/v1/i18n/{language}   {"language", "messages": {"<ns>.<key>": message}}; `auto` picks by Accept-Language
"""

from __future__ import annotations

import hashlib
import json

from aiohttp import web

from signaling_server import errors
from signaling_server.localization.catalogs import CATALOGS, LANGUAGES, negotiate

routes = web.RouteTableDef()


@routes.get("/api/v1/i18n/{language}")
async def catalog(request: web.Request) -> web.Response:
    language = request.match_info["language"]
    if language == "auto":
        language = negotiate(request.headers.get("Accept-Language"))
    if language not in LANGUAGES:
        raise errors.NotFound(f"no catalog for {language!r}; there are {', '.join(LANGUAGES)}")
    body = json.dumps(
        {"language": language, "messages": request.app[CATALOGS].of(language)}, ensure_ascii=False, sort_keys=True
    ).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Language"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", charset="utf-8", headers=headers)
