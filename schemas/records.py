"""Wire models: one faust Record per topic, version 1.

Each model has a language-neutral twin in ``schemas/json/<name>.v1.schema.json`` and, where it is
stored, a ClickHouse table in ``schemas/clickhouse/``; ``tests/unit/test_schema_agreement.py``
proves the three agree.  Timestamps are integer epoch milliseconds (``*_ms``) so every language
reads them the same way.  ``origin`` says who produced a message: ``asterisk`` for the real PBX,
``simulator`` for ``callguard simulate`` traffic, so simulated data is always labelled.
"""

from __future__ import annotations

import faust

SCHEMA_VERSION = 1


class WireRecord(faust.Record, abstract=True, serializer="json", include_metadata=False):
    """Base of every wire model: plain JSON, no faust-specific metadata on the wire."""

    def __post_init__(self) -> None:
        # faust hands every instance the same default dict object; copy so none share it.
        for name in self._options.fields:
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, dict(value))


class CallEvent(WireRecord):
    """One thing that happened on a call (PBX → ``pbx.call-events``, key = call_id)."""

    event_id: str
    call_id: str
    type: str
    ts_ms: int
    direction: str
    department: str
    caller: str
    callee: str
    presented_caller_id: str = ""
    leg: str = ""
    digit: str = ""
    hangup_cause: str = ""
    attrs: dict[str, str] = {}
    origin: str = "asterisk"
    schema_version: int = SCHEMA_VERSION


class Cdr(WireRecord):
    """Final call detail record (PBX → ``pbx.cdr``, key = call_id)."""

    call_id: str
    direction: str
    department: str
    caller: str
    callee: str
    presented_caller_id: str
    start_ms: int
    answer_ms: int
    end_ms: int
    duration_s: float
    billsec_s: float
    disposition: str
    hangup_cause: str = ""
    origin: str = "asterisk"
    schema_version: int = SCHEMA_VERSION


class AudioChunk(WireRecord):
    """A slice of one leg's live audio (PBX → ``pbx.audio``, key = call_id).

    ``payload_b64`` is the raw sample data in ``encoding`` (base64 on the JSON wire).
    ``lost_packets`` counts RTP packets the connector saw missing inside this chunk.
    """

    call_id: str
    leg: str
    seq: int
    start_ms: int
    duration_ms: int
    sample_rate: int
    encoding: str
    channels: int
    payload_b64: str
    lost_packets: int = 0
    final: bool = False
    origin: str = "asterisk"
    schema_version: int = SCHEMA_VERSION


class PbxCommand(WireRecord):
    """A decision for the PBX to carry out (streams → ``pbx.commands``, key = call_id).

    ``command_id`` makes applying it idempotent: the connector applies an id once.
    """

    command_id: str
    call_id: str
    action: str
    issued_ms: int
    issued_by: str
    reason: str
    args: dict[str, str] = {}
    schema_version: int = SCHEMA_VERSION


class CommandResult(WireRecord):
    """What the PBX connector did with a command (→ ``pbx.command-results``, key = call_id)."""

    command_id: str
    call_id: str
    action: str
    status: str
    ts_ms: int
    detail: str = ""
    schema_version: int = SCHEMA_VERSION


class Decision(WireRecord):
    """Every decision a stream takes, with its reason (→ ``calls.decisions``, key = call_id)."""

    decision_id: str
    call_id: str
    stream: str
    kind: str
    reason: str
    ts_ms: int
    department: str = ""
    actor: str = "system"
    command_id: str = ""
    attrs: dict[str, str] = {}
    schema_version: int = SCHEMA_VERSION


class CallSummary(WireRecord):
    """One finished call as the call tracker saw it (→ ``calls.summaries``, key = call_id)."""

    call_id: str
    direction: str
    department: str
    caller: str
    callee: str
    started_ms: int
    answered_ms: int
    ended_ms: int
    talk_s: float
    events: int
    duplicate_events: int
    out_of_order_events: int
    dtmf_digits: str
    hangup_cause: str
    origin: str
    schema_version: int = SCHEMA_VERSION


class AudioLegStats(WireRecord):
    """Completeness of one leg's audio stream (→ ``calls.audio-stats``, key = call_id)."""

    call_id: str
    leg: str
    chunks: int
    duplicate_chunks: int
    missing_chunks: int
    lost_packets: int
    audio_duration_ms: int
    first_ms: int
    last_ms: int
    ts_ms: int
    origin: str
    schema_version: int = SCHEMA_VERSION


class Incident(WireRecord):
    """An abuse detection with its evidence (→ ``calls.incidents``, key = call_id)."""

    incident_id: str
    call_id: str
    department: str
    leg: str
    category: str
    score: float
    action: str
    evidence: str
    model_version: str
    utterance_start_ms: int
    utterance_end_ms: int
    ts_ms: int
    schema_version: int = SCHEMA_VERSION


class DeadLetter(WireRecord):
    """A message a consumer could not use, with the reason (→ ``callguard.dead-letters``).

    The original bytes travel base64-encoded so nothing is lost and the message can be replayed.
    """

    dead_letter_id: str
    source_topic: str
    source_partition: int
    source_offset: int
    consumer: str
    reason: str
    error_type: str
    ts_ms: int
    key_b64: str
    payload_b64: str
    payload_bytes: int
    schema_version: int = SCHEMA_VERSION


#: name used in schema file names and error messages → model
MODELS: dict[str, type[WireRecord]] = {
    "call_event": CallEvent,
    "cdr": Cdr,
    "audio_chunk": AudioChunk,
    "pbx_command": PbxCommand,
    "command_result": CommandResult,
    "decision": Decision,
    "call_summary": CallSummary,
    "audio_leg_stats": AudioLegStats,
    "incident": Incident,
    "dead_letter": DeadLetter,
}
