"""Audio tracker stream: audio chunks → per-leg sequence state → completeness per leg."""
