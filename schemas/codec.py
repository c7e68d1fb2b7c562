"""Bytes on a topic ⇄ wire models, validated against the committed JSON Schema files.

``decode`` never lets a bad message escape as an arbitrary exception: it raises
:class:`MalformedMessage` with a human-readable reason, which the stream puts on the
dead-letter topic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import fastjsonschema

from schemas.json_schema import load
from schemas.records import MODELS, WireRecord

M = TypeVar("M", bound=WireRecord)

_NAMES: dict[type[WireRecord], str] = {model: name for name, model in MODELS.items()}


class MalformedMessage(ValueError):
    """A message that cannot be used; ``reason`` is safe to log (it never quotes the payload)."""

    def __init__(self, reason: str, error_type: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type


@cache
def _validator(name: str) -> Callable[[Any], Any]:
    return fastjsonschema.compile(load(name))


def model_name(model: type[WireRecord]) -> str:
    return _NAMES[model]


def decode(model: type[M], raw: bytes | None) -> M:
    """Parse and validate ``raw`` as ``model``; raise :class:`MalformedMessage` if it is not one."""
    name = _NAMES[model]
    if raw is None or raw == b"":
        raise MalformedMessage(f"{name}: empty message", "empty")
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise MalformedMessage(f"{name}: not UTF-8 text", "encoding") from None
    except json.JSONDecodeError as exc:
        raise MalformedMessage(
            f"{name}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", "json"
        ) from None
    if isinstance(data, dict) and data.get("schema_version", 1) != 1:
        raise MalformedMessage(
            f"{name}: unsupported schema_version {data.get('schema_version')!r}", "version"
        )
    try:
        _validator(name)(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        # exc.message names the field and rule, not the offending value's content.
        raise MalformedMessage(f"{name}: {exc.message}", "schema") from None
    return model.from_data(data)


def encode(record: WireRecord) -> bytes:
    """Compact JSON bytes for a wire model (the format ``decode`` accepts)."""
    return json.dumps(record.asdict(), ensure_ascii=False, separators=(",", ":")).encode()
