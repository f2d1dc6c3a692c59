"""Placeholder: filled in by the recordings work (issue 4)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
