"""Citizen-facing features end to end: real Asterisk, the connector, Kafka, faust, chDB.

* an inbound call at a simulated lunch time hears the lunch ringback on the caller's phone
  while the staff phone rings (cross-correlated with ringback-lunch.wav);
* a click-to-call presents the office number and department name in the INVITE the citizen
  receives, and the branding stream sends a branded-call request and (iOS callee) a KakaoTalk
  request that a local HTTP receiver validates against their JSON Schemas;
* a CDR presenting a personal mobile number is flagged (decision + masked WARNING), the real
  office-number CDR is not;
* the report queries (answer rate by branding mode, ringback heard, repeat-call rate) run on
  rows that went through the sink.

PBX tests share one Asterisk: run them under ``flock /tmp/callguard-pbx.lock``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from confluent_kafka import Producer

from connectors.kafka.topics import TopicCatalog
from connectors.notify.requests import ALIMTALK, BRANDED_CALL, schema_path
from pipelines.callerid.reports import answer_rate_by_mode_sql
from pipelines.demo import settings_env
from pipelines.ringback.reports import repeat_call_rate_sql, ringback_heard_sql
from pipelines.settings import Settings
from schemas.codec import decode, encode
from schemas.records import (
    CallEvent,
    CallSummary,
    Cdr,
    CommandResult,
    Decision,
    PbxCommand,
)
from tests.integration.conftest import REPO, SinkHandle, read_topic, wait_until
from tests.integration.test_asterisk_connector import command, read_wav, segment_match
from tests.support.phones import PhoneSystem, phone_system
from tests.support.receiver import Receiver

LUNCH_WAV = REPO / "docker" / "asterisk" / "sounds" / "ringback-lunch.wav"
AFTER_HOURS_WAV = REPO / "docker" / "asterisk" / "sounds" / "ringback-after-hours.wav"
SEOUL = ZoneInfo("Asia/Seoul")
MONDAY_LUNCH_MS = int(datetime(2026, 11, 30, 12, 20, tzinfo=SEOUL).timestamp() * 1000)

needs_pbx = pytest.mark.skipif(
    os.environ.get("CALLGUARD_ASTERISK_RUNNING") != "1",
    reason="needs the PBX: scripts/test.sh integration starts it",
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver({name: schema_path(name) for name in (BRANDED_CALL, ALIMTALK)}).start()
    yield r
    r.stop()


@pytest.fixture
def citizen_worker(
    settings: Settings, catalog: TopicCatalog, receiver: Receiver, tmp_path: Path
) -> Iterator[Path]:
    log_path = tmp_path / "citizen-worker.log"
    env = settings_env(settings)
    env.update(
        CITIZEN_CALENDAR_MS=str(MONDAY_LUNCH_MS),
        CITIZEN_BRANDED_URL=receiver.url(BRANDED_CALL),
        CITIZEN_ALIMTALK_URL=receiver.url(ALIMTALK),
    )
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.citizen_worker", "worker", "-l", "info"],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: b"Ready" in log_path.read_bytes() or proc.poll() is not None, 90)
            assert proc.poll() is None, log_path.read_text()
            yield log_path
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def phones() -> PhoneSystem:
    return phone_system()


def events_of(bootstrap: str, catalog: TopicCatalog, call_id: str) -> list[CallEvent]:
    return [
        e
        for e in (decode(CallEvent, m.value()) for m in read_topic(bootstrap, catalog.call_events))
        if e.call_id == call_id
    ]


def results_of(bootstrap: str, catalog: TopicCatalog, command_id: str) -> list[CommandResult]:
    return [
        r
        for r in (
            decode(CommandResult, m.value()) for m in read_topic(bootstrap, catalog.command_results)
        )
        if r.command_id == command_id
    ]


@needs_pbx
def test_a_call_at_lunch_time_hears_the_lunch_ringback(
    bootstrap: str,
    catalog: TopicCatalog,
    sink: SinkHandle,
    citizen_worker: Path,
    connector: Path,
    phones: PhoneSystem,
    tmp_path: Path,
) -> None:
    caller = phones.register("caller03")
    staff = phones.register("staff01")
    out = caller.call("1100")
    out.wait_confirmed(15)  # the connector answers to play the consent notice
    heard = out.record_to(tmp_path / "caller-hears.wav")
    ringing = staff.wait_incoming(30)  # the notice is over: ringback while staff rings
    phones.pump(11.0)  # one lunch clip (8.3 s) and more, staff not answering yet
    out.stop_recording()
    ringing.answer()
    ringing.wait_confirmed(10)
    phones.pump(1.0)

    started = wait_until(
        lambda: [
            e
            for e in (
                decode(CallEvent, m.value()) for m in read_topic(bootstrap, catalog.call_events)
            )
            if e.type == "call_started" and e.callee == "1100"
        ],
        20,
    )
    call_id = started[-1].call_id
    out.hangup()
    ringing.wait_disconnected(15)

    # the stream's command, applied by the connector to this call
    (result,) = wait_until(lambda: results_of(bootstrap, catalog, f"ringback-{call_id}"), 30)
    assert result.status == "applied", result
    commands = [
        decode(PbxCommand, m.value())
        for m in read_topic(bootstrap, catalog.commands)
        if m.key() == call_id.encode()
    ]
    assert [c.args for c in commands] == [{"moh_class": "lunch"}]

    # what the caller heard while the staff phone rang
    recording = read_wav(heard)
    r = segment_match(recording, read_wav(LUNCH_WAV))
    # control: another hold clip (the department's ordinary class would be a plain tone)
    other = segment_match(recording, read_wav(AFTER_HOURS_WAV))
    print(f"ringback match: lunch r={r:.3f}, after-hours r={other:.3f}")
    assert r > 0.6 and other < 0.5, f"caller's recording: lunch r={r:.3f}, other r={other:.3f}"

    # the decision reached ClickHouse: reports can count who heard which notice
    wait_until(
        lambda: (
            sink.count(
                "SELECT count() FROM decisions FINAL WHERE stream = 'ringback' "
                f"AND call_id = '{call_id}' AND kind = 'lunch'"
            )
            == 1
        ),
        30,
    )


@needs_pbx
def test_outbound_call_presents_the_office_number_and_is_branded(
    bootstrap: str,
    catalog: TopicCatalog,
    sink: SinkHandle,
    citizen_worker: Path,
    connector: Path,
    phones: PhoneSystem,
    producer: Producer,
    receiver: Receiver,
) -> None:
    staff = phones.register("staff02")
    citizen = phones.register("caller02")  # "002" is an iPhone in callee_platforms.csv
    call_id = f"call-{uuid.uuid4().hex}"
    originate = command(
        call_id, "originate", endpoint="002", staff_endpoint="staff02", department="traffic"
    )
    producer.produce(catalog.commands, key=call_id.encode(), value=encode(originate))
    producer.flush(10)
    staff_leg = staff.wait_incoming(30)
    staff_leg.answer()
    citizen_leg = citizen.wait_incoming(30)
    # what the citizen's phone receives: the office number, never a personal number
    pai = citizen_leg.headers.get("p-asserted-identity", "")
    assert "021201100" in pai and "교통과" in pai, citizen_leg.headers
    assert "021201100" in citizen_leg.headers.get("from", "")
    assert citizen_leg.remote_number == "021201100"
    citizen_leg.answer()
    citizen_leg.wait_confirmed(10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "bridged" not in [
        e.type for e in events_of(bootstrap, catalog, call_id)
    ]:
        phones.pump(0.5)
    citizen_leg.hangup()
    staff_leg.wait_disconnected(15)

    # the branding stream's requests reached the (stand-in) services, schema-valid
    wait_until(lambda: receiver.of(BRANDED_CALL) and receiver.of(ALIMTALK), 30)
    (display,) = [r for r in receiver.of(BRANDED_CALL) if r.body["call_id"] == call_id]
    assert display.valid, display.error
    assert display.body["caller_number"] == "021201100"
    assert display.body["display_name"] == "서울시 교통과"
    assert display.headers["Idempotency-Key"] == f"brand-{call_id}"
    (talk,) = [r for r in receiver.of(ALIMTALK) if r.body["call_id"] == call_id]
    assert talk.valid, talk.error
    assert talk.body["variables"]["callback_number"] == "02-120-1100"
    assert talk.body["platform"] == "ios"

    # a personal mobile leaked through some other path (e.g. the mobile app): flagged
    leaked_id = f"call-{uuid.uuid4().hex}"
    now = int(time.time() * 1000)
    leaked = Cdr(
        call_id=leaked_id,
        direction="outbound",
        department="traffic",
        caller="010-9876-5432",
        callee="002",
        presented_caller_id="010-9876-5432",
        start_ms=now - 30_000,
        answer_ms=now - 25_000,
        end_ms=now,
        duration_s=30.0,
        billsec_s=25.0,
        disposition="ANSWERED",
        origin="simulator",
    )
    producer.produce(catalog.cdr, key=leaked_id.encode(), value=encode(leaked))
    producer.flush(10)

    def masking(call: str) -> int:
        return sink.count(
            "SELECT count() FROM decisions FINAL WHERE stream = 'masking' "
            f"AND call_id = '{call}' AND kind = 'personal_number_leaked'"
        )

    wait_until(lambda: masking(leaked_id) == 1, 30)
    log = citizen_worker.read_text(errors="replace")
    assert "010******32" in log
    assert "010-9876-5432" not in log and "01098765432" not in log
    # the real call's CDR (office number) went through the audit without a finding
    wait_until(
        lambda: any(
            decode(Cdr, m.value()).call_id == call_id for m in read_topic(bootstrap, catalog.cdr)
        ),
        30,
    )
    time.sleep(2)
    assert masking(call_id) == 0

    # answer rate by branding mode: this call was answered with display + KakaoTalk
    wait_until(
        lambda: sink.count(f"SELECT count() FROM call_summaries FINAL WHERE call_id = '{call_id}'"),
        30,
    )
    wait_until(
        lambda: sink.count(
            "SELECT count() FROM decisions FINAL WHERE stream = 'callerid' "
            f"AND call_id = '{call_id}'"
        ),
        30,
    )
    rows = {row[0]: row for row in sink.query(answer_rate_by_mode_sql("traffic")).rows}
    assert rows["display_kakao"][2] >= 1


@needs_pbx
def test_staff_dialling_out_presents_the_office_number_android_gets_no_kakao(
    bootstrap: str,
    catalog: TopicCatalog,
    sink: SinkHandle,
    citizen_worker: Path,
    connector: Path,
    phones: PhoneSystem,
    receiver: Receiver,
) -> None:
    staff = phones.register("staff03")  # housing
    citizen = phones.register("caller01")  # "001" is an Android phone in callee_platforms.csv
    out = staff.call("001")
    citizen_leg = citizen.wait_incoming(30)
    pai = citizen_leg.headers.get("p-asserted-identity", "")
    assert "021201200" in pai and "주택정책과" in pai, citizen_leg.headers
    assert citizen_leg.remote_number == "021201200"
    citizen_leg.answer()
    citizen_leg.wait_confirmed(10)
    phones.pump(2.0)
    citizen_leg.hangup()
    out.wait_disconnected(15)
    started = wait_until(
        lambda: [
            e
            for e in (
                decode(CallEvent, m.value()) for m in read_topic(bootstrap, catalog.call_events)
            )
            if e.type == "call_started" and e.direction == "outbound"
        ],
        20,
    )
    call_id = started[-1].call_id
    assert started[-1].presented_caller_id == "02-120-1200"
    wait_until(lambda: [r for r in receiver.of(BRANDED_CALL) if r.body["call_id"] == call_id], 30)
    (display,) = [r for r in receiver.of(BRANDED_CALL) if r.body["call_id"] == call_id]
    assert display.valid and display.body["display_name"] == "서울시 주택정책과"
    wait_until(
        lambda: sink.count(
            "SELECT count() FROM decisions FINAL WHERE stream = 'callerid' "
            f"AND call_id = '{call_id}' AND kind = 'display'"
        ),
        30,
    )
    assert not [r for r in receiver.of(ALIMTALK) if r.body["call_id"] == call_id]


def test_report_queries_on_rows_from_the_sink(
    catalog: TopicCatalog, sink: SinkHandle, producer: Producer
) -> None:
    dept = f"it-{uuid.uuid4().hex[:8]}"
    hour = 3600_000
    t0 = 1_795_000_000_000

    def send(topic: str, key: str, record: object) -> None:
        producer.produce(topic, key=key.encode(), value=encode(record))  # type: ignore[arg-type]

    def started(call_id: str, caller: str, ts: int) -> CallEvent:
        return CallEvent(
            event_id=f"e-{call_id}",
            call_id=call_id,
            type="call_started",
            ts_ms=ts,
            direction="inbound",
            department=dept,
            caller=caller,
            callee="1100",
            origin="simulator",
        )

    def decided(call_id: str, stream: str, kind: str) -> Decision:
        return Decision(
            decision_id=f"d-{stream}-{call_id}",
            call_id=call_id,
            stream=stream,
            kind=kind,
            reason="seeded",
            ts_ms=t0,
            department=dept,
            attrs={"situation": kind},
        )

    def summary(call_id: str, answered: bool) -> CallSummary:
        return CallSummary(
            call_id=call_id,
            direction="outbound",
            department=dept,
            caller="02-120-1100",
            callee="001",
            started_ms=t0,
            answered_ms=t0 + 2000 if answered else 0,
            ended_ms=t0 + 60_000,
            talk_s=58.0 if answered else 0.0,
            events=4,
            duplicate_events=0,
            out_of_order_events=0,
            dtmf_digits="",
            hangup_cause="normal",
            origin="simulator",
        )

    ids = {name: f"{dept}-{name}" for name in ("a1", "a2", "a3", "b1", "b2", "o1", "o2", "o3")}
    for name, caller, ts in [
        ("a1", "010-1", t0),
        ("a2", "010-1", t0 + hour),  # the lunch caller called again an hour later
        ("a3", "010-2", t0),
        ("b1", "010-3", t0 + 100 * hour),
        ("b2", "010-3", t0 + 110 * hour),  # 10 h later: not within 4 h
    ]:
        send(catalog.call_events, ids[name], started(ids[name], caller, ts))
    for name, kind in [("a1", "lunch"), ("a2", "default"), ("b1", "lunch")]:
        send(catalog.decisions, ids[name], decided(ids[name], "ringback", kind))
    for name, answered in [("o1", True), ("o2", False), ("o3", True)]:
        send(catalog.summaries, ids[name], summary(ids[name], answered))
    send(catalog.decisions, ids["o1"], decided(ids["o1"], "callerid", "display"))
    send(catalog.decisions, ids["o2"], decided(ids["o2"], "callerid", "display"))
    send(catalog.decisions, ids["o3"], decided(ids["o3"], "callerid", "display_kakao"))
    producer.flush(10)

    wait_until(
        lambda: (
            sink.count(f"SELECT count() FROM call_summaries FINAL WHERE department = '{dept}'") == 3
            and sink.count(f"SELECT count() FROM decisions FINAL WHERE department = '{dept}'") == 6
            and sink.count(f"SELECT count() FROM call_events FINAL WHERE department = '{dept}'")
            == 5
        ),
        30,
    )
    rates = {r[0]: tuple(r[1:]) for r in sink.query(answer_rate_by_mode_sql(dept)).rows}
    assert rates == {"display": (2, 1, 0.5), "display_kakao": (1, 1, 1.0)}
    heard = {(r[1], r[3]) for r in sink.query(ringback_heard_sql(dept)).rows}
    assert heard == {("lunch", 2), ("default", 1)}
    repeat = {
        (r[0], r[1]): tuple(r[2:])
        for r in sink.query(repeat_call_rate_sql(4, t0 + 50 * hour, dept)).rows
    }
    assert repeat == {
        ("before", "lunch"): (1, 1, 1.0),
        ("before", "default"): (1, 0, 0.0),
        ("before", ""): (1, 0, 0.0),
        ("after", "lunch"): (1, 0, 0.0),
        ("after", ""): (1, 0, 0.0),  # b2: no ringback decision
    }
