"""Crash safety: a worker killed with SIGKILL mid-call resumes from its changelog.

The call's state (events so far) must come back, and its summary must appear exactly once.
"""

from __future__ import annotations

import random
import time

from confluent_kafka import Producer

from connectors.kafka.topics import TopicCatalog
from schemas.codec import decode, encode
from schemas.records import CallSummary, Decision
from tests.integration.conftest import WorkerProcess, read_topic, wait_until
from tests.samples import call_event


def test_killed_worker_resumes_call_state_and_summarises_once(
    bootstrap: str, catalog: TopicCatalog, worker: WorkerProcess, producer: Producer
) -> None:
    call_id = f"crash-{random.randrange(10**9)}"
    now = int(time.time() * 1000)

    def send(n: int, type_: str, at: int, **kw: str) -> None:
        event = call_event(call_id=call_id, event_id=f"{call_id}-{n}", type_=type_, ts_ms=at, **kw)
        producer.produce(catalog.call_events, key=call_id.encode(), value=encode(event))
        producer.flush(10)

    send(1, "call_started", now)
    send(2, "answered", now + 2000)
    send(3, "dtmf", now + 3000, digit="5", leg="staff")
    # The state is durable once the worker's transaction with it has committed.
    wait_until(
        lambda: any(
            m.key() and call_id in m.key().decode()
            for m in read_topic(bootstrap, catalog.changelog("calls"))
        ),
        90,
    )
    worker.kill()
    worker.start()
    send(4, "hangup", now + 12000)

    summaries = wait_until(
        lambda: [
            s
            for s in (
                decode(CallSummary, m.value()) for m in read_topic(bootstrap, catalog.summaries)
            )
            if s.call_id == call_id
        ],
        120,
    )
    time.sleep(3)  # give a duplicate every chance to show up
    again = [
        s
        for s in (decode(CallSummary, m.value()) for m in read_topic(bootstrap, catalog.summaries))
        if s.call_id == call_id
    ]
    assert len(summaries) == 1 and len(again) == 1
    (summary,) = again
    assert summary.events == 4, "state before the crash was lost"
    assert summary.dtmf_digits == "5"
    assert summary.talk_s == 10.0
    # had the state been lost, the tracker would have reported a missed start
    decisions = [decode(Decision, m.value()) for m in read_topic(bootstrap, catalog.decisions)]
    assert [d for d in decisions if d.call_id == call_id and d.stream == "calls"] == []
