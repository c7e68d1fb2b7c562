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
    utterance_id: str = ""
    text_score: float = 0.0  # the classifier's score before voice cues
    shouting: bool = False
    schema_version: int = SCHEMA_VERSION


class Transcript(WireRecord):
    """One transcribed, scored utterance of one leg (→ ``calls.transcripts``, key = call_id).

    Personal data: ``text`` is already PII-masked (phone, resident, card and account numbers),
    the topic is kept briefly and the table is access-controlled; never logged at INFO.
    """

    utterance_id: str
    call_id: str
    leg: str
    start_ms: int
    end_ms: int
    text: str
    category: str  # the classifier's verdict: an abuse category or "clean"
    score: float
    scores: dict[str, float]
    asr_backend: str
    asr_model: str
    classifier_version: str
    avg_logprob: float
    no_speech_prob: float
    loudness_dbfs: float
    baseline_dbfs: float
    shouting: bool
    ts_ms: int
    origin: str = "asterisk"
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


class Recording(WireRecord):
    """One stored call recording (one leg) and how complete it is (→ ``calls.recordings``).

    No audio travels here: the audio is an encrypted file in the recording store (``path``).
    Durations are ``*duration_ms``; ``gaps`` is JSON: ``[[offset_ms, span_ms, missing_ms,
    kind, count], …]`` (kind missing | lost | timeline).  A later version of the same
    ``recording_id`` (the CDR arrived, the file was purged) has a later ``ts_ms``.
    """

    recording_id: str
    call_id: str
    leg: str
    department: str
    mode: str
    started_ms: int
    duration_ms: int
    sample_rate: int
    chunk_count: int
    duplicate_chunks: int
    missing_chunks: int
    lost_packets: int
    gap_count: int
    gap_duration_ms: int
    gaps: str
    finish_reason: str
    sha256: str
    key_id: str
    path: str
    size_bytes: int
    format: str
    retention_until_ms: int
    ts_ms: int
    cdr_seen: bool = False
    cdr_billsec_s: float = 0.0
    expected_duration_ms: int = 0
    shortfall_duration_ms: int = 0
    shortfall: bool = False
    deleted_ms: int = 0
    origin: str = "asterisk"
    schema_version: int = SCHEMA_VERSION


class RecordingAudit(WireRecord):
    """Who accessed or deleted a recording, when, why, and what happened
    (→ ``calls.recording-audit``, key = call_id).  ``leg`` "" means every leg of the call."""

    audit_id: str
    call_id: str
    leg: str
    action: str
    result: str
    actor: str
    role: str
    reason: str
    ts_ms: int
    host: str
    detail: str = ""
    recording_sha256: str = ""
    schema_version: int = SCHEMA_VERSION


class Feedback(WireRecord):
    """A staff or supervisor label on a detection, or on an utterance the detector missed
    (→ ``calls.feedback``, key = incident id or call id).

    ``label``: confirmed (the detection was right; ``category`` may correct it), rejected (a
    false alarm: the text is clean) or missed (``text`` was abusive and not flagged).  ``text``
    is the masked utterance for missed labels; for the others the incident's evidence is used.
    """

    feedback_id: str
    incident_id: str
    call_id: str
    label: str
    category: str
    text: str
    labeled_by: str
    role: str
    source: str
    ts_ms: int
    note: str = ""
    schema_version: int = SCHEMA_VERSION


class ModelPromotion(WireRecord):
    """A text-classifier version became current (→ ``callguard.models``, key = model name).

    Workers follow this topic and swap models without a restart; ``path`` is the version's
    folder in the model registry (a shared volume or the same host).
    """

    promotion_id: str
    model: str
    version: str
    path: str
    action: str
    promoted_by: str
    reason: str
    metrics: dict[str, float]
    ts_ms: int
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
    "recording": Recording,
    "recording_audit": RecordingAudit,
    "transcript": Transcript,
    "feedback": Feedback,
    "model_promotion": ModelPromotion,
}
