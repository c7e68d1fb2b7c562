"""Topics on the real broker; the sink's migrations, read-only API and CLI on chDB."""

from __future__ import annotations

import uuid
from typing import Any

from click.testing import CliRunner
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from connectors.clickhouse.client import connect
from connectors.clickhouse.migrations import migrate
from connectors.clickhouse.query_api import QueryApiError
from connectors.kafka.topics import TopicCatalog, create_topics, delete_topics
from pipelines.cli import main
from pipelines.demo import settings_env
from pipelines.settings import Settings
from schemas.codec import encode
from schemas.rows import STORED_TABLES
from tests.integration.conftest import SinkHandle, wait_until
from tests.samples import SAMPLES


def test_topics_are_created_once_with_their_policies(bootstrap: str, catalog: TopicCatalog) -> None:
    again = create_topics(bootstrap, catalog.specs)
    assert {r.status for r in again} == {"exists"}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resources = [
        ConfigResource(ConfigResource.Type.TOPIC, catalog.changelog("calls")),
        ConfigResource(ConfigResource.Type.TOPIC, catalog.audio),
    ]
    configs = {r.name: f.result(10) for r, f in admin.describe_configs(resources).items()}
    assert configs[catalog.changelog("calls")]["cleanup.policy"].value == "compact"
    assert configs[catalog.audio]["retention.ms"].value == str(24 * 3600 * 1000)
    metadata = admin.list_topics(timeout=10).topics
    assert len(metadata[catalog.call_events].partitions) == catalog.partitions


def test_partition_mismatch_is_reported(bootstrap: str, catalog: TopicCatalog) -> None:
    other = TopicCatalog(prefix=catalog.prefix, partitions=catalog.partitions + 1)
    reports = {r.name: r for r in create_topics(bootstrap, other.specs)}
    assert reports[catalog.cdr].status == "mismatch"
    assert "declared 3" in reports[catalog.cdr].detail


def test_cli_creates_topics(bootstrap: str, settings: Settings) -> None:
    env = {k: v for k, v in settings_env(settings).items() if k.startswith("CALLGUARD_")}
    result = CliRunner().invoke(main, ["topics", "create"], env=env)
    try:
        assert result.exit_code == 0, result.output
        assert f"{settings.topic_prefix}pbx.call-events" in result.output
        assert "created" in result.output
        # a new topic can take a moment to reach the broker's metadata cache
        listed = wait_until(
            lambda: (
                (r := CliRunner().invoke(main, ["topics", "list"], env=env)).exit_code == 0
                and "NO" not in r.output
                and r
            ),
            30,
        )
        assert listed.output.count("yes") == len(TopicCatalog().specs)
    finally:
        delete_topics(bootstrap, [s.name for s in TopicCatalog(prefix=settings.topic_prefix).specs])


def test_sink_owns_chdb_and_serves_read_only_queries(
    sink: SinkHandle, settings: Settings, catalog: TopicCatalog, producer: Producer
) -> None:
    tables = {r[0] for r in sink.query("SHOW TABLES").rows}
    assert {t.name for t in STORED_TABLES} | {"schema_migrations"} <= tables
    try:
        sink.query("INSERT INTO call_events (call_id) VALUES ('x')")
        raise AssertionError("a write went through the read-only API")
    except QueryApiError as exc:
        assert "readonly" in str(exc).lower()
    # ...and the refused write did not make the sink's own session read-only (chDB keeps
    # settings per session): a CDR produced now is still stored.
    cdr = SAMPLES["cdr"]
    call_id = f"ro-check-{uuid.uuid4().hex[:8]}"
    producer.produce(catalog.cdr, key=call_id.encode(), value=encode(replace_call_id(cdr, call_id)))
    producer.flush(10)
    wait_until(lambda: sink.count(f"SELECT count() FROM cdrs WHERE call_id = '{call_id}'") == 1, 60)
    # migrations are idempotent: a second run applies nothing (same process may reopen chDB)
    assert migrate(connect(settings.clickhouse_dsn, settings.clickhouse_database)) == []
    # the CLI reads through the sink while it owns the data directory
    env = {k: v for k, v in settings_env(settings).items() if k.startswith("CALLGUARD_")}
    result = CliRunner().invoke(main, ["db", "query", "SELECT count() AS n FROM cdrs"], env=env)
    assert result.exit_code == 0, result.output
    assert "1 row(s)" in result.output


def replace_call_id(record: Any, call_id: str) -> Any:
    return type(record).from_data({**record.asdict(), "call_id": call_id})
