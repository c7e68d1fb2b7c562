"""Benchmark helper: the call tracker as a plain confluent-kafka consume → process → produce loop.

Started by ``bench.faust_vs_raw`` as ``python -m bench._raw_worker ...``; not meant to be run by
hand.  Per message it does what the faust agent (``pipelines.calls.agents``) does: decode with
``schemas.codec.decode`` (malformed → dead-letter topic), fold the event with the same pure core
``pipelines.core.calls.step`` into a dict of call states, and produce the outputs (summaries,
anomaly decisions).  With ``--changelog`` it also writes every new state to the table's
changelog topic, as the faust table does.

Commits follow the app's ``broker_commit_interval`` (1 s): ``exactly_once`` uses one
transactional producer, ``send_offsets_to_transaction`` and a commit per interval;
``at_least_once`` flushes the producer and commits the consumer offsets per interval.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from connectors.kafka.topics import TopicCatalog
from pipelines.core import calls as core
from schemas import mapping
from schemas.codec import MalformedMessage, decode, encode
from schemas.dead_letters import make_dead_letter
from schemas.records import CallEvent

log = logging.getLogger("bench.raw")

CONSUMER = "calls"
COMMIT_INTERVAL_S = 1.0  # the app's broker_commit_interval
BATCH = 500  # messages per consume() call at most
TIMEOUT_S = 30.0


class RawCallTracker:
    def __init__(
        self,
        bootstrap: str,
        catalog: TopicCatalog,
        group_id: str,
        exactly_once: bool,
        changelog: bool,
        ready_file: Path | None,
    ) -> None:
        self.catalog = catalog
        self.exactly_once = exactly_once
        self.changelog_topic = catalog.changelog("calls") if changelog else None
        self.ready_file = ready_file
        self.states: dict[str, core.CallState] = {}
        self.stopping = False
        self.pending = False  # processed messages not committed yet
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            }
        )
        producer_conf: dict[str, Any] = {"bootstrap.servers": bootstrap}
        if exactly_once:
            producer_conf["transactional.id"] = f"{group_id}-tx"
        self.producer = Producer(producer_conf)
        if exactly_once:
            self.producer.init_transactions(TIMEOUT_S)
            self.producer.begin_transaction()

    # --- per message: the same work as the faust agent ---------------------------------------

    def _send(self, topic: str, key: bytes | None, value: bytes, partition: int = -1) -> None:
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, partition=partition)
                return
            except BufferError:  # local queue full: serve delivery reports and retry
                self.producer.poll(0.05)

    def process(self, msg: Message) -> None:
        now_ms = int(time.time() * 1000)
        try:
            record = decode(CallEvent, msg.value())
        except MalformedMessage as error:
            dead = make_dead_letter(
                topic=msg.topic() or "",
                partition=msg.partition() or 0,
                offset=msg.offset() or 0,
                key=msg.key(),
                value=msg.value(),
                consumer=CONSUMER,
                error=error,
                now_ms=now_ms,
            )
            self._send(self.catalog.dead_letters, msg.key(), encode(dead))
            return
        state, outputs = core.step(
            self.states.get(record.call_id), mapping.call_observation(record), now_ms
        )
        self.states[record.call_id] = state
        if self.changelog_topic is not None:
            value = json.dumps({"partition": msg.partition(), "state": state.to_dict()})
            self._send(
                self.changelog_topic,
                json.dumps(record.call_id).encode(),
                value.encode(),
                partition=msg.partition() or 0,
            )
        for output in outputs:
            if isinstance(output, core.CallEnded):
                summary = mapping.call_summary(output)
                self._send(self.catalog.summaries, output.call_id.encode(), encode(summary))
            else:
                decision = mapping.anomaly_decision(CONSUMER, output, now_ms)
                self._send(self.catalog.decisions, output.call_id.encode(), encode(decision))

    # --- commits -----------------------------------------------------------------------------

    def commit(self) -> None:
        if not self.pending:
            return
        if self.exactly_once:
            assignment = self.consumer.assignment()
            if assignment:
                positions = self.consumer.position(assignment)
                offsets = [tp for tp in positions if tp.offset >= 0]
                self.producer.send_offsets_to_transaction(
                    offsets, self.consumer.consumer_group_metadata(), TIMEOUT_S
                )
            self.producer.commit_transaction(TIMEOUT_S)
            self.producer.begin_transaction()
        else:
            self.producer.flush(TIMEOUT_S)
            try:
                self.consumer.commit(asynchronous=False)
            except Exception as exc:  # noqa: BLE001 - nothing to commit is not an error here
                log.debug("commit: %s", exc)
        self.pending = False

    def on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", [p.partition for p in partitions])
        if self.ready_file is not None and partitions:
            self.ready_file.write_text(f"{time.time():.6f}\n")

    def on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("revoked %s", [p.partition for p in partitions])
        self.commit()

    # --- loop --------------------------------------------------------------------------------

    def run(self) -> None:
        self.consumer.subscribe(
            [self.catalog.call_events], on_assign=self.on_assign, on_revoke=self.on_revoke
        )
        last_commit = time.monotonic()
        try:
            while not self.stopping:
                for msg in self.consumer.consume(num_messages=BATCH, timeout=0.1):
                    error = msg.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            log.warning("consume error: %s", error)
                        continue
                    self.process(msg)
                    self.pending = True
                self.producer.poll(0)
                if time.monotonic() - last_commit >= COMMIT_INTERVAL_S:
                    self.commit()
                    last_commit = time.monotonic()
            self.commit()
        finally:
            if self.exactly_once:
                try:
                    self.producer.abort_transaction(TIMEOUT_S)
                except Exception as exc:  # noqa: BLE001 - best effort on the way out
                    log.debug("abort on exit: %s", exc)
            self.producer.flush(TIMEOUT_S)
            self.consumer.close()

    def stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--guarantee", required=True)
    parser.add_argument("--group-id", required=True)
    parser.add_argument("--changelog", action="store_true")
    parser.add_argument("--ready-file", type=Path, default=None)
    parser.add_argument("--loglevel", default="warning")
    args = parser.parse_args()
    logging.basicConfig(
        level=args.loglevel.upper(), stream=sys.stderr, format="%(asctime)s %(message)s"
    )

    tracker = RawCallTracker(
        args.bootstrap,
        TopicCatalog(prefix=args.prefix, partitions=args.partitions),
        args.group_id,
        exactly_once=args.guarantee == "exactly_once",
        changelog=args.changelog,
        ready_file=args.ready_file,
    )
    signal.signal(signal.SIGTERM, tracker.stop)
    signal.signal(signal.SIGINT, tracker.stop)
    tracker.run()


if __name__ == "__main__":
    main()
