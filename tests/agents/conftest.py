"""Agent tests: the real faust agents under ``test_context()``, with topic sends captured.

No broker is contacted: ``Topic.send`` is replaced by a recorder, so each test sees exactly
what an agent would have produced, decoded back into wire models.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import faust
import pytest

from pipelines.app import StreamOptions, catalog_for, create_app
from pipelines.settings import Settings
from schemas.codec import decode
from schemas.records import WireRecord


@dataclass
class Sent:
    messages: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)

    def on(self, topic: str) -> list[tuple[bytes | None, bytes]]:
        return [(k, v) for t, k, v in self.messages if t == topic]

    def records(self, topic: str, model: type[WireRecord]) -> list[Any]:
        return [decode(model, v) for _, v in self.on(topic)]


@dataclass
class Clock:
    now_ms: int = 1_795_000_000_000

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # An unreachable broker: nothing in these tests may talk to Kafka.
    return Settings(data_dir=tmp_path, kafka_bootstrap="127.0.0.1:1", topic_prefix="agents.")


@pytest.fixture
def app(settings: Settings, clock: Clock) -> faust.App:
    return create_app(settings, options=StreamOptions(idle_limit_s=60), clock=clock)


@pytest.fixture
def catalog(settings: Settings) -> Any:
    return catalog_for(settings)


@pytest.fixture
def sent() -> Iterator[Sent]:
    recorder = Sent()

    async def record_send(self: faust.topics.Topic, *args: Any, **kwargs: Any) -> None:
        recorder.messages.append((self.get_topic_name(), kwargs.get("key"), kwargs["value"]))

    with mock.patch.object(faust.topics.Topic, "send", record_send):
        yield recorder


async def put_on_topic(ctx: Any, topic: str, key: bytes, value: bytes, partition: int = 0) -> None:
    """Like ``ctx.put`` but the message carries ``topic`` (agents reading two topics need it)."""
    channel = ctx.stream().channel
    message = ctx.to_message(key, value, partition=partition, offset=ctx.sent_offset)
    message.topic = topic
    event = await channel.decode(message)
    await channel.put(event)
    ctx.sent_offset += 1
    async with ctx.new_value_processed:
        await ctx.new_value_processed.wait()
