"""Every Kafka topic CallGuard uses, declared once, and the code that creates them.

Call-scoped topics are keyed by call id so one call's messages stay in one partition, in order,
on one worker.  Faust's table changelogs are declared here too (compacted) because faust's own
auto-creation gave 1-partition topics that broke exactly-once; ``callguard topics create``
makes them all up front.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

log = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    key: str  # logical name used in code
    name: str  # full topic name on the broker
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def new_topic(self) -> NewTopic:
        return NewTopic(
            self.name,
            num_partitions=self.partitions,
            replication_factor=self.replication_factor,
            config=dict(self.config),
        )


#: librdkafka's partitioner setting that puts a key where faust (aiokafka, like the Java
#: client: murmur2) puts it.  Every producer of call-keyed topics must use it: with
#: confluent-kafka's default (crc32) a call's PBX events and the streams' own outputs for the
#: same call id land on different partition numbers, so co-partitioned agents would see one
#: call's events and transcripts on different workers and write its state to two changelog
#: partitions.
KEY_PARTITIONER = {"partitioner": "murmur2_random"}

# (logical key, base name, retention in days or None for compaction, description)
_CALL_TOPICS: tuple[tuple[str, str, int | None, str], ...] = (
    ("call_events", "pbx.call-events", 7, "PBX call events (ARI), key call_id"),
    ("cdr", "pbx.cdr", 90, "final call detail records (AMI Cdr), key call_id"),
    ("audio", "pbx.audio", 1, "live audio chunks of both legs; personal data, kept 1 day"),
    ("commands", "pbx.commands", 7, "decisions for the PBX: play, hangup, ringback, originate"),
    ("command_results", "pbx.command-results", 7, "what the PBX connector did with commands"),
    ("decisions", "calls.decisions", 30, "every stream decision with its reason"),
    ("summaries", "calls.summaries", 30, "one summary per finished call"),
    ("audio_stats", "calls.audio-stats", 30, "completeness of each leg's audio"),
    ("incidents", "calls.incidents", 90, "abuse detections with evidence"),
    ("feedback", "calls.feedback", 3650, "staff labels on detections and missed abuse"),
    (
        "transcripts",
        "calls.transcripts",
        7,
        "masked utterance transcripts with classifier scores; personal data",
    ),
    ("models", "callguard.models", None, "promoted text-classifier versions; workers reload"),
    ("dead_letters", "callguard.dead-letters", 30, "rejected messages with the reason"),
    ("ticks", "callguard.ticks", 1, "clock ticks per partition that drive stream housekeeping"),
    ("recordings", "calls.recordings", 90, "stored recordings: metadata, completeness; no audio"),
    ("recording_audit", "calls.recording-audit", 90, "who accessed or deleted a recording, why"),
)

#: faust tables (name → description); their changelogs are compacted
TABLES: dict[str, str] = {
    "calls": "call tracker state per call id",
    "audio-legs": "audio sequence tracker per call id and leg",
    "timeout": "timeout rule (20-minute rule) state per call id",
    "abuse": "abuse response (warn, then end) state per call id",
    "consent": "recording consent check per call id",
    "recording": "recording assembly per call id (small state; audio goes to spool files)",
}


@dataclass(frozen=True)
class TopicCatalog:
    """All topics for one deployment; ``prefix`` isolates tenants and test runs."""

    prefix: str = ""
    partitions: int = 4
    replication_factor: int = 1
    app_id: str = "callguard"

    def _spec(self, key: str, base: str, config: dict[str, str], description: str) -> TopicSpec:
        return TopicSpec(
            key=key,
            name=f"{self.prefix}{base}",
            partitions=self.partitions,
            replication_factor=self.replication_factor,
            config=config,
            description=description,
        )

    @property
    def specs(self) -> list[TopicSpec]:
        specs = [
            self._spec(
                key,
                base,
                {"cleanup.policy": "delete", "retention.ms": str(days * DAY_MS)}
                if days
                else {"cleanup.policy": "compact"},
                description,
            )
            for key, base, days, description in _CALL_TOPICS
        ]
        specs += [
            TopicSpec(
                key=f"changelog:{table}",
                name=self.changelog(table),
                partitions=self.partitions,
                replication_factor=self.replication_factor,
                config={"cleanup.policy": "compact"},
                description=f"faust changelog: {description}",
            )
            for table, description in TABLES.items()
        ]
        return specs

    @property
    def faust_app_id(self) -> str:
        return f"{self.prefix}{self.app_id}"

    def changelog(self, table: str) -> str:
        # faust's naming rule: "<app id>-<table name>-changelog"
        return f"{self.faust_app_id}-{table}-changelog"

    def name(self, key: str) -> str:
        for spec in self.specs:
            if spec.key == key:
                return spec.name
        raise KeyError(f"unknown topic {key!r}")

    def __getattr__(self, key: str) -> str:
        # catalog.call_events → "pbx.call-events" (with prefix); only for declared keys
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self.name(key)
        except KeyError:
            raise AttributeError(key) from None


def retention_label(spec: TopicSpec) -> str:
    """ "compacted" or the retention in days, for people reading a topic list."""
    if spec.config.get("cleanup.policy") == "compact":
        return "compacted"
    days = int(spec.config.get("retention.ms", "0")) / DAY_MS
    return f"{days:g} d"


@dataclass
class TopicReport:
    name: str
    status: str  # created | exists | mismatch
    detail: str = ""


def create_topics(
    bootstrap: str, specs: Iterable[TopicSpec], timeout_s: float = 30.0
) -> list[TopicReport]:
    """Create missing topics; report existing ones whose partition count differs."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    specs = list(specs)
    futures = admin.create_topics([s.new_topic() for s in specs], request_timeout=timeout_s)
    reports: list[TopicReport] = []
    existing: list[TopicSpec] = []
    for spec in specs:
        try:
            futures[spec.name].result(timeout=timeout_s)
            reports.append(TopicReport(spec.name, "created"))
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                existing.append(spec)
            else:
                raise
    if existing:
        # A topic created a moment ago may not be in the metadata yet: ask until it is.
        deadline = time.monotonic() + timeout_s
        metadata = admin.list_topics(timeout=timeout_s).topics
        while any(s.name not in metadata for s in existing) and time.monotonic() < deadline:
            time.sleep(0.2)
            metadata = admin.list_topics(timeout=timeout_s).topics
        for spec in existing:
            actual = len(metadata[spec.name].partitions)
            if actual == spec.partitions:
                reports.append(TopicReport(spec.name, "exists"))
            else:
                reports.append(
                    TopicReport(
                        spec.name,
                        "mismatch",
                        f"has {actual} partitions, declared {spec.partitions}",
                    )
                )
    return reports


def delete_topics(bootstrap: str, names: Iterable[str], timeout_s: float = 30.0) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name, future in admin.delete_topics(list(names), request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            log.warning("could not delete topic %s: %s", name, exc)


def existing_topics(bootstrap: str, timeout_s: float = 10.0) -> set[str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return set(admin.list_topics(timeout=timeout_s).topics)
