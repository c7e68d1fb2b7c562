"""The wiring every stream follows: decode → pure decision → encode, with a dead-letter exit.

``decoded()`` turns a raw faust stream into ``(key, record)`` pairs; anything that does not
decode goes to the dead-letter topic with the reason and the loop carries on.  Agents call the
pure core and send what it returns with ``send_record``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Generic, TypeVar

import faust
from faust.types import EventT, StreamT, TopicT

from pipelines.core.deadlines import DeadlineIndex
from pipelines.ticks import decode_tick
from schemas.codec import MalformedMessage, decode, encode
from schemas.dead_letters import make_dead_letter
from schemas.records import WireRecord

log = logging.getLogger(__name__)

M = TypeVar("M", bound=WireRecord)
Clock = Callable[[], int]


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def raw_topic(app: faust.App, *names: str, partitions: int | None = None) -> TopicT:
    """A topic read and written as bytes: decoding is ours, so a bad message cannot kill faust."""
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


class DeadLetters:
    """Sends rejected messages, with the reason, to the dead-letter topic."""

    def __init__(self, topic: TopicT, clock: Clock = wall_clock_ms) -> None:
        self.topic = topic
        self.clock = clock

    async def reject(self, event: EventT, consumer: str, error: MalformedMessage) -> None:
        message = event.message
        record = make_dead_letter(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            consumer=consumer,
            error=error,
            now_ms=self.clock(),
        )
        # The reason names fields and rules, never payload content, so it is safe at WARNING.
        log.warning(
            "dead-lettered %s[%d]@%d by %s: %s",
            message.topic,
            message.partition,
            message.offset,
            consumer,
            error.reason,
        )
        await self.topic.send(key=message.key, value=encode(record))


async def decoded(
    events: AsyncIterator[EventT], model: type[M], dead_letters: DeadLetters, consumer: str
) -> AsyncIterator[tuple[EventT, M]]:
    """Yield ``(event, record)`` for every message that decodes as ``model``."""
    async for event in events:
        try:
            record = decode(model, event.value)
        except MalformedMessage as error:
            await dead_letters.reject(event, consumer, error)
            continue
        yield event, record


async def guarded(event: EventT, dead_letters: DeadLetters, consumer: str, work: Any) -> None:
    """Run one message's work; an unexpected error dead-letters that message, not the stream."""
    try:
        await work
    except Exception as exc:
        log.exception(
            "processing failed for %s[%d]@%d",
            event.message.topic,
            event.message.partition,
            event.message.offset,
        )
        await dead_letters.reject(
            event,
            consumer,
            MalformedMessage(f"{consumer}: processing failed: {type(exc).__name__}", "processing"),
        )


async def send_record(topic: TopicT, key: str, record: WireRecord) -> None:
    await topic.send(key=key.encode(), value=encode(record))


S = TypeVar("S")
Out = TypeVar("Out")  # a rule's outputs


class PartitionedState(Generic[S]):
    """A faust table of per-key core state, plus which partition each key lives in.

    The index lets a tick scan only its own partition's keys, and each entry stores its
    partition so the index can be rebuilt after the table is recovered from its changelog.
    """

    def __init__(
        self,
        app: faust.App,
        name: str,
        partitions: int,
        to_dict: Callable[[S], dict[str, Any]],
        from_dict: Callable[[dict[str, Any]], S],
    ) -> None:
        self.table = app.Table(
            name,
            default=None,
            partitions=partitions,
            schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
        )
        self._to_dict = to_dict
        self._from_dict = from_dict
        self._partition_of: dict[str, int] = {}
        self.table.on_recover(self._rebuild_index)

    async def _rebuild_index(self) -> None:
        self._partition_of = {key: data["partition"] for key, data in self.table.items()}

    def get(self, key: str) -> S | None:
        data = self.table.get(key)
        return None if data is None else self._from_dict(data["state"])

    def put(self, partition: int, key: str, state: S) -> None:
        self.table[key] = {"partition": partition, "state": self._to_dict(state)}
        self._partition_of[key] = partition

    def delete(self, key: str) -> None:
        self._partition_of.pop(key, None)
        if key in self.table:
            del self.table[key]

    def keys_in(self, partition: int) -> list[str]:
        return [key for key, p in self._partition_of.items() if p == partition]


class TimedState(PartitionedState[S]):
    """Per-key state plus a per-partition deadline heap, so a tick looks at due keys only.

    ``wake_at(state)`` says when a tick must next look at a key (its next timer or its
    expiry); the heap is rebuilt from the table whenever faust recovers it.
    """

    def __init__(
        self,
        app: faust.App,
        name: str,
        partitions: int,
        to_dict: Callable[[S], dict[str, Any]],
        from_dict: Callable[[dict[str, Any]], S],
        wake_at: Callable[[S], int],
    ) -> None:
        super().__init__(app, name, partitions, to_dict, from_dict)
        self._wake_at = wake_at
        self.index = DeadlineIndex()
        self.table.on_recover(self._rebuild_deadlines)

    async def _rebuild_deadlines(self) -> None:
        self.index.rebuild(
            (data["partition"], key, self._wake_at(self._from_dict(data["state"])))
            for key, data in self.table.items()
        )

    def save(self, partition: int, key: str, state: S | None) -> None:
        """Store ``state`` (``None`` forgets the key) and reschedule its next look."""
        if state is None:
            self.delete(key)
            self.index.discard(key)
        else:
            self.put(partition, key, state)
            self.index.set(partition, key, self._wake_at(state))

    def step(
        self, partition: int, key: str, step: Callable[[S | None], tuple[S | None, list[Out]]]
    ) -> list[Out]:
        """Fold one observation into ``key``'s state (``step(old) -> (new, outputs)``); the
        state is saved only when the rule returned a new one."""
        old = self.get(key)
        new, out = step(old)
        if new is not old:
            self.save(partition, key, new)
        return out

    def fire_due(
        self,
        partition: int,
        now_ms: int,
        due: Callable[[S, int], tuple[S, list[Out]]],
        expire: Callable[[S, int], S | None],
    ) -> Iterator[list[Out]]:
        """For each key of ``partition`` whose time has come: run its timers (``due``), save
        what ``expire`` keeps, then yield the outputs (so each call's are sent after its save)."""
        for key in self.index.pop_due(partition, now_ms):
            state = self.get(key)
            if state is None:
                continue
            new, out = due(state, now_ms)
            self.save(partition, key, expire(new, now_ms))
            yield out


async def split_ticks(
    stream: StreamT,
    ticks_topic: str,
    on_tick: Callable[[int, int], Awaitable[None]],
) -> AsyncIterator[EventT]:
    """Pass the source topic's events on; hand ticks (partition, now_ms) to ``on_tick``."""
    async for event in stream.events():
        if event.message.topic != ticks_topic:
            yield event
            continue
        now_ms = decode_tick(event.value)
        if now_ms is not None:
            await on_tick(event.message.partition, now_ms)
