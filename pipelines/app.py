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


def new_faust_app(
    settings: Settings,
    catalog: TopicCatalog,
    *,
    broker: str | None = None,
    datadir_name: str = "faust",
) -> faust.App:
    """The faust app object with CallGuard's configuration and no streams registered."""
    return faust.App(
        catalog.faust_app_id,
        broker=broker or f"kafka://{settings.kafka_bootstrap}",
        store="memory://",  # state is rebuilt from the compacted changelogs on start
        # No standby replicas: faust's memory store drops standby partitions' data when a
        # recovery completes, and a standby later promoted to active is not re-read, so a
        # worker restarted while its dead predecessor still held partitions lost their state.
        table_standby_replicas=0,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee=settings.processing_guarantee,
        datadir=str(settings.data_dir / datadir_name),
        web_port=settings.worker_web_port,
        web_host="127.0.0.1",
        # Topics come from `callguard topics create` with the right partitions and policies.
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
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
    from pipelines import citizen as citizen_streams
    from pipelines.audio import agents as audio_agents
    from pipelines.calls import agents as call_agents
    from pipelines.departments import load_directory
    from pipelines.timeout import agents as timeout_agents
    from pipelines.timeout.policy import load_policy_book

    options = options or StreamOptions()
    catalog = catalog_for(settings)
    app = new_faust_app(settings, catalog, broker=broker)
    app.conf.catalog = catalog  # type: ignore[attr-defined]
    dead_letters = DeadLetters(raw_topic(app, catalog.dead_letters), clock)
    ticks = raw_topic(app, catalog.ticks, partitions=catalog.partitions)
    register_ticker(app, ticks, options.tick_interval_s, clock)
    idle_ms = int(options.idle_limit_s * 1000)
    call_agents.register(app, catalog, dead_letters, clock, idle_limit_ms=idle_ms)
    audio_agents.register(app, catalog, dead_letters, clock, idle_limit_ms=idle_ms)
    timeout_agents.register(
        app,
        catalog,
        dead_letters,
        clock,
        policies=load_policy_book(settings.timeout_policy_file),
        idle_limit_ms=idle_ms,
    )
    citizen_streams.register(
        app,
        catalog,
        dead_letters,
        clock,
        directory=load_directory(settings.departments_file),
        calendar_file=settings.ringback_calendar_file,
        callerid_file=settings.callerid_config_file,
        branded_call_url=settings.branded_call_url,
        alimtalk_url=settings.alimtalk_url,
        notify_token=settings.notify_token,
    )
    return app
