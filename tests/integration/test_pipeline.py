"""End to end on real parts: simulator → Apache Kafka → faust worker → sink → chDB.

Also the dead-letter promise: a malformed message on every input topic lands on the
dead-letter topic with a reason, nothing is lost, and the streams keep processing.
"""

from __future__ import annotations

import base64
import random
import time

from confluent_kafka import Producer

from connectors.kafka.topics import TopicCatalog
from connectors.simulator.audio import load_clips
from connectors.simulator.producer import run_simulation
from connectors.simulator.scenario import plan_calls
from schemas.codec import decode, encode
from schemas.records import DeadLetter
from tests.integration.conftest import SinkHandle, WorkerProcess, read_topic, wait_until
from tests.samples import call_event

#: topics whose consumers validate input (worker agents or the sink)
INPUT_TOPICS = (
    "call_events",
    "cdr",
    "audio",
    "commands",
    "command_results",
    "decisions",
    "summaries",
    "audio_stats",
    "incidents",
)


def test_simulated_calls_reach_clickhouse(
    bootstrap: str, catalog: TopicCatalog, sink: SinkHandle, worker: WorkerProcess
) -> None:
    seed = random.randrange(10**9)
    clips = load_clips()
    calls = plan_calls(6, seed=seed, start_ms=int(time.time() * 1000), clips=clips)
    report = run_simulation(bootstrap, catalog, calls, clips, speed=0, chunk_ms=200)
    this_run = f"call_id LIKE 'sim-{seed}-%'"
    wait_until(
        lambda: sink.count(f"SELECT count() FROM call_summaries FINAL WHERE {this_run}") == 6,
        120,
    )
    answered = report.dispositions.get("ANSWERED", 0)
    wait_until(
        lambda: (
            sink.count(f"SELECT count() FROM audio_leg_stats FINAL WHERE {this_run}")
            == 2 * answered
        ),
        60,
    )
    assert worker.alive(), worker.log()

    # The tracker's talk time agrees with the CDR's billable seconds, call by call.
    rows = sink.query(
        "SELECT s.call_id, s.talk_s, c.billsec_s, s.origin FROM call_summaries AS s FINAL "
        f"INNER JOIN cdrs AS c FINAL ON s.call_id = c.call_id WHERE s.{this_run}"
    ).rows
    assert len(rows) == 6
    for call_id, talk_s, billsec_s, origin in rows:
        assert abs(talk_s - billsec_s) < 0.01, call_id
        assert origin == "simulator"

    # Every chunk the simulator sent is accounted for, none missing or duplicated.
    chunks, missing, duplicates = sink.query(
        "SELECT sum(chunks), sum(missing_chunks), sum(duplicate_chunks) "
        f"FROM audio_leg_stats FINAL WHERE {this_run}"
    ).rows[0]
    assert (chunks, missing, duplicates) == (report.audio_chunks, 0, 0)

    # All call events were stored once each.
    assert sink.count(f"SELECT count() FROM call_events FINAL WHERE {this_run}") == report.events


def test_malformed_input_on_every_topic_is_dead_lettered_and_streams_continue(
    bootstrap: str,
    catalog: TopicCatalog,
    sink: SinkHandle,
    worker: WorkerProcess,
    producer: Producer,
) -> None:
    bad = {key: f'{{"broken": "{key}"'.encode() for key in INPUT_TOPICS}
    for key, value in bad.items():
        producer.produce(catalog.name(key), key=b"bad-call", value=value)
    # A valid call afterwards: it must still be processed.
    tag = f"after-bad-{random.randrange(10**9)}"
    producer.produce(
        catalog.call_events,
        key=tag.encode(),
        value=encode(call_event(call_id=tag, event_id=f"{tag}-1")),
    )
    producer.produce(
        catalog.call_events,
        key=tag.encode(),
        value=encode(
            call_event(
                call_id=tag, event_id=f"{tag}-2", type_="hangup", ts_ms=int(time.time() * 1000)
            )
        ),
    )
    producer.flush(10)

    wait_until(
        lambda: (
            sink.count(f"SELECT count() FROM call_summaries FINAL WHERE call_id = '{tag}'") == 1
        ),
        120,
    )
    topics = {catalog.name(k) for k in INPUT_TOPICS}
    prefix_filter = f"source_topic LIKE '{catalog.prefix}%'"
    wait_until(
        lambda: (
            sink.count(
                f"SELECT uniqExact(source_topic) FROM dead_letters FINAL WHERE {prefix_filter}"
            )
            == len(topics)
        ),
        60,
    )
    rows = sink.query(
        "SELECT source_topic, consumer, error_type, reason, payload_bytes FROM dead_letters "
        f"FINAL WHERE {prefix_filter}"
    ).rows
    assert {r[0] for r in rows} == topics
    for source_topic, consumer, error_type, reason, payload_bytes in rows:
        assert error_type == "json", (source_topic, reason)
        assert "not JSON" in reason and consumer
        assert payload_bytes > 0
    # every consumer of call events (the worker's streams and the sink) reports it itself
    consumers = {r[1] for r in rows if r[0] == catalog.call_events}
    assert {"calls", "clickhouse-sink"} <= consumers, consumers

    # Nothing is lost: the dead-letter topic carries the original bytes for replay.
    letters = [decode(DeadLetter, m.value()) for m in read_topic(bootstrap, catalog.dead_letters)]
    originals = {d.source_topic: base64.b64decode(d.payload_b64) for d in letters}
    assert originals == {catalog.name(k): v for k, v in bad.items()}
    # ...and none of them reached a data table.
    assert sink.count("SELECT count() FROM call_events WHERE call_id = 'bad-call'") == 0
    assert worker.alive(), worker.log()
