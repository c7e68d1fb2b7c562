"""The faust application: one app, every stream registered on it.

``create_app`` is called by entry points (``callguard worker``, tests, benchmarks) with the
settings they read; nothing here reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust

from connectors.kafka.topics import TopicCatalog
from pipelines.settings import Settings
from pipelines.streaming import Clock, DeadLetters, raw_topic, wall_clock_ms
from pipelines.ticks import register_ticker


@dataclass(frozen=True)
class StreamOptions:
    """Timing of the housekeeping every stream shares (seconds so tests can shrink them)."""

    tick_interval_s: float = 5.0
    idle_limit_s: float = 4 * 3600.0  # a call with no event for 4 h lost its hangup


def catalog_for(settings: Settings) -> TopicCatalog:
    return TopicCatalog(
        prefix=settings.topic_prefix,
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
        app_id=settings.app_id,
    )


def create_app(
    settings: Settings,
    *,
    broker: str | None = None,
    options: StreamOptions | None = None,
    clock: Clock = wall_clock_ms,
) -> faust.App:
    """Build the faust app and register every stream on it.

    ``broker="memory://"`` gives an app for faust's ``test_context()`` agent tests.
    """
    from pipelines.audio import agents as audio_agents
    from pipelines.calls import agents as call_agents

    options = options or StreamOptions()
    catalog = catalog_for(settings)
    app = faust.App(
        catalog.faust_app_id,
        broker=broker or f"kafka://{settings.kafka_bootstrap}",
        store="memory://",  # state is rebuilt from the compacted changelogs on start
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee=settings.processing_guarantee,
        datadir=str(settings.data_dir / "faust"),
        web_port=settings.worker_web_port,
        web_host="127.0.0.1",
        # Topics come from `callguard topics create` with the right partitions and policies.
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
    )
    app.conf.catalog = catalog  # type: ignore[attr-defined]
    dead_letters = DeadLetters(raw_topic(app, catalog.dead_letters), clock)
    ticks = raw_topic(app, catalog.ticks, partitions=catalog.partitions)
    register_ticker(app, ticks, options.tick_interval_s, clock)
    idle_ms = int(options.idle_limit_s * 1000)
    call_agents.register(app, catalog, dead_letters, clock, idle_limit_ms=idle_ms)
    audio_agents.register(app, catalog, dead_letters, clock, idle_limit_ms=idle_ms)
    return app
