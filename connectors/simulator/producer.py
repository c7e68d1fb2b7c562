"""Plays planned calls onto Kafka as a PBX would: one time-ordered stream, paced in real time.

All calls' events, audio chunks and CDRs are merged by timestamp (an audio chunk is due when it
ends, as a live feed delivers it; the CDR right after the hangup) and produced with
``speed``× real-time pacing, so the stream processors see overlapping calls the way they would
in production.  The merge is lazy: a call's audio is rendered only when the call is answered,
so memory follows the number of concurrent calls, not the length of the run.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer

from connectors.kafka.topics import KEY_PARTITIONER, TopicCatalog
from connectors.simulator.audio import Clip
from connectors.simulator.scenario import (
    MALFORMED_HEADER,
    SimulatedCall,
    audio_chunks,
    cdr,
    chunk_count,
    events,
    malformed_messages,
)
from schemas.codec import encode

# at one timestamp: audio that ended then, then events, then the CDR, then malformed extras
_AUDIO, _EVENT, _CDR, _MALFORMED = range(4)
_KIND = {_AUDIO: "audio", _EVENT: "event", _CDR: "cdr", _MALFORMED: "malformed"}


@dataclass(frozen=True)
class Message:
    """One scheduled message; ``due_ms`` is the simulated time it is produced at."""

    due_ms: int
    priority: int
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def kind(self) -> str:
        return _KIND[self.priority]


def _call_messages(
    call: SimulatedCall,
    catalog: TopicCatalog,
    clip_by_name: Mapping[str, Clip],
    chunk_ms: int,
    with_audio: bool,
) -> Iterator[Message]:
    key = call.call_id.encode()
    pending = [Message(e.ts_ms, _EVENT, catalog.call_events, key, encode(e)) for e in events(call)]
    pending.append(Message(call.end_ms, _CDR, catalog.cdr, key, encode(cdr(call))))
    pending.sort(key=lambda m: (m.due_ms, m.priority))  # stable: timeline order on ties
    i = 0
    # Everything up to the answer first, so the audio is rendered only when the call gets there.
    while i < len(pending) and pending[i].due_ms <= call.answer_ms:
        yield pending[i]
        i += 1
    if with_audio:
        for chunk in audio_chunks(call, clip_by_name, chunk_ms):
            due = chunk.start_ms + chunk.duration_ms
            while i < len(pending) and (pending[i].due_ms, pending[i].priority) < (due, _AUDIO):
                yield pending[i]
                i += 1
            yield Message(due, _AUDIO, catalog.audio, key, encode(chunk))
    yield from pending[i:]


def _malformed(n: int, calls: Sequence[SimulatedCall], catalog: TopicCatalog) -> list[Message]:
    """``n`` bad messages spread evenly over the run's time span."""
    if n <= 0:
        return []
    first = min((c.start_ms for c in calls), default=0)
    last = max((c.end_ms for c in calls), default=first)
    prefix = calls[0].call_id.rsplit("-", 1)[0] if calls else "sim"
    bad = malformed_messages(n, id_prefix=prefix, ts_ms=first)
    return [
        Message(
            first + (last - first) * (i + 1) // (n + 1),
            _MALFORMED,
            catalog.name(b.topic_key),
            b.call_id.encode(),
            b.value,
            ((MALFORMED_HEADER, b"1"),),
        )
        for i, b in enumerate(bad)
    ]


def schedule(
    calls: Sequence[SimulatedCall],
    catalog: TopicCatalog,
    clips: Sequence[Clip],
    *,
    chunk_ms: int = 200,
    with_audio: bool = True,
    malformed: int = 0,
) -> Iterator[Message]:
    """Every message of the run in production order (lazy)."""
    clip_by_name = {c.name: c for c in clips}
    streams: list[Iterator[Message]] = [
        _call_messages(call, catalog, clip_by_name, chunk_ms, with_audio) for call in calls
    ]
    streams.append(iter(_malformed(malformed, calls, catalog)))
    return heapq.merge(*streams, key=lambda m: (m.due_ms, m.priority))


def message_count(
    calls: Sequence[SimulatedCall],
    *,
    chunk_ms: int = 200,
    with_audio: bool = True,
    malformed: int = 0,
) -> int:
    """How many messages :func:`schedule` yields, without rendering any audio."""
    per_call = (
        len(c.timeline) + 1 + (2 * chunk_count(c, chunk_ms) if with_audio else 0) for c in calls
    )
    return sum(per_call) + max(malformed, 0)


@dataclass
class SimulationReport:
    calls: int = 0
    events: int = 0
    cdrs: int = 0
    audio_chunks: int = 0
    malformed: int = 0
    duration_s: float = 0.0
    departments: dict[str, int] = field(default_factory=dict)  # calls per department
    dispositions: dict[str, int] = field(default_factory=dict)
    seed: int | None = None  # the scenario seed; call ids are "sim-<seed>-<n>"

    @property
    def messages(self) -> int:
        return self.events + self.cdrs + self.audio_chunks + self.malformed

    def summary_lines(self) -> list[str]:
        """Human-readable lines; each says the traffic is simulated."""
        per_dept = ", ".join(f"{d}={n}" for d, n in sorted(self.departments.items())) or "none"
        per_disp = ", ".join(f"{d}={n}" for d, n in sorted(self.dispositions.items())) or "none"
        return [
            f"SIMULATED traffic: {self.calls} calls (origin=simulator), {self.messages} messages"
            f" in {self.duration_s:.1f} s",
            f"SIMULATED messages: {self.events} call events, {self.cdrs} CDRs,"
            f" {self.audio_chunks} audio chunks, {self.malformed} deliberately malformed"
            f" (header {MALFORMED_HEADER}=1)",
            f"SIMULATED calls per department: {per_dept}",
            f"SIMULATED dispositions: {per_disp}",
        ]


def producer_config(bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "linger.ms": 5,
        "client.id": "callguard-simulator",
        **KEY_PARTITIONER,
    }


def run_simulation(
    bootstrap: str,
    catalog: TopicCatalog,
    calls: Sequence[SimulatedCall],
    clips: Sequence[Clip],
    *,
    speed: float = 1.0,
    chunk_ms: int = 200,
    with_audio: bool = True,
    malformed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    producer_factory: Callable[[dict[str, Any]], Any] = Producer,
    flush_timeout_s: float = 60.0,
) -> SimulationReport:
    """Produce the calls' traffic; ``speed`` <= 0 or infinite means as fast as possible.

    Raises ``RuntimeError`` when a message could not be delivered.  ``producer_factory`` is
    there for tests (anything with confluent_kafka.Producer's produce/poll/flush).
    """
    producer = producer_factory(producer_config(bootstrap))
    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    total = message_count(calls, chunk_ms=chunk_ms, with_audio=with_audio, malformed=malformed)
    every = max(1, total // 100)
    paced = 0 < speed < math.inf
    counts: Counter[str] = Counter()
    start = clock()
    first_ms: int | None = None
    done = 0
    for msg in schedule(
        calls, catalog, clips, chunk_ms=chunk_ms, with_audio=with_audio, malformed=malformed
    ):
        if first_ms is None:
            first_ms = msg.due_ms
        if paced:
            wait = (msg.due_ms - first_ms) / 1000 / speed - (clock() - start)
            if wait > 0:
                producer.poll(0)
                sleep(wait)
        extra: dict[str, Any] = {"headers": list(msg.headers)} if msg.headers else {}
        while True:
            try:
                producer.produce(msg.topic, msg.value, msg.key, on_delivery=on_delivery, **extra)
                break
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.1)
        producer.poll(0)
        counts[msg.kind] += 1
        done += 1
        if progress is not None and done % every == 0:
            progress(done, total)
    remaining = producer.flush(flush_timeout_s)
    if remaining:
        raise RuntimeError(f"{remaining} simulated messages still undelivered after flush")
    if failures:
        raise RuntimeError(f"{len(failures)} simulated messages failed: {failures[0]}")
    if progress is not None and done % every != 0:
        progress(done, total)
    return SimulationReport(
        calls=len(calls),
        events=counts["event"],
        cdrs=counts["cdr"],
        audio_chunks=counts["audio"],
        malformed=counts["malformed"],
        duration_s=clock() - start,
        departments=dict(Counter(c.department for c in calls)),
        dispositions=dict(Counter(c.disposition for c in calls)),
    )
