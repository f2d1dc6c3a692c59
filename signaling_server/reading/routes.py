"""The reading queue over REST (see PROTOCOL.md): list with filters, read, claim, release."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
