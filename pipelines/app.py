"""The faust application: one app, every stream registered on it.

``create_app`` is called by entry points (``callguard worker``, tests, benchmarks) with the
settings they read; nothing here reads the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import faust

from connectors.kafka.topics import TopicCatalog
from pipelines import faust_patches
from pipelines.settings import Settings
from pipelines.streaming import Clock, DeadLetters, raw_topic, wall_clock_ms
from pipelines.ticks import register_ticker

if TYPE_CHECKING:
    from pipelines.abuse.analysis import UtteranceAnalyzer


@dataclass(frozen=True)
class StreamOptions:
    """Timing of the housekeeping every stream shares (seconds so tests can shrink them)."""

    tick_interval_s: float = 5.0
    idle_limit_s: float = 4 * 3600.0  # a call with no event for 4 h lost its hangup
    # builds the abuse stream's utterance analyzer (tests pass fakes); None = the real models
    analyzer: Callable[[], UtteranceAnalyzer] | None = None
    follow_models: bool = True  # hot-reload promoted text classifiers (callguard.models)


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
    faust_patches.apply()
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
    if settings.runs("calls"):
        call_agents.register(app, catalog, dead_letters, clock, idle_limit_ms=idle_ms)
    if settings.runs("audio"):
        audio_agents.register(app, catalog, dead_letters, clock, idle_limit_ms=idle_ms)
    if settings.runs("abuse"):
        register_abuse(app, settings, catalog, dead_letters, clock, options)
    if settings.runs("timeout"):
        timeout_agents.register(
            app,
            catalog,
            dead_letters,
            clock,
            policies=load_policy_book(settings.timeout_policy_file),
            idle_limit_ms=idle_ms,
        )
    if settings.runs("recording"):
        register_recording(app, catalog, dead_letters, clock, settings, idle_limit_ms=idle_ms)
    if settings.runs("citizen"):
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


def register_recording(
    app: faust.App,
    catalog: TopicCatalog,
    dead_letters: DeadLetters,
    clock: Clock,
    settings: Settings,
    *,
    idle_limit_ms: int,
) -> None:
    """The recording-consent and recording stream, with its store, keys and spool."""
    import logging

    from connectors.recordings.kafka import KafkaChunkReplay
    from connectors.recordings.spool import Spool
    from connectors.recordings.store import LocalRecordingStore
    from pipelines.core.recording import Timing
    from pipelines.departments import load_directory
    from pipelines.recording import agents as recording_agents
    from pipelines.recording.keys import load_keyring
    from pipelines.recording.policy import load_recording_book, rollout_warnings

    directory = load_directory(settings.departments_file)
    book = load_recording_book(settings.recording_policy_file, directory)
    for warning in rollout_warnings(book, directory):
        logging.getLogger(__name__).warning("recording rollout: %s", warning)
    keyring = load_keyring(settings)
    writer = recording_agents.LegWriter(
        spool=Spool(settings.data_dir / "recording-spool", keyring),
        store=LocalRecordingStore(settings.recordings_path),
        keyring=keyring,
        replay=KafkaChunkReplay(settings.kafka_bootstrap, catalog.audio),
    )
    app.conf.recording_writer = writer  # type: ignore[attr-defined]
    recording_agents.register(
        app,
        catalog,
        dead_letters,
        clock,
        book=book,
        writer=writer,
        timing=Timing(idle_timeout_ms=int(settings.recording_idle_timeout_s * 1000)),
        idle_limit_ms=idle_limit_ms,
    )


def register_abuse(
    app: faust.App,
    settings: Settings,
    catalog: TopicCatalog,
    dead_letters: DeadLetters,
    clock: Clock,
    options: StreamOptions,
) -> None:
    """The abuse-detection stream; its models load lazily, on the first utterance."""
    from pipelines.abuse import agents as abuse_agents
    from pipelines.abuse.analysis import LegSegmenters, analyzer_from_settings, classifier_loader
    from pipelines.abuse.models import ClassifierSwitch, PromotionFollower
    from pipelines.abuse.policy import load_policy_book as load_abuse_policy

    def analyzer() -> UtteranceAnalyzer:
        if options.analyzer is not None:
            return options.analyzer()
        return analyzer_from_settings(settings, clock)

    follower = switch = None
    if options.follow_models:
        follower = PromotionFollower(settings.kafka_bootstrap, catalog.models)
        switch = ClassifierSwitch(classifier_loader(settings))
    abuse_agents.register_transcriber(
        app,
        catalog,
        dead_letters,
        analyzer,
        lambda: LegSegmenters(legs=tuple(settings.asr_legs)),
        follower=follower,
        switch=switch,
        reload_interval_s=options.tick_interval_s,
    )
    abuse_agents.register_responder(
        app,
        catalog,
        dead_letters,
        clock,
        policies=load_abuse_policy(settings.abuse_policy_file),
        idle_limit_ms=int(options.idle_limit_s * 1000),
    )
