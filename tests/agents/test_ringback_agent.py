"""The ringback agent: inbound call_started → set_ringback command + decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import faust
import pytest

from connectors.notify.requests import ALIMTALK, BRANDED_CALL
from pipelines.settings import Settings
from schemas.codec import encode
from schemas.records import CallEvent, DeadLetter, Decision, PbxCommand
from tests.agents.citizen import FakeNotifier, citizen_app
from tests.agents.conftest import Clock, Sent
from tests.samples import call_event

SEOUL = ZoneInfo("Asia/Seoul")


def seoul_ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=SEOUL).timestamp() * 1000)  # type: ignore[misc]


@pytest.fixture
def when() -> Clock:
    return Clock(seoul_ms(2026, 11, 30, 12, 20))  # a Monday, lunch time


@pytest.fixture
def citizen(settings: Settings, clock: Clock, when: Clock) -> faust.App:
    return citizen_app(
        settings, clock, FakeNotifier(BRANDED_CALL), FakeNotifier(ALIMTALK), calendar_clock=when
    )


async def test_lunch_time_call_gets_the_lunch_ringback(
    citizen: faust.App, catalog: Any, sent: Sent, clock: Clock
) -> None:
    async with citizen.agents["callguard.ringback"].test_context() as ctx:
        await ctx.put(key=b"c-1", value=encode(call_event(call_id="c-1", event_id="e1")))
        # a replayed event yields the same ids (applied once, stored once)
        await ctx.put(key=b"c-1", value=encode(call_event(call_id="c-1", event_id="e1")))
        # later events and outbound calls are not ours
        await ctx.put(key=b"c-1", value=encode(call_event(event_id="e2", type_="ringing")))
        outbound = call_event(call_id="c-9").asdict() | {"direction": "outbound"}
        await ctx.put(key=b"c-9", value=encode(CallEvent(**outbound)))
    commands = sent.records(catalog.commands, PbxCommand)
    assert len(commands) == 2 and commands[0].command_id == commands[1].command_id
    command = commands[0]
    assert command.action == "set_ringback" and command.args == {"moh_class": "lunch"}
    assert command.call_id == "c-1" and command.issued_by == "ringback"
    assert command.issued_ms == clock.now_ms  # real issue time, not the simulated calendar time
    decisions = sent.records(catalog.decisions, Decision)
    assert {d.decision_id for d in decisions} == {decisions[0].decision_id}
    decision = decisions[0]
    assert (decision.stream, decision.kind, decision.department) == ("ringback", "lunch", "traffic")
    assert decision.command_id == command.command_id
    assert decision.attrs["situation"] == "lunch"
    assert decision.attrs["local_time"].startswith("2026-11-30T12:20")


async def test_business_hours_records_the_decision_without_a_command(
    citizen: faust.App, catalog: Any, sent: Sent, when: Clock
) -> None:
    when.now_ms = seoul_ms(2026, 11, 30, 10, 0)
    async with citizen.agents["callguard.ringback"].test_context() as ctx:
        await ctx.put(key=b"c-2", value=encode(call_event(call_id="c-2")))
    assert sent.records(catalog.commands, PbxCommand) == []
    (decision,) = sent.records(catalog.decisions, Decision)
    assert decision.kind == "default" and decision.command_id == ""


async def test_chuseok_gets_the_holiday_ringback(
    citizen: faust.App, catalog: Any, sent: Sent, when: Clock
) -> None:
    when.now_ms = seoul_ms(2026, 9, 25, 10, 0)
    async with citizen.agents["callguard.ringback"].test_context() as ctx:
        await ctx.put(key=b"c-3", value=encode(call_event(call_id="c-3")))
    (command,) = sent.records(catalog.commands, PbxCommand)
    assert command.args == {"moh_class": "holiday"} and "Chuseok" in command.reason


async def test_malformed_event_is_dead_lettered(
    citizen: faust.App, catalog: Any, sent: Sent
) -> None:
    async with citizen.agents["callguard.ringback"].test_context() as ctx:
        await ctx.put(key=b"c-4", value=b'{"call_id": "c-4"}')
        await ctx.put(key=b"c-5", value=encode(call_event(call_id="c-5")))
    (letter,) = sent.records(catalog.dead_letters, DeadLetter)
    assert letter.consumer == "ringback"
    assert len(sent.records(catalog.decisions, Decision)) == 1
