"""Thin faust wiring for the call tracker (the rule lives in ``pipelines.core.calls``)."""

from __future__ import annotations

from typing import Any

import faust
from faust.types import EventT, StreamT

from connectors.kafka.topics import TopicCatalog
from pipelines.core import calls as core
from pipelines.streaming import (
    Clock,
    DeadLetters,
    PartitionedState,
    decoded,
    guarded,
    raw_topic,
    send_record,
    split_ticks,
)
from schemas import mapping
from schemas.records import CallEvent

CONSUMER = "calls"


def register(
    app: faust.App,
    catalog: TopicCatalog,
    dead_letters: DeadLetters,
    clock: Clock,
    *,
    idle_limit_ms: int,
) -> Any:
    source = raw_topic(app, catalog.call_events, catalog.ticks, partitions=catalog.partitions)
    summaries = raw_topic(app, catalog.summaries)
    decisions = raw_topic(app, catalog.decisions)
    states = PartitionedState(
        app, "calls", catalog.partitions, core.CallState.to_dict, core.CallState.from_dict
    )

    async def emit(outputs: list[core.Output], now_ms: int) -> None:
        for output in outputs:
            if isinstance(output, core.CallEnded):
                await send_record(summaries, output.call_id, mapping.call_summary(output))
            else:
                decision = mapping.anomaly_decision(CONSUMER, output, now_ms)
                await send_record(decisions, output.call_id, decision)

    async def on_event(event: EventT, record: CallEvent) -> None:
        now_ms = clock()
        state, outputs = core.step(
            states.get(record.call_id), mapping.call_observation(record), now_ms
        )
        states.put(event.message.partition, record.call_id, state)
        await emit(outputs, now_ms)

    async def on_tick(partition: int, now_ms: int) -> None:
        for call_id in states.keys_in(partition):
            state = states.get(call_id)
            if state is None:
                states.delete(call_id)
                continue
            new, outputs = core.expire(state, now_ms, idle_limit_ms)
            if new is None:
                states.delete(call_id)
            elif outputs:
                states.put(partition, call_id, new)
            await emit(outputs, now_ms)

    @app.agent(source, name="callguard.calls")
    async def track_calls(stream: StreamT) -> None:
        events = split_ticks(stream, catalog.ticks, on_tick)
        async for event, record in decoded(events, CallEvent, dead_letters, CONSUMER):
            await guarded(event, dead_letters, CONSUMER, on_event(event, record))

    return track_calls
