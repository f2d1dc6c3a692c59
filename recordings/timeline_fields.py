"""Field checks and the JSON mapping shared by the timeline's lines (recordings/timeline.py). Pure."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from recordings.jsonmap import JsonMapped

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


class JsonLine(JsonMapped):
    """The header and every timeline event (recordings/jsonmap.py does the JSON mapping)."""

    NESTED_TYPE: ClassVar[bool] = False

    @classmethod
    def missing(cls, key: str) -> Exception:
        return bad(f"{cls.TYPE}: {key} is missing")
