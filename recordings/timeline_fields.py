"""Field checks and the JSON mapping shared by the timeline's lines (recordings/timeline.py). Pure."""

from __future__ import annotations

import math
from dataclasses import MISSING, fields
from typing import Any, ClassVar

Json = dict[str, Any]
MAX_ID = 64


class TimelineError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def bad(message: str) -> TimelineError:
    return TimelineError("bad_event", message)


def number(value: object, name: str, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad(f"{name} must be a finite number")
    if not low <= value <= high:
        raise bad(f"{name} must be within [{low:g}, {high:g}]")
    return float(value)


def whole(value: object, name: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise bad(f"{name} must be a whole number >= {low}")
    return value


def string(value: object, name: str, max_len: int = MAX_ID, empty: bool = False) -> str:
    if not isinstance(value, str) or len(value) > max_len or (not value and not empty):
        raise bad(f"{name} must be a string of {0 if empty else 1} to {max_len} characters")
    return value


def choice(value: object, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise bad(f"{name} must be one of {', '.join(allowed)}")
    return str(value)


def optional_string(value: object, name: str, max_len: int = MAX_ID) -> None:
    if value is not None:
        string(value, name, max_len, empty=True)


class JsonLine:
    """JSON mapping shared by the header and every event: a field ``name_`` is the key ``name``; None is left out."""

    TYPE: ClassVar[str]

    def to_dict(self) -> Json:
        data: Json = {"type": self.TYPE}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is not None:
                data[f.name.rstrip("_")] = _jsonable(value)
        return data

    @classmethod
    def from_dict(cls, data: Json) -> Any:
        arguments = {}
        for f in fields(cls):  # type: ignore[arg-type]
            key = f.name.rstrip("_")
            if key in data:
                arguments[f.name] = data[key]
            elif f.default is MISSING and f.default_factory is MISSING:
                raise bad(f"{cls.TYPE}: {key} is missing")
        return cls(**arguments)


def _jsonable(value: object) -> object:
    if isinstance(value, JsonLine):
        data = value.to_dict()
        del data["type"]
        return data
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value
