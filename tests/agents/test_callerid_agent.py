"""The caller-ID branding agent: outbound calls → branded display (+ KakaoTalk) + decision."""

from __future__ import annotations

from typing import Any

import faust
import pytest

from connectors.notify.requests import ALIMTALK, BRANDED_CALL
from pipelines.settings import Settings
from schemas.codec import encode
from schemas.records import CallEvent, Decision
from tests.agents.citizen import FakeNotifier, citizen_app
from tests.agents.conftest import Clock, Sent
from tests.samples import call_event


@pytest.fixture
def display() -> FakeNotifier:
    return FakeNotifier(BRANDED_CALL)


@pytest.fixture
def kakao() -> FakeNotifier:
    return FakeNotifier(ALIMTALK, status="failed")


@pytest.fixture
def citizen(
    settings: Settings, clock: Clock, display: FakeNotifier, kakao: FakeNotifier
) -> faust.App:
    return citizen_app(settings, clock, display, kakao)


def outbound(call_id: str, callee: str) -> bytes:
    base = call_event(call_id=call_id, event_id=f"e-{call_id}").asdict()
    base.update(
        direction="outbound",
        callee=callee,
        caller="02-120-1100",
        presented_caller_id="02-120-1100",
    )
    return encode(CallEvent(**base))


async def test_android_gets_display_ios_and_unknown_get_kakao_too(
    citizen: faust.App, catalog: Any, sent: Sent, display: FakeNotifier, kakao: FakeNotifier
) -> None:
    async with citizen.agents["callguard.callerid"].test_context() as ctx:
        await ctx.put(key=b"a", value=outbound("a", "001"))  # android (callee_platforms.csv)
        await ctx.put(key=b"i", value=outbound("i", "002"))  # ios
        await ctx.put(key=b"u", value=outbound("u", "010-5555-0000"))  # unknown
        await ctx.put(key=b"x", value=encode(call_event(call_id="x")))  # inbound: ignored
    assert [b["call_id"] for b in display.bodies] == ["a", "i", "u"]
    first = display.bodies[0]
    assert first["display_name"] == "서울시 교통과"
    assert first["caller_number"] == "021201100" and first["callee_number"] == "001"
    assert first["request_id"] == "brand-a"
    assert [b["call_id"] for b in kakao.bodies] == ["i", "u"]
    msg = kakao.bodies[0]
    assert msg["variables"] == {
        "department": "서울시 교통과",
        "purpose": "교통 민원 회신",
        "callback_number": "02-120-1100",
    }
    assert "02-120-1100" in msg["message"] and msg["platform"] == "ios"
    assert kakao.bodies[1]["platform"] == "unknown"
    decisions = {d.call_id: d for d in sent.records(catalog.decisions, Decision)}
    assert decisions["a"].kind == "display" and decisions["a"].stream == "callerid"
    assert decisions["a"].attrs == {"platform": "android", "display": "sent"}
    assert decisions["i"].kind == "display_kakao"
    assert decisions["i"].attrs["kakao"] == "failed" and decisions["i"].attrs["display"] == "sent"
    assert set(decisions) == {"a", "i", "u"}
