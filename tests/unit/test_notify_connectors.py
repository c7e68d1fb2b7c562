"""Branded-call and AlimTalk connectors: bodies match their schemas; HTTP behaviour."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.notify import requests
from connectors.notify.http import DisabledNotifier, HttpNotifier, notifier
from connectors.notify.platforms import CsvPlatforms
from connectors.notify.requests import ALIMTALK, BRANDED_CALL, InvalidRequest, schema_path
from pipelines.callerid.config import DEFAULT_FILE
from tests.support.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver({name: schema_path(name) for name in (BRANDED_CALL, ALIMTALK)}).start()
    yield r
    r.stop()


def branded(**kw: object) -> dict[str, object]:
    args: dict[str, object] = dict(
        request_id="brand-c1",
        call_id="c1",
        requested_ms=1,
        callee_number="010-5555-0000",
        caller_number="02-120-1100",
        display_name="서울시 교통과",
        info_text="교통과에서 전화드립니다.",
        department="traffic",
    )
    args.update(kw)
    return requests.branded_call(**args)  # type: ignore[arg-type]


def kakao(**kw: object) -> dict[str, object]:
    args: dict[str, object] = dict(
        request_id="kakao-c1",
        call_id="c1",
        requested_ms=1,
        recipient_number="010-5555-0000",
        department="서울시 교통과",
        purpose="교통 민원 회신",
        callback_number="02-120-1100",
        platform="ios",
    )
    args.update(kw)
    return requests.alimtalk(**args)  # type: ignore[arg-type]


def test_request_bodies_are_built_in_digits_and_validated() -> None:
    body = branded()
    assert body["callee_number"] == "01055550000" and body["caller_number"] == "021201100"
    message = kakao()
    assert "서울시 교통과" in str(message["message"]) and "02-120-1100" in str(message["message"])
    with pytest.raises(InvalidRequest, match="display_name"):
        branded(display_name="")
    with pytest.raises(InvalidRequest, match="platform"):
        kakao(platform="android")  # android gets the branded display, not a message
    with pytest.raises(InvalidRequest):
        branded(callee_number="PJSIP/caller")  # no digits


async def test_http_notifiers_post_schema_valid_bodies_with_an_idempotency_key(
    receiver: Receiver,
) -> None:
    display = HttpNotifier(BRANDED_CALL, receiver.url(BRANDED_CALL), token="secret")
    talk = notifier(ALIMTALK, receiver.url(ALIMTALK))
    try:
        assert (await display.send(branded())).status == "sent"
        assert (await talk.send(kakao())).status == "sent"
    finally:
        await display.close()
        await talk.close()
    (got,) = receiver.of(BRANDED_CALL)
    assert got.valid, got.error
    assert got.headers["Idempotency-Key"] == "brand-c1"
    assert got.headers["Authorization"] == "Bearer secret"
    (msg,) = receiver.of(ALIMTALK)
    assert msg.valid and msg.body["variables"]["callback_number"] == "02-120-1100"


async def test_failures_are_results_not_exceptions(receiver: Receiver) -> None:
    receiver.status = 503
    display = HttpNotifier(BRANDED_CALL, receiver.url(BRANDED_CALL), retries=2)
    result = await display.send(branded())
    assert (result.status, result.detail) == ("failed", "HTTP 503")
    assert len(receiver.of(BRANDED_CALL)) == 3  # retried
    receiver.status = 400
    assert (await display.send(branded(request_id="b2"))).detail == "HTTP 400"
    assert len(receiver.of(BRANDED_CALL)) == 4  # a 4xx is not retried
    invalid = dict(branded(), valid_for_s=0)
    assert (await display.send(invalid)).status == "rejected"  # never sent
    assert len(receiver.of(BRANDED_CALL)) == 4
    await display.close()
    nowhere = HttpNotifier(BRANDED_CALL, "http://127.0.0.1:1/x", retries=0, timeout_s=1)
    assert (await nowhere.send(branded())).status == "failed"
    await nowhere.close()
    off = DisabledNotifier(BRANDED_CALL)
    assert (await off.send(branded())).status == "disabled"


def test_platform_lookup_defaults_to_unknown(tmp_path) -> None:  # type: ignore[no-untyped-def]
    shipped = CsvPlatforms.load(DEFAULT_FILE.parent / "callee_platforms.csv")
    assert shipped("001") == "android" and shipped("002") == "ios"
    assert shipped("010-9999-0000") == "unknown"
    f = tmp_path / "p.csv"
    f.write_text("number,platform\n010-1234-5678,ios\n")
    assert CsvPlatforms.load(f)("01012345678") == "ios"
    f.write_text("010,blackberry\n")
    with pytest.raises(ValueError, match="blackberry"):
        CsvPlatforms.load(f)
    assert CsvPlatforms.load(None)("001") == "unknown"
