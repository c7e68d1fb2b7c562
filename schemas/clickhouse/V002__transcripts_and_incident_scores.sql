-- Abuse detection (issue 6): masked utterance transcripts with classifier scores and voice cues,
-- and the extra evidence columns of incidents.  Column names equal the wire fields of
-- schemas/records.py (Transcript, Incident); tests/unit/test_schema_agreement.py checks it.
-- Transcripts are personal data (masked at the source): kept 1 year, then dropped by TTL.

CREATE TABLE IF NOT EXISTS transcripts
(
    utterance_id String,
    call_id String,
    leg LowCardinality(String),
    start_ms DateTime64(3, 'UTC'),
    end_ms DateTime64(3, 'UTC'),
    text String,
    category LowCardinality(String),
    score Float64,
    scores Map(String, Float64),
    asr_backend LowCardinality(String),
    asr_model LowCardinality(String),
    classifier_version LowCardinality(String),
    avg_logprob Float64,
    no_speech_prob Float64,
    loudness_dbfs Float64,
    baseline_dbfs Float64,
    shouting Bool,
    ts_ms DateTime64(3, 'UTC'),
    origin LowCardinality(String),
    schema_version UInt8,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts_ms)
ORDER BY (call_id, utterance_id)
TTL toDateTime(ts_ms) + INTERVAL 365 DAY;

ALTER TABLE incidents ADD COLUMN IF NOT EXISTS utterance_id String AFTER ts_ms;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS text_score Float64 AFTER utterance_id;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS shouting Bool AFTER text_score;
