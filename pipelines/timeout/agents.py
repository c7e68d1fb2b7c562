"""Thin faust wiring for the timeout rule (the rule lives in ``pipelines.core.timeout``).

One agent reads, co-partitioned by call id: call events, PBX command results, abuse incidents
and the clock ticks.  Per-call state lives in the ``timeout`` table (changelog-backed); an
in-memory :class:`~pipelines.core.deadlines.DeadlineIndex` says which calls a tick must look at,
so a tick costs O(due calls · log n) instead of a scan of every open call.  The index is
rebuilt from the table whenever faust recovers it (start, rebalance, restart after a crash).

Outputs are at-least-once: faust (0.15, exactly-once) produces to topics this worker does not
consume (``pbx.commands``, ``calls.decisions``) outside the partition's transaction, so a crash
between a send and the commit of the state that records it repeats the send on replay.  The
repeat is harmless by construction: command ids are derived from call id + kind (the PBX
connector applies an id once, answering ``duplicate``) and decision ids likewise (ClickHouse's
ReplacingMergeTree keeps one row).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import EventT, StreamT

from connectors.kafka.topics import TopicCatalog
from pipelines.core import timeout as core
from pipelines.streaming import (
    Clock,
    DeadLetters,
    TimedState,
    guarded,
    raw_topic,
    send_record,
    split_ticks,
)
from pipelines.timeout import wire
from schemas.codec import MalformedMessage, decode
from schemas.records import CallEvent, CommandResult, Incident

CONSUMER = "timeout"


def register(
    app: faust.App,
    catalog: TopicCatalog,
    dead_letters: DeadLetters,
    clock: Clock,
    *,
    policies: core.PolicyBook,
    idle_limit_ms: int,
) -> Any:
    source = raw_topic(
        app,
        catalog.call_events,
        catalog.command_results,
        catalog.incidents,
        catalog.ticks,
        partitions=catalog.partitions,
    )
    commands = raw_topic(app, catalog.commands)
    decisions = raw_topic(app, catalog.decisions)
    def expire(state: core.TimeoutState, now_ms: int) -> core.TimeoutState | None:
        return core.expire(state, now_ms, idle_limit_ms)

    states = TimedState(
        app,
        "timeout",
        catalog.partitions,
        core.TimeoutState.to_dict,
        core.TimeoutState.from_dict,
        lambda state: core.wake_at(state, idle_limit_ms),
    )

    async def emit(out: list[core.TimeoutDecision]) -> None:
        for decision in out:
            command = wire.command(decision)
            if command is not None:
                await send_record(commands, decision.call_id, command)
            await send_record(decisions, decision.call_id, wire.decision(decision))

    async def on_observation(event: EventT, obs: core.Observation) -> None:
        partition = event.message.partition
        await emit(
            states.step(partition, obs.call_id, lambda old: core.step(old, obs, clock(), policies))
        )

    async def on_tick(partition: int, now_ms: int) -> None:
        for out in states.fire_due(partition, now_ms, core.due, expire):
            await emit(out)

    def observe(topic: str, raw: bytes | None) -> core.Observation | None:
        if topic == catalog.command_results:
            return wire.result_seen(decode(CommandResult, raw))
        if topic == catalog.incidents:
            return wire.verdict_seen(decode(Incident, raw))
        return wire.call_seen(decode(CallEvent, raw))

    @app.agent(source, name="callguard.timeout")
    async def enforce_timeout(stream: StreamT) -> None:
        async for event in split_ticks(stream, catalog.ticks, on_tick):
            try:
                obs = observe(event.message.topic, event.value)
            except MalformedMessage as error:
                await dead_letters.reject(event, CONSUMER, error)
                continue
            if obs is not None:
                await guarded(event, dead_letters, CONSUMER, on_observation(event, obs))

    return enforce_timeout
