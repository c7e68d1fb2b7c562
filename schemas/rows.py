"""Wire models → ClickHouse rows (as Arrow tables), one entry per stored table.

Column names equal wire field names; epoch-millisecond fields become ``DateTime64(3, 'UTC')``.
``omitted`` fields stay on Kafka only (the dead letters' raw bytes, for instance);
``derived`` columns are computed from the record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from schemas.dead_letters import payload_sha256
from schemas.records import (
    AudioLegStats,
    CallEvent,
    CallSummary,
    Cdr,
    CommandResult,
    DeadLetter,
    Decision,
    Feedback,
    Incident,
    ModelPromotion,
    PbxCommand,
    Recording,
    RecordingAudit,
    Transcript,
    WireRecord,
)

_ARROW: dict[Any, pa.DataType] = {
    str: pa.string(),
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
    dict[str, str]: pa.map_(pa.string(), pa.string()),
    dict[str, float]: pa.map_(pa.string(), pa.float64()),
}
TIMESTAMP = pa.timestamp("ms", tz="UTC")


def is_timestamp(field_name: str) -> bool:
    """``*_ms`` fields are instants, except durations (``*duration_ms``)."""
    return field_name.endswith("_ms") and not field_name.endswith("duration_ms")


@dataclass(frozen=True)
class StoredTable:
    name: str
    model: type[WireRecord]
    topic_key: str  # TopicCatalog key of the topic the sink reads it from
    omitted: frozenset[str] = frozenset()
    derived: dict[str, tuple[pa.DataType, Callable[[Any], Any]]] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        fields = [f for f in self.model._options.fields if f not in self.omitted]
        return fields + list(self.derived)

    def arrow_schema(self) -> pa.Schema:
        types = self.model._options.fields
        cols = [
            pa.field(f, TIMESTAMP if is_timestamp(f) else _ARROW[types[f]])
            for f in types
            if f not in self.omitted
        ]
        cols += [pa.field(name, dtype) for name, (dtype, _) in self.derived.items()]
        return pa.schema(cols)

    def to_arrow(self, records: Sequence[WireRecord]) -> pa.Table:
        schema = self.arrow_schema()
        columns: dict[str, list[Any]] = {name: [] for name in schema.names}
        for record in records:
            for name in schema.names:
                if name in self.derived:
                    columns[name].append(self.derived[name][1](record))
                else:
                    value = getattr(record, name)
                    columns[name].append(list(value.items()) if isinstance(value, dict) else value)
        arrays = []
        for f in schema:
            if f.type == TIMESTAMP:
                arrays.append(pa.array(columns[f.name], pa.int64()).cast(TIMESTAMP))
            else:
                arrays.append(pa.array(columns[f.name], f.type))
        return pa.Table.from_arrays(arrays, schema=schema)


STORED_TABLES: tuple[StoredTable, ...] = (
    StoredTable("call_events", CallEvent, "call_events"),
    StoredTable("cdrs", Cdr, "cdr"),
    StoredTable("commands", PbxCommand, "commands"),
    StoredTable("command_results", CommandResult, "command_results"),
    StoredTable("decisions", Decision, "decisions"),
    StoredTable("call_summaries", CallSummary, "summaries"),
    StoredTable("audio_leg_stats", AudioLegStats, "audio_stats"),
    StoredTable("incidents", Incident, "incidents"),
    StoredTable("transcripts", Transcript, "transcripts"),
    StoredTable("feedback", Feedback, "feedback"),
    StoredTable("model_promotions", ModelPromotion, "models"),
    StoredTable(
        "dead_letters",
        DeadLetter,
        "dead_letters",
        omitted=frozenset({"key_b64", "payload_b64"}),
        derived={"payload_sha256": (pa.string(), payload_sha256)},
    ),
    StoredTable("recordings", Recording, "recordings"),
    StoredTable("recording_audit", RecordingAudit, "recording_audit"),
)
