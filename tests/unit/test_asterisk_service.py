"""The connector process: command consumption with ordered commits, retries, dead letters,
record routing, settings, and a clean start/stop with fake Kafka clients."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from connectors.asterisk.ari import PbxUnavailable
from connectors.asterisk.model import wall_ms
from connectors.asterisk.service import (
    CommandService,
    ConnectorConfig,
    KafkaOutput,
    OffsetTracker,
    SerialByKey,
    _poll_producer,
    serve,
)
from connectors.kafka.topics import TopicCatalog
from schemas.codec import decode, encode
from schemas.records import CommandResult, DeadLetter, PbxCommand
from tests.samples import call_event
from tests.unit.test_asterisk_fakes import T0, directory

CATALOG = TopicCatalog(prefix="t-")


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, key: bytes, value: bytes) -> None:
        self._t, self._p, self._o, self._k, self._v = topic, partition, offset, key, value

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def key(self) -> bytes:
        return self._k

    def value(self) -> bytes:
        return self._v

    def error(self) -> None:
        return None


class FakeConsumer:
    def __init__(self, messages: list[FakeMessage]) -> None:
        self.queue = deque(messages)
        self.commits: list[tuple[str, int, int]] = []
        self.subscribed: list[str] = []
        self.closed = False

    def subscribe(self, topics: list[str], on_revoke: Any = None) -> None:
        self.subscribed = topics
        self.on_revoke = on_revoke

    def poll(self, timeout: float) -> FakeMessage | None:
        if self.queue:
            return self.queue.popleft()
        time.sleep(min(timeout, 0.01))
        return None

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        assert asynchronous is False
        self.commits += [(tp.topic, tp.partition, tp.offset) for tp in offsets]

    def close(self) -> None:
        self.closed = True

    def position(self, topic: str, partition: int) -> int:
        return max((o for t, p, o in self.commits if (t, p) == (topic, partition)), default=-1)


class FakeProducer:
    """Acknowledges on poll(); ``fail`` = how many deliveries fail first."""

    def __init__(self, fail: int = 0) -> None:
        self.produced: list[tuple[str, bytes, bytes | None]] = []
        self.pending: list[tuple[Any, tuple[str, bytes, bytes | None]]] = []
        self.fail = fail

    def produce(self, topic: str, value: bytes, key: bytes | None, on_delivery: Any) -> None:
        self.produced.append((topic, value, key))
        self.pending.append((on_delivery, (topic, value, key)))

    def poll(self, timeout: float) -> int:
        pending, self.pending = self.pending, []
        for callback, record in pending:
            if self.fail:
                self.fail -= 1
                callback("broker down", None)
            else:
                callback(None, record)
        time.sleep(min(timeout, 0.005))
        return len(pending)

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return 0

    def on(self, topic: str) -> list[tuple[bytes, bytes | None]]:
        return [(v, k) for t, v, k in self.produced if t == topic]


def command_message(
    offset: int, call_id: str, command_id: str, partition: int = 0, issued_ms: int = T0
) -> FakeMessage:
    command = PbxCommand(
        command_id=command_id,
        call_id=call_id,
        action="hangup",
        issued_ms=issued_ms,
        issued_by="test",
        reason="r",
    )
    return FakeMessage(CATALOG.commands, partition, offset, call_id.encode(), encode(command))


class ScriptedApplier:
    """Fails with PbxUnavailable ``outages[command_id]`` times, then applies."""

    def __init__(
        self, outages: dict[str, int] | None = None, delay: dict[str, float] | None = None
    ):
        self.outages = dict(outages or {})
        self.delay = delay or {}
        self.attempts: list[str] = []

    async def apply(self, command: PbxCommand) -> CommandResult:
        self.attempts.append(command.command_id)
        await asyncio.sleep(self.delay.get(command.command_id, 0))
        if self.outages.get(command.command_id, 0) > 0:
            self.outages[command.command_id] -= 1
            raise PbxUnavailable("connection refused")
        return CommandResult(
            command_id=command.command_id,
            call_id=command.call_id,
            action=command.action,
            status="applied",
            ts_ms=T0,
        )


async def until(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def service(consumer, producer, applier, stop) -> CommandService:
    return CommandService(
        consumer,
        KafkaOutput(producer, CATALOG),
        applier,
        commands_topic=CATALOG.commands,
        results_topic=CATALOG.command_results,
        dead_letter_topic=CATALOG.dead_letters,
        stop=stop,
        now_ms=lambda: T0,
        commit_interval_s=0.0,
        max_backoff_s=0.02,
    )


# -- pure helpers ----------------------------------------------------------------------------


def test_offset_tracker_commits_only_below_the_oldest_unfinished() -> None:
    tracker = OffsetTracker()
    tp = ("t", 0)
    for offset in (5, 6, 7):
        tracker.start(tp, offset)
    assert tracker.committable() == {tp: 5}
    tracker.finish(tp, 6)
    tracker.finish(tp, 7)
    assert tracker.committable() == {tp: 5}  # 5 still running
    tracker.finish(tp, 5)
    assert tracker.committable() == {tp: 8}
    tracker.committed({tp: 8})
    assert tracker.committable() == {}
    tracker.start(("t", 1), 0)
    tracker.revoke([("t", 1)])
    assert tracker.committable() == {} and tracker.in_flight() == 0


async def test_serial_by_key_orders_one_key_and_overlaps_others() -> None:
    serial, log = SerialByKey(), []

    def job(name: str, delay: float):
        async def run() -> None:
            log.append(f"{name}+")
            await asyncio.sleep(delay)
            log.append(f"{name}-")

        return run

    serial.submit("a", job("a1", 0.05))
    serial.submit("a", job("a2", 0))
    serial.submit("b", job("b1", 0))
    await asyncio.gather(*serial.tasks)
    assert log.index("a1-") < log.index("a2+")  # same call: in order
    assert log.index("b1-") < log.index("a1-")  # other call: not held up


def test_kafka_output_routes_records_by_type_keyed_by_call() -> None:
    producer = FakeProducer()
    output = KafkaOutput(producer, CATALOG)
    output.emit(call_event(call_id="call-7"))
    ((value, key),) = producer.on(CATALOG.call_events)
    assert key == b"call-7" and json.loads(value)["call_id"] == "call-7"


def test_kafka_output_waits_when_the_local_queue_is_full() -> None:
    class Full(FakeProducer):
        def __init__(self) -> None:
            super().__init__()
            self.refusals = 2

        def produce(self, *args: Any, **kw: Any) -> None:
            if self.refusals:
                self.refusals -= 1
                raise BufferError
            super().produce(*args, **kw)

    producer = Full()
    KafkaOutput(producer, CATALOG).emit(call_event())
    assert len(producer.produced) == 1


def test_config_from_the_real_settings(tmp_path: Path) -> None:
    from pipelines.settings import Settings

    settings = Settings(topic_prefix="x-", data_dir=tmp_path)
    config = ConnectorConfig.from_settings(settings)
    assert config.group_id == "x-callguard-asterisk-connector"
    assert config.catalog.commands == "x-pbx.commands"
    assert config.store_path == tmp_path / "asterisk-connector" / "commands.sqlite"
    assert (config.rtp_port_min, config.rtp_port_max, config.chunk_ms) == (32000, 32999, 200)
    assert config.no_answer_timeout_s == 30.0


# -- command consumption ---------------------------------------------------------------------


async def test_commands_results_dead_letters_and_ordered_commits() -> None:
    consumer = FakeConsumer(
        [
            command_message(0, "call-a", "c0"),
            FakeMessage(CATALOG.commands, 0, 1, b"call-b", b'{"command_id": '),  # malformed
            command_message(2, "call-c", "c2"),  # PBX down twice, then fine
            command_message(3, "call-d", "c3"),
        ]
    )
    producer = FakeProducer()
    applier = ScriptedApplier(outages={"c2": 2}, delay={"c2": 0.05})
    stop = asyncio.Event()
    svc = service(consumer, producer, applier, stop)
    poller = asyncio.create_task(_poll_producer(producer))
    runner = asyncio.create_task(svc.run())
    try:
        # c3 (another call) finishes while c2 waits for the PBX: offset 2 holds the commit
        await until(lambda: len(producer.on(CATALOG.command_results)) >= 2)
        await asyncio.sleep(0.05)
        assert consumer.position(CATALOG.commands, 0) <= 2
        await until(lambda: len(producer.on(CATALOG.command_results)) == 3)
        await until(lambda: consumer.position(CATALOG.commands, 0) == 4)
    finally:
        stop.set()
        await runner
        await svc.drain(1.0)
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
        svc.close()
    assert consumer.subscribed == [CATALOG.commands] and consumer.closed
    assert applier.attempts.count("c2") == 3
    results = [decode(CommandResult, v) for v, _ in producer.on(CATALOG.command_results)]
    assert sorted(r.command_id for r in results) == ["c0", "c2", "c3"]
    keys = {k for _, k in producer.on(CATALOG.command_results)}
    assert keys == {b"call-a", b"call-c", b"call-d"}
    (letter,) = [decode(DeadLetter, v) for v, _ in producer.on(CATALOG.dead_letters)]
    assert (letter.consumer, letter.source_offset, letter.error_type) == (
        "asterisk-connector",
        1,
        "json",
    )


async def test_stopping_during_an_outage_leaves_the_command_uncommitted() -> None:
    consumer = FakeConsumer(
        [command_message(0, "call-a", "c0"), command_message(1, "call-a", "c1")]
    )
    producer = FakeProducer()
    applier = ScriptedApplier(outages={"c0": 10_000})
    stop = asyncio.Event()
    svc = service(consumer, producer, applier, stop)
    poller = asyncio.create_task(_poll_producer(producer))
    runner = asyncio.create_task(svc.run())
    await until(lambda: applier.attempts.count("c0") >= 2)
    stop.set()
    await runner
    await svc.drain(1.0)
    poller.cancel()
    await asyncio.gather(poller, return_exceptions=True)
    svc.close()
    assert producer.on(CATALOG.command_results) == []
    assert "c1" not in applier.attempts  # same call: waits behind c0
    assert consumer.position(CATALOG.commands, 0) <= 0  # replayed after a restart


async def test_results_are_redelivered_until_kafka_acknowledges() -> None:
    consumer = FakeConsumer([command_message(0, "call-a", "c0")])
    producer = FakeProducer(fail=1)
    stop = asyncio.Event()
    svc = service(consumer, producer, ScriptedApplier(), stop)
    poller = asyncio.create_task(_poll_producer(producer))
    runner = asyncio.create_task(svc.run())
    try:
        await until(lambda: consumer.position(CATALOG.commands, 0) == 1, timeout_s=5)
    finally:
        stop.set()
        await runner
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
        svc.close()
    assert len(producer.on(CATALOG.command_results)) == 2  # first delivery failed


# -- the whole process -------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(30)
async def test_serve_starts_and_stops_cleanly_without_a_pbx(tmp_path: Path) -> None:
    dead = _closed_port()  # never a real PBX: unit tests must not touch one
    config = ConnectorConfig(
        kafka_bootstrap="unused",
        catalog=CATALOG,
        ari_url=f"http://127.0.0.1:{dead}",
        ari_user="u",
        ari_password="p",
        app="callguard-test",
        ami_host="127.0.0.1",
        ami_port=dead,
        ami_user="u",
        ami_password="p",
        rtp_host="127.0.0.1",
        rtp_port_min=45000,
        rtp_port_max=45010,
        chunk_ms=200,
        data_dir=tmp_path,
    )
    consumer = FakeConsumer([command_message(0, "call-gone", "c0", issued_ms=wall_ms())])
    producer = FakeProducer()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(config, directory(), stop=stop, producer=producer, consumer=consumer)
    )
    await until(lambda: consumer.position(CATALOG.commands, 0) == 1)
    stop.set()
    assert await asyncio.wait_for(task, 15) == 0
    ((value, key),) = producer.on(CATALOG.command_results)
    result = decode(CommandResult, value)
    assert (result.status, result.detail, key) == ("failed", "unknown call", b"call-gone")
    assert config.store_path.exists() and consumer.closed


def test_connector_settings_are_read(tmp_path: Path) -> None:
    from pipelines.settings import Settings

    settings = Settings(
        data_dir=tmp_path,
        asterisk_no_answer_timeout_s=12,
        asterisk_sounds_dir="/srv/sounds",
        asterisk_command_max_age_s=60,
        asterisk_cdr_timezone="Asia/Seoul",
    )
    config = ConnectorConfig.from_settings(settings)
    assert (config.no_answer_timeout_s, config.sounds_dir, config.command_max_age_s) == (
        12.0,
        "/srv/sounds",
        60.0,
    )
    assert config.cdr_tz is not None and str(config.cdr_tz) == "Asia/Seoul"
