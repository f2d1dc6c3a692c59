"""Frozen dataclasses as JSON objects: the one mapping behind the data-channel messages and the recording timeline.

A field ``name_`` is the key ``name`` (so ``from_`` can be a field); None is left out; tuples become lists; a nested
mapped value becomes an object, with or without its own ``"type"`` as the subclass says. Decoding is the
constructor's job: ``from_dict`` only matches keys to fields and asks the subclass for its error when one is missing.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, ClassVar

Json = dict[str, Any]


class JsonMapped:
    TYPE: ClassVar[str]
    NESTED_TYPE: ClassVar[bool] = True  # whether a nested value keeps its "type" key

    @classmethod
    def missing(cls, key: str) -> Exception:
        """The error for a required key the object lacks (each protocol has its own error tree)."""
        raise NotImplementedError

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
                raise cls.missing(key)
        return cls(**arguments)


def _jsonable(value: object) -> object:
    if isinstance(value, JsonMapped):
        data = value.to_dict()
        if not value.NESTED_TYPE:
            del data["type"]
        return data
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value
