"""Thin faust wiring for the audio tracker (the rule lives in ``pipelines.core.audio``)."""

from __future__ import annotations

from typing import Any

import faust
from faust.types import EventT, StreamT

from connectors.kafka.topics import TopicCatalog
from pipelines.core import audio as core
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
from schemas.records import AudioChunk

CONSUMER = "audio"


def register(
    app: faust.App,
    catalog: TopicCatalog,
    dead_letters: DeadLetters,
    clock: Clock,
    *,
    idle_limit_ms: int,
) -> Any:
    source = raw_topic(app, catalog.audio, catalog.ticks, partitions=catalog.partitions)
    stats = raw_topic(app, catalog.audio_stats)
    states = PartitionedState(
        app, "audio-legs", catalog.partitions, core.LegState.to_dict, core.LegState.from_dict
    )

    async def emit(outputs: list[core.LegFinished], now_ms: int) -> None:
        for done in outputs:
            await send_record(stats, done.call_id, mapping.leg_stats(done, now_ms))

    async def on_chunk(event: EventT, chunk: AudioChunk) -> None:
        now_ms = clock()
        key = f"{chunk.call_id}/{chunk.leg}"
        state, outputs = core.step(states.get(key), mapping.chunk_observation(chunk), now_ms)
        states.put(event.message.partition, key, state)
        await emit(outputs, now_ms)

    async def on_tick(partition: int, now_ms: int) -> None:
        for key in states.keys_in(partition):
            state = states.get(key)
            if state is None:
                states.delete(key)
                continue
            new, outputs = core.expire(state, now_ms, idle_limit_ms)
            if new is None:
                states.delete(key)
            elif outputs:
                states.put(partition, key, new)
            await emit(outputs, now_ms)

    @app.agent(source, name="callguard.audio")
    async def track_audio(stream: StreamT) -> None:
        chunks = split_ticks(stream, catalog.ticks, on_tick)
        async for event, chunk in decoded(chunks, AudioChunk, dead_letters, CONSUMER):
            await guarded(event, dead_letters, CONSUMER, on_chunk(event, chunk))

    return track_audio
