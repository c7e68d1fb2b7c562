-- Recordings (issue 5): one row per stored recording (per call leg) and an audit trail of every
-- access and deletion.  No audio is stored here: the audio is an encrypted file in the recording
-- store (`path`).  Column names equal the wire fields of schemas/records.py (Recording,
-- RecordingAudit); tests/unit/test_schema_agreement.py checks it.
--
-- `recordings` keeps the newest version of each (call_id, leg): the row is first written when the
-- file is stored, again when the CDR arrives (completeness against billsec) and once more when
-- the file is purged (deleted_ms set).  Read with FINAL.

CREATE TABLE IF NOT EXISTS recordings
(
    recording_id String,
    call_id String,
    leg LowCardinality(String),
    department LowCardinality(String),
    mode LowCardinality(String),
    started_ms DateTime64(3, 'UTC'),
    duration_ms UInt64,
    sample_rate UInt32,
    chunk_count UInt32,
    duplicate_chunks UInt32,
    missing_chunks UInt32,
    lost_packets UInt32,
    gap_count UInt32,
    gap_duration_ms UInt64,
    gaps String,
    finish_reason LowCardinality(String),
    sha256 String,
    key_id LowCardinality(String),
    path String,
    size_bytes UInt64,
    format LowCardinality(String),
    retention_until_ms DateTime64(3, 'UTC'),
    ts_ms DateTime64(3, 'UTC'),
    cdr_seen Bool,
    cdr_billsec_s Float64,
    expected_duration_ms UInt64,
    shortfall_duration_ms UInt64,
    shortfall Bool,
    deleted_ms DateTime64(3, 'UTC'),
    origin LowCardinality(String),
    schema_version UInt8,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ts_ms)
PARTITION BY toYYYYMM(started_ms)
ORDER BY (call_id, leg);

-- Append-only in spirit: one row per audit id (a re-delivered message collapses on merge).
CREATE TABLE IF NOT EXISTS recording_audit
(
    audit_id String,
    call_id String,
    leg LowCardinality(String),
    action LowCardinality(String),
    result LowCardinality(String),
    actor String,
    role LowCardinality(String),
    reason String,
    ts_ms DateTime64(3, 'UTC'),
    host String,
    detail String,
    recording_sha256 String,
    schema_version UInt8,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts_ms)
ORDER BY (call_id, audit_id);
