"""The masking audit agent: outbound CDRs presenting a non-office number are flagged."""

from __future__ import annotations

import logging
from typing import Any

import faust
import pytest

from connectors.notify.requests import ALIMTALK, BRANDED_CALL
from pipelines.settings import Settings
from schemas.codec import encode
from schemas.records import Cdr, Decision
from tests.agents.citizen import FakeNotifier, citizen_app
from tests.agents.conftest import Clock, Sent
from tests.samples import T0


@pytest.fixture
def citizen(settings: Settings, clock: Clock) -> faust.App:
    return citizen_app(settings, clock, FakeNotifier(BRANDED_CALL), FakeNotifier(ALIMTALK))


def cdr(
    call_id: str, presented: str, direction: str = "outbound", disposition: str = "ANSWERED"
) -> Cdr:
    return Cdr(
        call_id=call_id,
        direction=direction,
        department="traffic",
        caller=presented,
        callee="01055550000",
        presented_caller_id=presented,
        start_ms=T0,
        answer_ms=T0 + 3000,
        end_ms=T0 + 60000,
        duration_s=60.0,
        billsec_s=57.0,
        disposition=disposition,
    )


async def test_leaked_personal_number_is_flagged_and_logged_masked(
    citizen: faust.App, catalog: Any, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pipelines.masking.agents")
    async with citizen.agents["callguard.masking"].test_context() as ctx:
        await ctx.put(key=b"ok-1", value=encode(cdr("ok-1", "02-120-1100")))
        await ctx.put(key=b"ok-2", value=encode(cdr("ok-2", "021201200")))
        await ctx.put(key=b"in-1", value=encode(cdr("in-1", "010-1111-2222", "inbound")))
        await ctx.put(key=b"bad-1", value=encode(cdr("bad-1", "010-9876-5432")))
        # never placed (no department, unreachable number): nothing presented, nothing leaked
        await ctx.put(key=b"f-1", value=encode(cdr("f-1", "", disposition="FAILED")))
    (decision,) = sent.records(catalog.decisions, Decision)
    assert (decision.call_id, decision.stream, decision.kind) == (
        "bad-1",
        "masking",
        "personal_number_leaked",
    )
    assert decision.attrs == {"presented_masked": "010******32"}
    assert "9876" not in decision.reason
    (record,) = [r for r in caplog.records if "masking audit" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "010******32" in record.getMessage()
    assert "9876" not in record.getMessage() and "5432" not in record.getMessage()


async def test_an_answered_call_that_presented_nothing_is_flagged(
    citizen: faust.App, catalog: Any, sent: Sent
) -> None:
    async with citizen.agents["callguard.masking"].test_context() as ctx:
        await ctx.put(key=b"n-1", value=encode(cdr("n-1", "")))
    (decision,) = sent.records(catalog.decisions, Decision)
    assert decision.kind == "no_presented_number" and decision.attrs == {}
