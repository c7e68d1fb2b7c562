"""Thin faust wiring for situational ringback (the rule: ``pipelines.core.ringback``).

Stateless: on an inbound ``call_started`` it asks the department calendar which ringback the
caller gets, sends a ``set_ringback`` command when that differs from the department's ordinary
class, and always records a decision (stream ``ringback``, kind = the class) so reports can
count who heard which notice.  Ids are deterministic per call: a replay after a crash yields
the same command id (the connector applies it once) and the same decision id (the sink keeps
one row).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import StreamT

from connectors.kafka.topics import TopicCatalog
from pipelines.core import ringback as core
from pipelines.ringback.calendar import RingbackPolicy
from pipelines.streaming import Clock, DeadLetters, decoded, guarded, raw_topic, send_record
from schemas.mapping import decision_id
from schemas.records import CallEvent, Decision, PbxCommand

CONSUMER = "ringback"


def command_id(call_id: str) -> str:
    return f"ringback-{call_id}"


def outputs(
    record: CallEvent, policy: RingbackPolicy, decide_at_ms: int, now_ms: int
) -> tuple[PbxCommand | None, Decision] | None:
    """What one call event leads to (None: not a ringing inbound call of a department)."""
    if record.type != "call_started" or record.direction != "inbound" or not record.department:
        return None
    calendar = policy.calendar(record.department)
    choice = policy.decide(record.department, decide_at_ms)
    command = None
    if choice.moh_class != calendar.normal_class:
        command = PbxCommand(
            command_id=command_id(record.call_id),
            call_id=record.call_id,
            action="set_ringback",
            issued_ms=now_ms,
            issued_by=core.STREAM,
            reason=choice.reason,
            args={"moh_class": choice.moh_class},
        )
    local = policy.local(decide_at_ms)
    decision = Decision(
        decision_id=decision_id(core.STREAM, record.call_id, "ringback", 0),
        call_id=record.call_id,
        stream=core.STREAM,
        kind=choice.moh_class,
        reason=choice.reason,
        ts_ms=now_ms,
        department=record.department,
        command_id=command.command_id if command else "",
        attrs={
            "situation": choice.situation,
            "local_time": local.isoformat(timespec="seconds"),
        },
    )
    return command, decision


def register(
    app: faust.App,
    catalog: TopicCatalog,
    dead_letters: DeadLetters,
    clock: Clock,
    *,
    policy: RingbackPolicy,
    calendar_clock: Clock | None = None,
) -> Any:
    """``calendar_clock``: the instant the calendar is asked about (default ``clock``); tests
    pass a fixed lunch time here while commands keep real issue times."""
    source = raw_topic(app, catalog.call_events, partitions=catalog.partitions)
    commands = raw_topic(app, catalog.commands)
    decisions = raw_topic(app, catalog.decisions)
    when = calendar_clock or clock

    async def on_event(record: CallEvent) -> None:
        made = outputs(record, policy, when(), clock())
        if made is None:
            return
        command, decision = made
        if command is not None:
            await send_record(commands, record.call_id, command)
        await send_record(decisions, record.call_id, decision)

    @app.agent(source, name="callguard.ringback")
    async def choose_ringback(stream: StreamT) -> None:
        async for event, record in decoded(stream.events(), CallEvent, dead_letters, CONSUMER):
            await guarded(event, dead_letters, CONSUMER, on_event(record))

    return choose_ringback
