"""Reading and validating JSON request bodies; every refusal is an InvalidRequest with a precise message."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from signaling_server import errors
from signaling_server.appkeys import SETTINGS

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


async def json_body(request: web.Request) -> dict[str, Any]:
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise errors.TooLarge(f"the body is over {limit} bytes")
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise errors.TooLarge(f"the body is over {limit} bytes")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
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
