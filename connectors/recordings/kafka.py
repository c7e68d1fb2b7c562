"""Kafka for the recording tools: a synchronous outbox with a spill file, and the audio replay.

:class:`KafkaOutbox` sends one record and waits until the broker acknowledged it, because an
access to a recording may only be granted once its audit record is safe.  When the broker does
not acknowledge, the record is appended to a local *pending* file (JSON lines) and
:class:`DeliveryFailed` is raised; :meth:`KafkaOutbox.resend_pending` sends those first the
next time, so an audit record is never silently lost.

:class:`KafkaChunkReplay` re-reads one partition of the audio topic between two offsets: the
recording stream's way back to the chunks of a spool file that was lost (a worker restarted
on another machine, a disk wiped).  Payloads pass through memory only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from connectors.kafka.topics import KEY_PARTITIONER
from schemas.codec import encode
from schemas.records import WireRecord

log = logging.getLogger(__name__)


class DeliveryFailed(RuntimeError):
    pass


class Outbox(Protocol):
    def send(self, topic: str, key: str, record: WireRecord) -> None: ...


class KafkaOutbox:
    def __init__(
        self, bootstrap: str, pending_path: Path | None = None, timeout_s: float = 15.0
    ) -> None:
        self.bootstrap = bootstrap
        self.pending_path = pending_path
        self.timeout_s = timeout_s
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "message.timeout.ms": int(timeout_s * 1000),
                "client.id": "callguard-recordings",
                **KEY_PARTITIONER,
            }
        )

    def _deliver(self, topic: str, key: bytes, value: bytes) -> None:
        errors: list[Any] = []
        delivered: list[bool] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(err)
            else:
                delivered.append(True)

        try:
            self._producer.produce(topic, value, key, on_delivery=on_delivery)
            self._producer.flush(self.timeout_s)
        except (BufferError, Exception) as exc:  # noqa: BLE001 - any failure means "not safe"
            raise DeliveryFailed(f"{topic}: {type(exc).__name__}") from None
        if errors or not delivered:
            reason = str(errors[0]) if errors else "no acknowledgement in time"
            raise DeliveryFailed(f"{topic}: {reason}")

    def send(self, topic: str, key: str, record: WireRecord) -> None:
        value = encode(record)
        try:
            self._deliver(topic, key.encode(), value)
        except DeliveryFailed:
            self._spill(topic, key, value)
            raise

    def _spill(self, topic: str, key: str, value: bytes) -> None:
        if self.pending_path is None:
            return
        self.pending_path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"topic": topic, "key": key, "value": value.decode()})
        with self.pending_path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
        log.error("kept an undelivered record for %s in %s", topic, self.pending_path)

    def resend_pending(self) -> int:
        """Send what earlier runs could not; returns how many went out."""
        if self.pending_path is None or not self.pending_path.exists():
            return 0
        lines = [ln for ln in self.pending_path.read_text(encoding="utf-8").splitlines() if ln]
        sent = 0
        for index, line in enumerate(lines):
            entry = json.loads(line)
            try:
                self._deliver(entry["topic"], entry["key"].encode(), entry["value"].encode())
            except DeliveryFailed:
                self.pending_path.write_text(
                    "".join(f"{ln}\n" for ln in lines[index:]), encoding="utf-8"
                )
                raise
            sent += 1
        self.pending_path.unlink()
        return sent


class ChunkReplay(Protocol):
    def read(
        self, partition: int, first_offset: int, last_offset: int
    ) -> Iterator[tuple[int, bytes | None]]: ...

    def offset_for_time(self, partition: int, ts_ms: int) -> int:
        """The first offset of a message at or after ``ts_ms`` (0 when unknown)."""
        ...


class KafkaChunkReplay:
    """``(offset, value)`` of every message in ``[first_offset, last_offset]`` of a partition."""

    def __init__(self, bootstrap: str, topic: str, timeout_s: float = 60.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.timeout_s = timeout_s

    def offset_for_time(self, partition: int, ts_ms: int) -> int:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"callguard-recording-replay-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        try:
            (found,) = consumer.offsets_for_times(
                [TopicPartition(self.topic, partition, max(ts_ms, 0))], timeout=self.timeout_s
            )
            return max(int(found.offset), 0)  # -1: no message that late
        finally:
            with contextlib.suppress(Exception):
                consumer.close()

    def read(
        self, partition: int, first_offset: int, last_offset: int
    ) -> Iterator[tuple[int, bytes | None]]:
        import time

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"callguard-recording-replay-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
            }
        )
        try:
            consumer.assign([TopicPartition(self.topic, partition, first_offset)])
            deadline = time.monotonic() + self.timeout_s
            while time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return
                    raise DeliveryFailed(f"replay of {self.topic}[{partition}]: {error}")
                offset = msg.offset() or 0
                deadline = time.monotonic() + self.timeout_s  # a quiet broker, not a long read
                if offset > last_offset:
                    return
                yield offset, msg.value()
                if offset >= last_offset:
                    return
            raise DeliveryFailed(f"replay of {self.topic}[{partition}] timed out")
        finally:
            with contextlib.suppress(Exception):
                consumer.close()
