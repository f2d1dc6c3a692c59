"""Validators for the JSON fields of structured reports: each refusal is an InvalidRequest naming the field."""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from signaling_server.errors import InvalidRequest

E = TypeVar("E", bound=StrEnum)


def optional_number(data: Mapping[str, Any], key: str, where: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequest(f"{where}{key} must be a finite number, got {value!r}")
    return float(value)


def number(data: Mapping[str, Any], key: str, where: str) -> float:
    value = optional_number(data, key, where)
    if value is None:
        raise InvalidRequest(f"{where}{key} is required")
    return value


def choice(enum: type[E], value: object, name: str) -> E:
    if isinstance(value, str) and value in {member.value for member in enum}:
        return enum(value)
    allowed = ", ".join(member.value for member in enum)
    raise InvalidRequest(f"{name} must be one of {allowed}; got {value!r}")


def text(data: Mapping[str, Any], key: str, where: str, max_length: int) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or len(value) > max_length:
        raise InvalidRequest(f"{where}{key} must be text of at most {max_length} characters")
    return value


def json_object(data: object, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidRequest(f"{where.rstrip('.') or 'body'} must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidRequest(f"{where}{unknown[0]} is not a known field")
    return data
