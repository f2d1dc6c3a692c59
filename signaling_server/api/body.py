"""Reading and validating JSON request bodies; every refusal is an InvalidRequest with a precise message.

JSON is read strictly (`signaling_server/strictjson.py`): UTF-8 only, no NaN or Infinity, no lone surrogates, at
most MAX_DEPTH levels of nesting; anything else is `invalid_request` before a handler sees it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from signaling_server import errors, strictjson
from signaling_server.appkeys import SETTINGS

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_DEPTH = 32


async def json_body(request: web.Request) -> dict[str, Any]:
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise errors.TooLarge(f"the body is over {limit} bytes")
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise errors.TooLarge(f"the body is over {limit} bytes")
    return parse_object(raw)


def parse_object(raw: bytes) -> dict[str, Any]:
    """A body's JSON object (an empty body is `{}`); InvalidRequest for anything else."""
    try:
        data = strictjson.loads(raw or b"{}", max_depth=MAX_DEPTH)
    except strictjson.JsonRefused as exc:
        raise errors.InvalidRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise errors.InvalidRequest("the body must be a JSON object")
    return data


def text(data: dict[str, Any], key: str, *, max_len: int = 200, required: bool = True, default: str = "") -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise errors.InvalidRequest(f"'{key}' is required")
        return default
    if not isinstance(value, str):
        raise errors.InvalidRequest(f"'{key}' must be a string")
    value = value.strip()
    if required and not value:
        raise errors.InvalidRequest(f"'{key}' must not be empty")
    if len(value) > max_len:
        raise errors.InvalidRequest(f"'{key}' is longer than {max_len} characters")
    if any(ord(c) < 32 for c in value):
        raise errors.InvalidRequest(f"'{key}' contains control characters")
    return value


def choice(data: dict[str, Any], key: str, allowed: Iterable[str], *, required: bool = True) -> str:
    options = tuple(allowed)
    value = text(data, key, max_len=64, required=required)
    if value not in options and (required or value):
        raise errors.InvalidRequest(f"'{key}' must be one of {', '.join(repr(o) for o in options)}")
    return value


def date(data: dict[str, Any], key: str) -> str:
    value = text(data, key, max_len=10, required=False)
    if value:
        try:
            if not _DATE.match(value):
                raise ValueError
            dt.date.fromisoformat(value)
        except ValueError:
            raise errors.InvalidRequest(f"'{key}' must be a date YYYY-MM-DD") from None
    return value


def obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise errors.InvalidRequest(f"'{key}' must be an object")
    return value


def instant(raw: object, name: str) -> dt.datetime:
    """An ISO 8601 date and time that says its zone (`2026-12-07T08:00:00+08:00`, `…Z`), as UTC."""
    try:
        if not isinstance(raw, str) or len(raw) > 40:
            raise ValueError
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise errors.InvalidRequest(f"'{name}' must be an ISO 8601 date and time with its zone") from None
    if value.tzinfo is None:
        raise errors.InvalidRequest(f"'{name}' must say its time zone (e.g. 2026-12-07T08:00:00+08:00)")
    return value.astimezone(dt.UTC)
