"""The call tracker agent: decode → core → encode, dead letters, ticks."""

from __future__ import annotations

from typing import Any

import faust

from pipelines.ticks import encode_tick
from schemas.codec import encode
from schemas.records import CallSummary, DeadLetter, Decision
from tests.agents.conftest import Clock, Sent, put_on_topic
from tests.samples import T0, call_event


async def test_call_lifecycle_produces_one_summary(
    app: faust.App, catalog: Any, sent: Sent
) -> None:
    async with app.agents["callguard.calls"].test_context() as ctx:
        await ctx.put(key=b"c-1", value=encode(call_event(event_id="e1")))
        await ctx.put(
            key=b"c-1", value=encode(call_event(event_id="e2", type_="answered", ts_ms=T0 + 4000))
        )
        await ctx.put(
            key=b"c-1", value=encode(call_event(event_id="e3", type_="hangup", ts_ms=T0 + 64000))
        )
        await ctx.put(
            key=b"c-1", value=encode(call_event(event_id="e3", type_="hangup", ts_ms=T0 + 64000))
        )
    (summary,) = sent.records(catalog.summaries, CallSummary)
    assert summary.call_id == "c-1"
    assert summary.talk_s == 60.0
    assert summary.events == 3
    # the repeated hangup is recognised as a duplicate: no second summary, no anomaly
    assert sent.on(catalog.decisions) == []
    assert sent.on(catalog.dead_letters) == []


async def test_malformed_events_are_dead_lettered_and_the_stream_continues(
    app: faust.App, catalog: Any, sent: Sent
) -> None:
    async with app.agents["callguard.calls"].test_context() as ctx:
        await ctx.put(key=b"c-9", value=b'{"call_id": "c-9"')
        await ctx.put(key=b"c-9", value=b'{"call_id": "c-9", "type": "hangup"}')
        await ctx.put(key=b"c-9", value=b"")
        await ctx.put(key=b"c-2", value=encode(call_event(call_id="c-2", event_id="x1")))
        await ctx.put(
            key=b"c-2",
            value=encode(call_event(call_id="c-2", event_id="x2", type_="hangup", ts_ms=T0 + 1000)),
        )
    letters = sent.records(catalog.dead_letters, DeadLetter)
    assert [d.error_type for d in letters] == ["json", "schema", "empty"]
    assert all(d.consumer == "calls" for d in letters)
    assert "event_id" in letters[1].reason
    assert letters[0].payload_b64  # the original bytes travel along for replay
    assert [s.call_id for s in sent.records(catalog.summaries, CallSummary)] == ["c-2"]


async def test_tick_expires_a_call_whose_hangup_was_lost(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock
) -> None:
    async with app.agents["callguard.calls"].test_context() as ctx:
        await ctx.put(key=b"c-3", value=encode(call_event(call_id="c-3", event_id="s1")))
        await put_on_topic(ctx, catalog.ticks, b"tick", encode_tick(clock.now_ms + 1000))
        assert sent.records(catalog.summaries, CallSummary) == []  # not idle long enough
        clock.now_ms += 61_000
        await put_on_topic(ctx, catalog.ticks, b"tick", encode_tick(clock.now_ms))
        await put_on_topic(ctx, catalog.ticks, b"tick", encode_tick(clock.now_ms + 1))
    (summary,) = sent.records(catalog.summaries, CallSummary)
    assert summary.hangup_cause == "stale"
    (decision,) = sent.records(catalog.decisions, Decision)
    assert decision.kind == "stale_call" and decision.stream == "calls"


async def test_tick_on_another_partition_leaves_calls_alone(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock
) -> None:
    async with app.agents["callguard.calls"].test_context() as ctx:
        await ctx.put(key=b"c-4", value=encode(call_event(call_id="c-4")), partition=0)
        clock.now_ms += 120_000
        await put_on_topic(ctx, catalog.ticks, b"tick", encode_tick(clock.now_ms), partition=1)
    assert sent.records(catalog.summaries, CallSummary) == []
