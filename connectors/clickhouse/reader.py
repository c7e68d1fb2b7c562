"""Reading CallGuard's tables from wherever they are.

A ClickHouse server: a clickhouse-connect client.  Embedded chDB: through the owning sink's
query API when a sink is running, otherwise by opening chDB directly (read-only queries).
"""

from __future__ import annotations

import threading
from typing import Protocol

from connectors.clickhouse.client import connect
from connectors.clickhouse.query_api import (
    QueryResult,
    remote_health,
    remote_query,
    run_readonly,
)


class Reader(Protocol):
    def query(self, sql: str) -> QueryResult: ...


class ClientReader:
    def __init__(self, dsn: str, database: str) -> None:
        self.client = connect(dsn, database)
        self.lock = threading.Lock()

    def query(self, sql: str) -> QueryResult:
        return run_readonly(self.client, self.lock, sql)


class SinkReader:
    def __init__(self, port: int) -> None:
        self.port = port

    def query(self, sql: str) -> QueryResult:
        return remote_query(self.port, sql)


def open_reader(dsn: str, database: str, query_port: int) -> Reader:
    if dsn.startswith("chdb://") and remote_health(query_port) is not None:
        return SinkReader(query_port)
    return ClientReader(dsn, database)
