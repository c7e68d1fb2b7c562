"""Integration fixtures: a genuine Apache Kafka broker (started by scripts/test.sh) and chDB.

Every test gets its own topic prefix (so its own topics and consumer groups) and its own
faust app id.  chDB allows one embedded engine per process, so the session shares one data
directory; tests keep apart by call ids and topic prefixes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from connectors.clickhouse.query_api import QueryResult, remote_health, remote_query
from connectors.kafka.topics import KEY_PARTITIONER, TopicCatalog, create_topics, delete_topics
from pipelines.app import catalog_for
from pipelines.demo import settings_env
from pipelines.settings import Settings
from schemas.codec import decode
from schemas.records import CallEvent

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def bootstrap() -> str:
    value = os.environ.get("CALLGUARD_KAFKA_BOOTSTRAP")
    if not value:
        pytest.fail(
            "integration tests need a Kafka broker: run `scripts/test.sh integration` "
            "(it starts one) or set CALLGUARD_KAFKA_BOOTSTRAP"
        )
    return value


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def settings(bootstrap: str, chdb_dir: Path) -> Settings:
    prefix = f"it-{uuid.uuid4().hex[:10]}."
    return Settings(
        kafka_bootstrap=bootstrap,
        topic_prefix=prefix,
        data_dir=chdb_dir,
        query_port=free_port(),
        worker_web_port=free_port(),
        sink_flush_seconds=0.3,
        session_timeout_s=10,  # a killed worker's partitions move on within seconds
        partitions=2,
        # Speech recognition has its own tests (test_abuse_stream, test_asr_offline); the
        # other tests' workers leave it out so each does not load a Whisper model.
        streams=["calls", "audio", "timeout", "citizen", "recording"],
    )


@pytest.fixture
def catalog(settings: Settings) -> Iterator[TopicCatalog]:
    catalog = catalog_for(settings)
    create_topics(settings.kafka_bootstrap, catalog.specs)
    yield catalog
    delete_topics(settings.kafka_bootstrap, [s.name for s in catalog.specs])


@pytest.fixture
def producer(bootstrap: str) -> Iterator[Producer]:
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, **KEY_PARTITIONER})
    yield p
    p.flush(10)


class SinkHandle:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def query(self, sql: str) -> QueryResult:
        return remote_query(self.settings.query_port, sql)

    def count(self, sql: str) -> int:
        return int(self.query(sql).rows[0][0])


@pytest.fixture
def sink(settings: Settings, catalog: TopicCatalog) -> Iterator[SinkHandle]:
    """The real sink (migrations, Kafka consumer, chDB, query API) in a thread of this process."""
    from pipelines.services import run_sink

    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run_sink(settings, stop)
        except BaseException as exc:  # noqa: BLE001 - reported by the fixture
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    wait_until(lambda: remote_health(settings.query_port) is not None or bool(errors), 60)
    assert not errors, errors
    yield SinkHandle(settings)
    stop.set()
    thread.join(30)
    assert not errors, errors


class WorkerProcess:
    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = settings_env(self.settings)
        env["CALLGUARD_LOG_LEVEL"] = "info"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines", "worker"],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no commit — what a crash looks like."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def worker(settings: Settings, catalog: TopicCatalog, tmp_path: Path) -> Iterator[WorkerProcess]:
    handle = WorkerProcess(settings, tmp_path / "worker.log")
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture
def connector(settings: Settings, catalog: TopicCatalog, tmp_path: Path) -> Iterator[Path]:
    """The Asterisk connector as its own process (`callguard connector asterisk`) on this
    test's topics; yields its log file. Needs the PBX (scripts/test.sh starts it)."""
    log_path = tmp_path / "connector.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines", "connector", "asterisk"],
            env=settings_env(settings),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            # ready once the ARI websocket holds the Stasis app
            wait_until(lambda: b"ARI" in log_path.read_bytes() or proc.poll() is not None, 30)
            time.sleep(1.0)
            assert proc.poll() is None, log_path.read_text()
            yield log_path
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until(check: Callable[[], Any], timeout_s: float, interval_s: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s (last: {last!r})")


def read_topic(
    bootstrap: str, topics: str | list[str], timeout_s: float = 30, committed_only: bool = True
) -> list[Any]:
    """Every message now on ``topics``: all partitions assigned from the beginning, read until
    each reaches its end offset (no consumer group, so no rebalance can hide a partition)."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    names = [topics] if isinstance(topics, str) else topics
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed" if committed_only else "read_uncommitted",
        }
    )
    try:
        metadata = consumer.list_topics(timeout=10).topics
        parts = [
            TopicPartition(name, p, OFFSET_BEGINNING)
            for name in names
            for p in metadata[name].partitions
        ]
        marks = {
            (tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=10) for tp in parts
        }
        # an empty partition is read already; its position stays "invalid" (negative)
        ends = {key: (high if high > low else -(10**9)) for key, (low, high) in marks.items()}
        consumer.assign(parts)
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                out.append(msg)
            positions = consumer.position(parts)
            # a transaction marker takes an offset but is no message: compare positions
            if all(tp.offset >= ends[(tp.topic, tp.partition)] for tp in positions):
                return out
        raise AssertionError(f"could not read {names} to their end within {timeout_s} s")
    finally:
        consumer.close()


# --- calls through the real PBX ----------------------------------------------------------


def other_connector_running() -> str:
    found = subprocess.run(
        ["pgrep", "-af", "pipelines connector asterisk"], capture_output=True, text=True
    ).stdout
    return "\n".join(line for line in found.splitlines() if "pgrep" not in line)


@pytest.fixture
def pbx_free() -> None:
    if os.environ.get("CALLGUARD_ASTERISK_RUNNING") != "1":
        pytest.skip("needs the PBX: scripts/test.sh integration starts it")
    deadline = time.monotonic() + float(os.environ.get("CALLGUARD_PBX_WAIT_S", "600"))
    while (busy := other_connector_running()) and time.monotonic() < deadline:
        time.sleep(30)  # another connector (e.g. a benchmark) is using the PBX: wait
    if busy:
        pytest.skip(f"the PBX is in use by another connector: {busy}")


def events_of(bootstrap: str, catalog: TopicCatalog, call_id: str | None = None) -> list[CallEvent]:
    found = [decode(CallEvent, m.value()) for m in read_topic(bootstrap, catalog.call_events)]
    return [e for e in found if call_id is None or e.call_id == call_id]


def place_call(
    phones: Any,
    bootstrap: str,
    catalog: TopicCatalog,
    caller: str,
    staff: str,
    line: str,
    heard: Path | None = None,
    ring_timeout_s: float = 40,
) -> tuple[Any, Any, str]:
    """Call ``line`` from ``caller``; ``staff`` answers; returns (caller leg, staff leg, id)."""
    known = {e.call_id for e in events_of(bootstrap, catalog)}
    desk = phones.register(staff)  # before dialling: without a notice staff rings at once
    out = phones.register(caller).call(line)
    out.wait_confirmed(15)  # the connector answers at once to play the notices
    if heard is not None:
        out.record_to(heard)
    ringing = desk.wait_incoming(ring_timeout_s)
    ringing.answer()
    ringing.wait_confirmed(10)
    deadline = time.monotonic() + 30
    while True:
        bridged = [
            e
            for e in events_of(bootstrap, catalog)
            if e.type == "bridged" and e.call_id not in known
        ]
        if bridged:
            return out, ringing, bridged[0].call_id
        assert time.monotonic() < deadline, "the call was never bridged"
        phones.pump(0.5)
