"""The timeout agent: call events + command results + ticks → PBX commands and decisions."""

from __future__ import annotations

from typing import Any

import faust

from pipelines.core import timeout as core
from pipelines.ticks import encode_tick
from schemas.codec import encode
from schemas.records import CommandResult, DeadLetter, Decision, Incident, PbxCommand
from tests.agents.conftest import Clock, Sent, put_on_topic
from tests.samples import T0, call_event

S = 1000
AGENT = "callguard.timeout"


async def event(
    ctx: Any, clock: Clock, call_id: str, n: int, type_: str, at: int, **kw: Any
) -> None:
    clock.now_ms = max(clock.now_ms, at)
    overrides = {k: kw.pop(k) for k in ("department", "callee") if k in kw}
    record = call_event(call_id=call_id, event_id=f"{call_id}-{n}", type_=type_, ts_ms=at, **kw)
    for name, value in overrides.items():
        setattr(record, name, value)
    await ctx.put(key=call_id.encode(), value=encode(record))


async def tick(ctx: Any, catalog: Any, clock: Clock, at: int, partition: int = 0) -> None:
    clock.now_ms = at
    await put_on_topic(ctx, catalog.ticks, b"tick", encode_tick(at), partition=partition)


async def result(ctx: Any, catalog: Any, clock: Clock, call_id: str, kind: str, at: int) -> None:
    clock.now_ms = at
    record = CommandResult(
        command_id=core.command_id(call_id, kind),
        call_id=call_id,
        action="play",
        status="applied",
        ts_ms=at,
    )
    await put_on_topic(ctx, catalog.command_results, call_id.encode(), encode(record))


async def answered_call(ctx: Any, clock: Clock, call_id: str, **kw: Any) -> None:
    await event(ctx, clock, call_id, 1, "call_started", T0 - 5 * S, **kw)
    await event(ctx, clock, call_id, 2, "answered", T0, **kw)
    await event(ctx, clock, call_id, 3, "bridged", T0 + 200, **kw)


async def test_the_20_minute_rule_end_to_end(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock
) -> None:
    clock.now_ms = T0 - 5 * S
    async with app.agents[AGENT].test_context() as ctx:
        await answered_call(ctx, clock, "c-1")
        await tick(ctx, catalog, clock, T0 + 899 * S)
        assert sent.on(catalog.commands) == []
        await tick(ctx, catalog, clock, T0 + 900 * S)
        await tick(ctx, catalog, clock, T0 + 1200 * S)
        await tick(ctx, catalog, clock, T0 + 1205 * S)
        await event(ctx, clock, "c-1", 4, "dtmf", T0 + 1300 * S, leg="staff", digit="*")
        await event(ctx, clock, "c-1", 5, "dtmf", T0 + 1300 * S + 300, leg="staff", digit="9")
        await event(ctx, clock, "c-1", 5, "dtmf", T0 + 1300 * S + 300, leg="staff", digit="9")
        await result(ctx, catalog, clock, "c-1", "terminate", T0 + 1306 * S)
        await result(ctx, catalog, clock, "c-1", "terminate", T0 + 1306 * S)  # a repeat
        await tick(ctx, catalog, clock, T0 + 1400 * S)  # safety timeout must not fire too
    notice, terminate, hangup = sent.records(catalog.commands, PbxCommand)
    assert (notice.action, notice.args) == ("play", {"media": "timeout-notice", "target": "caller"})
    assert terminate.action == "play"
    assert terminate.args == {"media": "timeout-termination", "target": "call", "wait": "true"}
    assert terminate.command_id == core.command_id("c-1", "terminate")
    assert (hangup.action, hangup.args) == ("hangup", {"cause": "time_limit"})
    assert {c.issued_by for c in (notice, terminate, hangup)} == {"timeout"}
    decisions = sent.records(catalog.decisions, Decision)
    assert [(d.kind, d.actor) for d in decisions] == [
        ("notice", "system"),
        ("armed", "system"),
        ("terminate", "staff"),
        ("hangup", "system"),
    ]
    assert all(d.stream == "timeout" and d.department == "traffic" for d in decisions)
    assert decisions[2].command_id == terminate.command_id and decisions[2].reason
    assert decisions[3].command_id == hangup.command_id
    assert len({d.decision_id for d in decisions}) == 4
    assert sent.on(catalog.dead_letters) == []


async def test_key_before_limit_and_justified_are_decisions_without_commands(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock
) -> None:
    async with app.agents[AGENT].test_context() as ctx:
        await answered_call(ctx, clock, "c-2")
        await event(ctx, clock, "c-2", 4, "dtmf", T0 + 60 * S, leg="staff", digit="*")
        await event(ctx, clock, "c-2", 5, "dtmf", T0 + 60 * S + 200, leg="staff", digit="9")
        await event(ctx, clock, "c-2", 6, "dtmf", T0 + 70 * S, leg="staff", digit="*")
        await event(ctx, clock, "c-2", 7, "dtmf", T0 + 70 * S + 200, leg="staff", digit="0")
        await tick(ctx, catalog, clock, T0 + 1500 * S)
    assert sent.on(catalog.commands) == []
    kinds = [(d.kind, d.actor) for d in sent.records(catalog.decisions, Decision)]
    assert kinds == [("key_before_limit", "staff"), ("disarmed", "staff")]


async def test_exempt_line_gets_nothing(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock
) -> None:
    async with app.agents[AGENT].test_context() as ctx:
        await answered_call(ctx, clock, "c-3", department="tax", callee="1499")
        await tick(ctx, catalog, clock, T0 + 1500 * S)
        line = {"department": "tax", "callee": "1499"}
        await event(ctx, clock, "c-3", 4, "dtmf", T0 + 1501 * S, leg="staff", digit="*", **line)
        await event(
            ctx, clock, "c-3", 5, "dtmf", T0 + 1501 * S + 200, leg="staff", digit="9", **line
        )
    assert sent.on(catalog.commands) == [] and sent.on(catalog.decisions) == []


async def test_malformed_inputs_are_dead_lettered_per_topic(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock
) -> None:
    async with app.agents[AGENT].test_context() as ctx:
        await put_on_topic(ctx, catalog.command_results, b"c-4", b'{"command_id": 1}')
        await put_on_topic(ctx, catalog.incidents, b"c-4", b"not json")
        await put_on_topic(ctx, catalog.call_events, b"c-4", b"")
        await answered_call(ctx, clock, "c-4")  # the stream carries on
        await tick(ctx, catalog, clock, T0 + 900 * S)
    letters = sent.records(catalog.dead_letters, DeadLetter)
    assert [d.consumer for d in letters] == ["timeout"] * 3
    assert [d.source_topic for d in letters] == [
        catalog.command_results,
        catalog.incidents,
        catalog.call_events,
    ]
    assert [c.args["media"] for c in sent.records(catalog.commands, PbxCommand)] == [
        "timeout-notice"
    ]


async def test_incident_verdict_ignored_unless_the_policy_arms_on_it(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock
) -> None:
    incident = Incident(
        incident_id="i-1",
        call_id="c-5",
        department="traffic",
        leg="caller",
        category="insult",
        score=0.9,
        action="end",
        evidence="[masked]",
        model_version="v1",
        utterance_start_ms=T0,
        utterance_end_ms=T0 + S,
        ts_ms=T0 + 2 * S,
    )
    async with app.agents[AGENT].test_context() as ctx:
        await answered_call(ctx, clock, "c-5")
        await put_on_topic(ctx, catalog.incidents, b"c-5", encode(incident))
        await tick(ctx, catalog, clock, T0 + 1200 * S)
    assert [d.kind for d in sent.records(catalog.decisions, Decision)] == ["armed"]


async def test_ticks_only_touch_due_calls_of_their_partition(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock
) -> None:
    async with app.agents[AGENT].test_context() as ctx:
        await answered_call(ctx, clock, "c-6")  # partition 0
        await tick(ctx, catalog, clock, T0 + 1300 * S, partition=1)
        assert sent.on(catalog.decisions) == []
        await tick(ctx, catalog, clock, T0 + 1300 * S, partition=0)
    assert [d.kind for d in sent.records(catalog.decisions, Decision)] == ["armed"]


async def test_deadline_index_is_rebuilt_when_the_table_is_recovered(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock
) -> None:
    """State recovered from the changelog (nothing passed through this process's stream)
    must still fire its timers: the recovery callback rebuilds the deadline index."""
    table = app.tables["timeout"]
    policy = core.Policy(limit_s=1200, notice_after_s=900)
    state = core.TimeoutState(
        call_id="c-7",
        department="traffic",
        policy=policy,
        answered_ts_ms=T0,
        started_ms=T0,
        notice_ms=T0 + 900 * S,
        updated_ms=T0 + 900 * S,
    )
    async with app.agents[AGENT].test_context() as ctx:
        table.data["c-7"] = {"partition": 0, "state": state.to_dict()}
        await tick(ctx, catalog, clock, T0 + 1200 * S)
        assert sent.on(catalog.decisions) == []  # the index does not know the call yet
        for callback in list(table._recover_callbacks):
            await callback()
        await tick(ctx, catalog, clock, T0 + 1201 * S)
    (armed,) = sent.records(catalog.decisions, Decision)
    assert armed.kind == "armed" and armed.call_id == "c-7"
