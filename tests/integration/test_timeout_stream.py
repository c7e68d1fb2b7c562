"""The timeout stream on real parts, with the rule's durations shrunk to seconds.

1. Kafka + faust worker + sink + chDB, the PBX played by the test (events and command results
   produced by hand): notice → armed → staff key → termination announcement → its result →
   hangup; every decision lands in ClickHouse with who and why.
2. Fault: the worker is SIGKILLed after the rule armed; the restarted worker recovers the state
   from the changelog and the termination and the hangup happen exactly once.
3. With the real Asterisk, connector and SIP phones (skipped when the PBX is not up or another
   connector is using it): the caller's phone records the termination announcement and then
   sees the BYE; the CDR and ClickHouse show the reason.
"""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from connectors.kafka.topics import TopicCatalog
from pipelines.core import timeout as core
from pipelines.settings import Settings
from schemas.codec import decode, encode
from schemas.records import Cdr, CommandResult, Decision, PbxCommand
from tests.integration.conftest import (
    REPO,
    SinkHandle,
    WorkerProcess,
    place_call,
    read_topic,
    wait_until,
)
from tests.integration.test_asterisk_connector import (  # audio checks
    read_wav,
    segment_match,
)
from tests.samples import call_event

# ticks come every 5 s (StreamOptions): the notice's window [3 s, 10 s) always holds one
NOTICE_S, LIMIT_S = 3, 10

POLICY = f"""
[defaults]
notice_after_s = {NOTICE_S}
limit_s = {LIMIT_S}
staff_key = "*9"
justified_key = "*0"
hangup_safety_s = 30
"""


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The integration settings with the rule's durations in seconds."""
    path = tmp_path / "timeout.toml"
    path.write_text(POLICY)
    return settings.model_copy(update={"timeout_policy_file": path})


def now_ms() -> int:
    return int(time.time() * 1000)


class FakePbx:
    """Produces what the PBX connector would: call events and command results."""

    def __init__(self, producer: Producer, catalog: TopicCatalog, call_id: str) -> None:
        self.producer = producer
        self.catalog = catalog
        self.call_id = call_id
        self.n = 0

    def event(self, type_: str, **kw: Any) -> None:
        self.n += 1
        record = call_event(
            call_id=self.call_id,
            event_id=f"{self.call_id}-{self.n}",
            type_=type_,
            ts_ms=now_ms(),
            **kw,
        )
        self.producer.produce(
            self.catalog.call_events, key=self.call_id.encode(), value=encode(record)
        )
        self.producer.flush(10)

    def keys(self, keys: str) -> None:
        for digit in keys:
            self.event("dtmf", leg="staff", digit=digit)
            time.sleep(0.2)

    def result(self, command: PbxCommand, status: str = "applied") -> None:
        record = CommandResult(
            command_id=command.command_id,
            call_id=command.call_id,
            action=command.action,
            status=status,
            ts_ms=now_ms(),
            detail="test",
        )
        self.producer.produce(
            self.catalog.command_results, key=self.call_id.encode(), value=encode(record)
        )
        self.producer.flush(10)


def commands(bootstrap: str, catalog: TopicCatalog, call_id: str) -> list[PbxCommand]:
    found = [decode(PbxCommand, m.value()) for m in read_topic(bootstrap, catalog.commands)]
    return [c for c in found if c.call_id == call_id and c.issued_by == "timeout"]


def decisions(bootstrap: str, catalog: TopicCatalog, call_id: str) -> list[Decision]:
    found = [decode(Decision, m.value()) for m in read_topic(bootstrap, catalog.decisions)]
    return [d for d in found if d.call_id == call_id and d.stream == "timeout"]


def wait_command(
    bootstrap: str, catalog: TopicCatalog, call_id: str, kind: str, timeout_s: float = 60
) -> PbxCommand:
    wanted = core.command_id(call_id, kind)
    found = wait_until(
        lambda: [c for c in commands(bootstrap, catalog, call_id) if c.command_id == wanted],
        timeout_s,
    )
    return found[0]  # type: ignore[no-any-return]


def worker_ticking(bootstrap: str, catalog: TopicCatalog) -> None:
    """Wait until the worker owns its partitions and ticks (timers run from then on)."""
    wait_until(lambda: read_topic(bootstrap, catalog.ticks), 90)


def answered(pbx: FakePbx) -> None:
    pbx.event("call_started")
    pbx.event("answered")
    pbx.event("bridged")


def test_timeout_rule_through_kafka_worker_and_clickhouse(
    bootstrap: str,
    catalog: TopicCatalog,
    sink: SinkHandle,
    worker: WorkerProcess,
    producer: Producer,
) -> None:
    call_id = f"to-{uuid.uuid4().hex[:12]}"
    pbx = FakePbx(producer, catalog, call_id)
    worker_ticking(bootstrap, catalog)
    answered(pbx)
    started = time.monotonic()

    notice = wait_command(bootstrap, catalog, call_id, "notice", 90)
    assert notice.args == {"media": "timeout-notice", "target": "caller"}
    pbx.keys("*9")  # before the limit: logged only
    wait_until(lambda: "armed" in [d.kind for d in decisions(bootstrap, catalog, call_id)], 60)
    assert time.monotonic() - started >= LIMIT_S - 1  # not armed early (PBX/worker same host)
    assert not [c for c in commands(bootstrap, catalog, call_id) if c.action == "hangup"]

    pbx.keys("*9")  # after the limit: the announcement, and only after its result the hangup
    terminate = wait_command(bootstrap, catalog, call_id, "terminate")
    assert terminate.args == {"media": "timeout-termination", "target": "call", "wait": "true"}
    time.sleep(3)
    assert not [c for c in commands(bootstrap, catalog, call_id) if c.action == "hangup"]
    pbx.result(terminate)
    pbx.result(terminate, "duplicate")  # a redelivered result changes nothing
    hangup = wait_command(bootstrap, catalog, call_id, "hangup")
    assert hangup.args == {"cause": "time_limit"}
    pbx.result(hangup)
    pbx.event("hangup", hangup_cause="time_limit")

    rows = wait_until(
        lambda: (
            (
                found := sink.query(
                    "SELECT kind, actor, reason, department, command_id FROM decisions FINAL "
                    f"WHERE call_id = '{call_id}' AND stream = 'timeout' ORDER BY ts_ms, kind"
                ).rows
            )
            and [r[0] for r in found].count("hangup") == 1
            and found
        ),
        60,
    )
    kinds = [(r[0], r[1]) for r in rows]
    assert kinds == [
        ("notice", "system"),
        ("key_before_limit", "staff"),
        ("armed", "system"),
        ("terminate", "staff"),
        ("hangup", "system"),
    ], kinds
    assert all(r[3] == "traffic" and r[2] for r in rows)
    by_kind = {r[0]: r for r in rows}
    assert by_kind["terminate"][4] == terminate.command_id
    assert "*9" in by_kind["terminate"][2]
    assert by_kind["hangup"][2] == "termination announcement finished"
    # a monthly report's question: terminations per department
    assert (
        sink.count(
            "SELECT count() FROM decisions FINAL WHERE stream = 'timeout' AND kind = 'hangup' "
            f"AND department = 'traffic' AND call_id = '{call_id}'"
        )
        == 1
    )
    assert [c.action for c in commands(bootstrap, catalog, call_id)] == ["play", "play", "hangup"]
    assert worker.alive(), worker.log()


def test_worker_killed_after_arming_terminates_exactly_once(
    bootstrap: str, catalog: TopicCatalog, worker: WorkerProcess, producer: Producer
) -> None:
    call_id = f"to-crash-{random.randrange(10**9)}"
    pbx = FakePbx(producer, catalog, call_id)
    worker_ticking(bootstrap, catalog)
    answered(pbx)
    # "armed" is committed in the same transaction as the state that says so
    wait_until(lambda: "armed" in [d.kind for d in decisions(bootstrap, catalog, call_id)], 90)
    worker.kill()
    worker.start()
    time.sleep(2)
    pbx.keys("*9")
    terminate = wait_command(bootstrap, catalog, call_id, "terminate", 120)
    # a second crash between the announcement and its result
    worker.kill()
    worker.start()
    pbx.result(terminate)
    wait_command(bootstrap, catalog, call_id, "hangup", 120)
    pbx.event("hangup", hangup_cause="time_limit")
    time.sleep(8)  # give a duplicate every chance to show up (ticks run every 5 s)
    # Outputs are at-least-once (see pipelines/timeout/agents.py): a replay may repeat a
    # message, but always with the same command id, which the PBX connector applies once.
    # What must hold: one termination and one hangup command id, nothing else issued twice.
    sent = commands(bootstrap, catalog, call_id)
    ids = {c.command_id: c.args.get("media", c.action) for c in sent}
    assert sorted(ids.values()) == ["hangup", "timeout-notice", "timeout-termination"], sent
    assert set(ids) == {core.command_id(call_id, k) for k in ("notice", "terminate", "hangup")}
    made = {d.decision_id: d.kind for d in decisions(bootstrap, catalog, call_id)}
    # state was not lost: no second arming after the restart, one of each decision
    assert sorted(made.values()) == ["armed", "hangup", "notice", "terminate"], made
    assert worker.alive(), worker.log()


# --- with the real PBX ---------------------------------------------------------------------


@pytest.mark.usefixtures("pbx_free", "connector")  # in this order: wait for a free PBX first
def test_real_pbx_caller_hears_the_termination_then_the_bye(
    bootstrap: str,
    catalog: TopicCatalog,
    sink: SinkHandle,
    worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    from tests.support.phones import phone_system

    phones = phone_system()
    out, ringing, call_id = place_call(
        phones, bootstrap, catalog, "caller03", "staff01", "1100", ring_timeout_s=30
    )

    def timeout_kinds() -> list[str]:
        return [d.kind for d in decisions(bootstrap, catalog, call_id)]

    deadline = time.monotonic() + 60
    while "armed" not in timeout_kinds():
        assert time.monotonic() < deadline, timeout_kinds()
        phones.pump(0.5)
    heard = out.record_to(tmp_path / "caller-hears.wav")
    ringing.send_dtmf("*9")
    out.wait_disconnected(60)  # the BYE, after the announcement
    ringing.wait_disconnected(15)
    termination = REPO / "docker" / "asterisk" / "sounds" / "timeout-termination.wav"
    score = segment_match(read_wav(heard), read_wav(termination))
    assert score > 0.8, f"caller's recording vs timeout-termination: r={score:.3f}"

    results = {
        r.command_id: r
        for r in (
            decode(CommandResult, m.value()) for m in read_topic(bootstrap, catalog.command_results)
        )
        if r.call_id == call_id
    }
    play = results[core.command_id(call_id, "terminate")]
    hangup = results[core.command_id(call_id, "hangup")]
    assert play.status == "applied" and hangup.status == "applied"
    assert play.ts_ms <= hangup.ts_ms  # hung up only after the announcement had finished

    cdr = wait_until(
        lambda: [
            c
            for c in (decode(Cdr, m.value()) for m in read_topic(bootstrap, catalog.cdr))
            if c.call_id == call_id
        ],
        30,
    )[-1]
    assert cdr.hangup_cause == "time_limit", cdr
    rows = wait_until(
        lambda: (
            sink.query(
                "SELECT kind, actor, reason FROM decisions FINAL "
                f"WHERE call_id = '{call_id}' AND stream = 'timeout' ORDER BY ts_ms"
            ).rows
            if sink.count(
                "SELECT count() FROM decisions FINAL "
                f"WHERE call_id = '{call_id}' AND kind = 'hangup'"
            )
            else None
        ),
        60,
    )
    assert [r[0] for r in rows] == ["notice", "armed", "terminate", "hangup"], rows
    # the CDR reaches ClickHouse on its own schedule (AMI → Kafka → sink): wait for it too
    stored = wait_until(
        lambda: sink.count(
            "SELECT count() FROM cdrs FINAL "
            f"WHERE call_id = '{call_id}' AND hangup_cause = 'time_limit'"
        ),
        60,
    )
    assert stored == 1
