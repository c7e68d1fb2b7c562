"""Pure decisions: standard library only, time passed in, decisions returned as values.

Nothing here imports faust, Kafka, ClickHouse or any model; ``tests/unit`` checks that.
Each stateful rule has the shape ``step(state, observation, now_ms) -> (state, outputs)``.
"""
