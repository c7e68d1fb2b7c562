"""Long-running services started by the CLI: the faust worker and the ClickHouse sink."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from pipelines.app import catalog_for, create_app
from pipelines.settings import Settings

log = logging.getLogger(__name__)


def run_worker(settings: Settings) -> None:
    """Run the faust worker with every stream until SIGTERM/SIGINT."""
    import faust

    app = create_app(settings)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level.upper(),
        redirect_stdouts=False,
    )
    # faust's terminal spinner sets the root logger to DEBUG at WARNING and above, so every
    # library debug call would build a log record (about 8 % CPU measured in bench/).
    worker.spinner = None
    worker.execute_from_commandline()


def run_sink(settings: Settings, stop: threading.Event | None = None) -> None:
    """Own ClickHouse: migrate, serve read-only queries (chDB), and sink topics until stopped."""
    from connectors.clickhouse.client import connect
    from connectors.clickhouse.migrations import migrate
    from connectors.clickhouse.query_api import QueryServer
    from connectors.clickhouse.sink import ClickHouseSink, sink_topics

    stop = stop or threading.Event()
    catalog = catalog_for(settings)
    client = connect(settings.clickhouse_dsn, settings.clickhouse_database)
    applied = migrate(client)
    if applied:
        log.info("applied migrations: %s", ", ".join(f"V{m.version:03d}" for m in applied))
    lock = threading.Lock()
    sink = ClickHouseSink(
        client,
        bootstrap=settings.kafka_bootstrap,
        group_id=f"{catalog.faust_app_id}-clickhouse-sink",
        topics=sink_topics(catalog.name),
        dead_letter_topic=catalog.dead_letters,
        batch_rows=settings.sink_batch_rows,
        flush_seconds=settings.sink_flush_seconds,
        lock=lock,
    )
    server = None
    if settings.embedded_clickhouse:
        reader = connect(settings.clickhouse_dsn, settings.clickhouse_database)
        server = QueryServer(reader, lock, settings.query_port, sink.stats.as_dict)
        server.start()
        log.info("read-only query API on 127.0.0.1:%d", settings.query_port)

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: flushing and stopping", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    log.info(
        "sink writing to %s",
        "chDB " + str(settings.chdb_path) if settings.embedded_clickhouse else "ClickHouse server",
    )
    try:
        sink.run(stop)
    finally:
        if server:
            server.stop()
        client.close()
