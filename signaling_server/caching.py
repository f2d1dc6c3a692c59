"""What a browser, a proxy or a shared clinic PC may keep of a response: nothing that carries patient data.

Every response of the server gets ``Cache-Control: no-store`` (and ``Pragma: no-cache`` for HTTP/1.0 caches):
the REST API, DICOMweb, rendered frames and thumbnails, recording media and timelines, printable reports,
teaching exports, and every error. It is set in one place, just before a response's headers go out
(``on_response_prepare``), so a handler that streams its body, a ``FileResponse`` and an answer of the error
middleware are all covered, and a handler's own weaker caching is overridden. The console's own files (``/`` and
``/static/``) carry no patient data and keep theirs. docs/SECURITY.md §9.
"""

from __future__ import annotations

from aiohttp import web

NO_STORE = "no-store"
CONSOLE_FILES = ("/static/",)
CONSOLE_PAGES = frozenset({"/"})


def carries_no_phi(path: str) -> bool:
    """The console's static files and its page: the same for everybody, safe to cache."""
    return path in CONSOLE_PAGES or path.startswith(CONSOLE_FILES)


async def no_store(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: forbid storing every response that may carry patient data."""
    if carries_no_phi(request.path):
        return
    response.headers["Cache-Control"] = NO_STORE
    response.headers["Pragma"] = "no-cache"
