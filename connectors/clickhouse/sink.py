"""The ClickHouse sink: Kafka topics → batched Arrow inserts, owned by one process.

chDB lets a single process open a data directory, so exactly one ``callguard sink`` writes
it and also answers read-only queries for everyone else (:mod:`connectors.clickhouse.query_api`).
With a ClickHouse server several sinks may run in one consumer group.

Delivery is at-least-once: offsets are committed only after the batch is inserted; tables are
ReplacingMergeTree on each message's id, so a batch replayed after a crash collapses on merge.
Messages that do not decode go to the dead-letter topic (never into a table) and the sink
carries on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from connectors.kafka.topics import KEY_PARTITIONER
from schemas.codec import MalformedMessage, decode, encode
from schemas.dead_letters import make_dead_letter
from schemas.records import WireRecord
from schemas.rows import STORED_TABLES, StoredTable

log = logging.getLogger(__name__)

CONSUMER = "clickhouse-sink"


@dataclass
class SinkStats:
    inserted: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0
    batches: int = 0
    last_flush_ms: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "inserted": dict(self.inserted),
            "dead_lettered": self.dead_lettered,
            "batches": self.batches,
            "last_flush_ms": self.last_flush_ms,
        }


class ClickHouseSink:
    def __init__(
        self,
        client: Client,
        *,
        bootstrap: str,
        group_id: str,
        topics: dict[str, StoredTable],
        dead_letter_topic: str,
        batch_rows: int = 5000,
        flush_seconds: float = 1.0,
        lock: threading.Lock | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.topics = topics
        self.dead_letter_topic = dead_letter_topic
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.lock = lock or threading.Lock()  # chDB: one query at a time per process
        self.clock = clock
        self.stats = SinkStats()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                # only what faust's transactions committed (exactly-once outputs)
                "isolation.level": "read_committed",
            }
        )
        self._producer = Producer(
            {"bootstrap.servers": bootstrap, "enable.idempotence": True, **KEY_PARTITIONER}
        )
        self._buffers: dict[str, list[WireRecord]] = {t.name: [] for t in topics.values()}
        self._pending = 0
        self._last_flush = clock()

    def _dead_letter(self, msg: Message, error: MalformedMessage) -> None:
        record = make_dead_letter(
            topic=msg.topic() or "",
            partition=msg.partition() or 0,
            offset=msg.offset() or 0,
            key=msg.key(),
            value=msg.value(),
            consumer=CONSUMER,
            error=error,
            now_ms=int(self.clock() * 1000),
        )
        log.warning(
            "dead-lettered %s[%s]@%s: %s", msg.topic(), msg.partition(), msg.offset(), error.reason
        )
        self._producer.produce(self.dead_letter_topic, key=msg.key(), value=encode(record))
        self.stats.dead_lettered += 1

    def handle(self, msg: Message) -> None:
        table = self.topics[msg.topic() or ""]
        try:
            record = decode(table.model, msg.value())
        except MalformedMessage as error:
            if msg.topic() == self.dead_letter_topic:
                # never loop a bad dead letter back onto its own topic
                log.error("unreadable dead letter at offset %s: %s", msg.offset(), error.reason)
                return
            self._dead_letter(msg, error)
            return
        self._buffers[table.name].append(record)
        self._pending += 1

    def flush(self) -> None:
        """Insert what is buffered, then commit the consumed offsets."""
        if self._pending:
            with self.lock:
                for table in self.topics.values():
                    rows = self._buffers[table.name]
                    if rows:
                        self.client.insert_arrow(table.name, table.to_arrow(rows))
                        self.stats.inserted[table.name] = self.stats.inserted.get(
                            table.name, 0
                        ) + len(rows)
                        rows.clear()
            self.stats.batches += 1
        self._producer.flush(30)
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:  # nothing new consumed is normal
                raise
        self._pending = 0
        self._last_flush = self.clock()
        self.stats.last_flush_ms = int(self._last_flush * 1000)

    def run(self, stop: threading.Event) -> None:
        self._consumer.subscribe(list(self.topics))
        log.info("sink consuming %d topics", len(self.topics))
        try:
            while not stop.is_set():
                for msg in self._consumer.consume(num_messages=1000, timeout=0.2):
                    error = msg.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            log.warning("consumer error: %s", error)
                        continue
                    self.handle(msg)
                due = self.clock() - self._last_flush >= self.flush_seconds
                if self._pending >= self.batch_rows or due:
                    self.flush()
            self.flush()
        finally:
            self._consumer.close()


def sink_topics(name_of: Callable[[str], str]) -> dict[str, StoredTable]:
    """Topic name → stored table, for every stored table."""
    return {name_of(t.topic_key): t for t in STORED_TABLES}
