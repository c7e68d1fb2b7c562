"""A faust app with only the citizen-facing streams, for their agent tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import faust

from connectors.notify.http import SendResult
from connectors.notify.requests import validate
from pipelines.app import catalog_for
from pipelines.citizen import register
from pipelines.settings import Settings
from pipelines.streaming import DeadLetters, raw_topic


@dataclass
class FakeNotifier:
    """Records bodies (validated against the schema, as the HTTP notifier does)."""

    schema: str
    status: str = "sent"
    bodies: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, body: dict[str, Any]) -> SendResult:
        validate(self.schema, body)
        self.bodies.append(body)
        return SendResult(self.status, "fake")

    async def close(self) -> None:
        return None


def citizen_app(
    settings: Settings, clock: Any, display: Any, kakao: Any, calendar_clock: Any = None
) -> faust.App:
    catalog = catalog_for(settings)
    app = faust.App(
        catalog.faust_app_id + "-citizen",
        broker=f"kafka://{settings.kafka_bootstrap}",  # never contacted by test_context()
        store="memory://",
        topic_partitions=settings.partitions,
        datadir=str(settings.data_dir / "faust-citizen"),
    )
    dead_letters = DeadLetters(raw_topic(app, catalog.dead_letters), clock)
    register(
        app,
        catalog,
        dead_letters,
        clock,
        calendar_clock=calendar_clock,
        display=display,
        kakao=kakao,
    )
    return app
