"""The learning loop: staff feedback → retraining from ClickHouse → gated promotion → reload."""
