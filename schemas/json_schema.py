"""Language-neutral JSON Schema (draft 2020-12) files for the wire models.

The files in ``schemas/json/`` are generated from :mod:`schemas.records` and
:mod:`schemas.vocabulary` by ``callguard schemas export`` and committed, so producers in any
language can validate against them; a unit test fails when a file is out of date.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

from schemas.records import MODELS, SCHEMA_VERSION, WireRecord
from schemas.vocabulary import ENUMS, ID_FIELDS

SCHEMA_DIR = Path(__file__).parent / "json"

#: identifiers a model may leave empty: a feedback label names an incident (confirm, reject)
#: or a call (missed abuse), not always both
OPTIONAL_IDS: dict[str, frozenset[str]] = {"feedback": frozenset({"incident_id", "call_id"})}

_JSON_TYPES: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    dict[str, str]: {"type": "object", "additionalProperties": {"type": "string"}},
    dict[str, float]: {"type": "object", "additionalProperties": {"type": "number"}},
}


def schema_path(name: str, version: int = SCHEMA_VERSION) -> Path:
    return SCHEMA_DIR / f"{name}.v{version}.schema.json"


def build_schema(name: str, model: type[WireRecord]) -> dict[str, Any]:
    """JSON Schema for one wire model: every field typed, required unless it has a default."""
    fields = model._options.fields
    defaults = model._options.defaults
    enums = ENUMS.get(name, {})
    properties: dict[str, Any] = {}
    for field, annotation in fields.items():
        spec = dict(_JSON_TYPES[annotation])
        if field in enums:
            spec["enum"] = list(enums[field])
        if field in ID_FIELDS and field not in defaults and field not in OPTIONAL_IDS.get(name, ()):
            spec["minLength"] = 1
        if field.endswith(("_ms", "_s", "_bytes")) or field in {"seq", "channels", "lost_packets"}:
            spec["minimum"] = 0
        if field == "sample_rate":
            spec["enum"] = [8000, 16000, 48000]
        if field == "schema_version":
            spec["const"] = SCHEMA_VERSION
        doc = _field_doc(model, field)
        if doc:
            spec["description"] = doc
        properties[field] = spec
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"callguard/{name}.v{SCHEMA_VERSION}.schema.json",
        "title": model.__name__,
        "description": " ".join((model.__doc__ or "").split()),
        "type": "object",
        "properties": properties,
        "required": [f for f in fields if f not in defaults],
        "additionalProperties": False,
    }


def _field_doc(model: type[WireRecord], field: str) -> str:
    if field.endswith("_ms"):
        return "epoch milliseconds (UTC)"
    if field.endswith("_b64"):
        return "base64-encoded bytes"
    return ""


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, ensure_ascii=False, indent=2) + "\n"


def export(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every model's schema file; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in MODELS.items():
        path = directory / schema_path(name).name
        path.write_text(render(build_schema(name, model)), encoding="utf-8")
        written.append(path)
    return written


def stale_files() -> list[str]:
    """Names of committed schema files that differ from what the models generate."""
    return [
        name
        for name, model in MODELS.items()
        if not schema_path(name).exists()
        or schema_path(name).read_text(encoding="utf-8") != render(build_schema(name, model))
    ]


def load(name: str) -> dict[str, Any]:
    return typing.cast(dict[str, Any], json.loads(schema_path(name).read_text(encoding="utf-8")))
