-- Learning loop (issue 7): staff labels on detections (and on missed abuse), and the history
-- of promoted text-classifier versions.  Column names equal the wire fields of
-- schemas/records.py (Feedback, ModelPromotion); tests/unit/test_schema_agreement.py checks it.
-- A later label on the same incident by the same person replaces the earlier one (FINAL).

CREATE TABLE IF NOT EXISTS feedback
(
    feedback_id String,
    incident_id String,
    call_id String,
    label LowCardinality(String),
    category LowCardinality(String),
    text String,
    labeled_by String,
    role LowCardinality(String),
    source LowCardinality(String),
    ts_ms DateTime64(3, 'UTC'),
    note String,
    schema_version UInt8,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts_ms)
ORDER BY (feedback_id);

CREATE TABLE IF NOT EXISTS model_promotions
(
    promotion_id String,
    model LowCardinality(String),
    version String,
    path String,
    action LowCardinality(String),
    promoted_by String,
    reason String,
    metrics Map(String, Float64),
    ts_ms DateTime64(3, 'UTC'),
    schema_version UInt8,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (model, promotion_id);
