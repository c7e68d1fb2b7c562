-- CallGuard core tables, version 1.
-- Column names equal the wire fields of schemas/records.py (tests/unit/test_schema_agreement.py
-- checks it); epoch-millisecond fields become DateTime64(3, 'UTC').  ReplacingMergeTree on each
-- message's id makes the at-least-once sink idempotent: a re-delivered batch collapses on merge
-- (read with FINAL where an exact count matters).

CREATE TABLE IF NOT EXISTS call_events
(
    event_id String,
    call_id String,
    type LowCardinality(String),
    ts_ms DateTime64(3, 'UTC'),
    direction LowCardinality(String),
    department LowCardinality(String),
    caller String,
    callee String,
    presented_caller_id String,
    leg LowCardinality(String),
    digit String,
    hangup_cause LowCardinality(String),
    attrs Map(String, String),
    origin LowCardinality(String),
    schema_version UInt8,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts_ms)
ORDER BY (call_id, event_id);

CREATE TABLE IF NOT EXISTS cdrs
(
    call_id String,
    direction LowCardinality(String),
    department LowCardinality(String),
    caller String,
    callee String,
    presented_caller_id String,
    start_ms DateTime64(3, 'UTC'),
    answer_ms DateTime64(3, 'UTC'),
    end_ms DateTime64(3, 'UTC'),
    duration_s Float64,
    billsec_s Float64,
    disposition LowCardinality(String),
    hangup_cause LowCardinality(String),
    origin LowCardinality(String),
    schema_version UInt8,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(start_ms)
ORDER BY call_id;

CREATE TABLE IF NOT EXISTS commands
(
    command_id String,
    call_id String,
    action LowCardinality(String),
    issued_ms DateTime64(3, 'UTC'),
    issued_by LowCardinality(String),
    reason String,
    args Map(String, String),
    schema_version UInt8,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(issued_ms)
ORDER BY (call_id, command_id);

CREATE TABLE IF NOT EXISTS command_results
(
    command_id String,
    call_id String,
    action LowCardinality(String),
    status LowCardinality(String),
    ts_ms DateTime64(3, 'UTC'),
    detail String,
    schema_version UInt8,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts_ms)
ORDER BY (call_id, command_id, status);

CREATE TABLE IF NOT EXISTS decisions
(
    decision_id String,
    call_id String,
    stream LowCardinality(String),
    kind LowCardinality(String),
    reason String,
    ts_ms DateTime64(3, 'UTC'),
    department LowCardinality(String),
    actor LowCardinality(String),
    command_id String,
    attrs Map(String, String),
    schema_version UInt8,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts_ms)
ORDER BY (stream, call_id, decision_id);

CREATE TABLE IF NOT EXISTS call_summaries
(
    call_id String,
    direction LowCardinality(String),
    department LowCardinality(String),
    caller String,
    callee String,
    started_ms DateTime64(3, 'UTC'),
    answered_ms DateTime64(3, 'UTC'),
    ended_ms DateTime64(3, 'UTC'),
    talk_s Float64,
    events UInt32,
    duplicate_events UInt32,
    out_of_order_events UInt32,
    dtmf_digits String,
    hangup_cause LowCardinality(String),
    origin LowCardinality(String),
    schema_version UInt8,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(started_ms)
ORDER BY call_id;

CREATE TABLE IF NOT EXISTS audio_leg_stats
(
    call_id String,
    leg LowCardinality(String),
    chunks UInt32,
    duplicate_chunks UInt32,
    missing_chunks UInt32,
    lost_packets UInt32,
    audio_duration_ms UInt64,
    first_ms DateTime64(3, 'UTC'),
    last_ms DateTime64(3, 'UTC'),
    ts_ms DateTime64(3, 'UTC'),
    origin LowCardinality(String),
    schema_version UInt8,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts_ms)
ORDER BY (call_id, leg);

CREATE TABLE IF NOT EXISTS incidents
(
    incident_id String,
    call_id String,
    department LowCardinality(String),
    leg LowCardinality(String),
    category LowCardinality(String),
    score Float64,
    action LowCardinality(String),
    evidence String,
    model_version LowCardinality(String),
    utterance_start_ms DateTime64(3, 'UTC'),
    utterance_end_ms DateTime64(3, 'UTC'),
    ts_ms DateTime64(3, 'UTC'),
    schema_version UInt8,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts_ms)
ORDER BY (call_id, incident_id);

-- The original bytes stay on the dead-letter topic (for replay); the table keeps only their size
-- and hash, because a rejected message may hold personal data (audio, names, numbers).
CREATE TABLE IF NOT EXISTS dead_letters
(
    dead_letter_id String,
    source_topic LowCardinality(String),
    source_partition UInt32,
    source_offset UInt64,
    consumer LowCardinality(String),
    reason String,
    error_type LowCardinality(String),
    ts_ms DateTime64(3, 'UTC'),
    payload_bytes UInt64,
    schema_version UInt8,
    payload_sha256 String,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts_ms)
ORDER BY (source_topic, source_partition, source_offset, consumer);
