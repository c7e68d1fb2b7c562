"""Opening ClickHouse through clickhouse-connect: a server URL or embedded chDB (``chdb://``)."""

from __future__ import annotations

from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ProgrammingError


class ClickHouseUnavailable(RuntimeError):
    pass


def connect(dsn: str, database: str) -> Client:
    """A client on ``database`` (created if missing).

    ``dsn`` is ``chdb:///absolute/dir`` for the embedded engine or an ``http(s)://`` server URL.
    chDB lets one process own a data directory; a second one gets a clear error here.
    """
    if dsn.startswith("chdb://"):
        path = dsn.removeprefix("chdb://")
        if path != "memory":
            Path(path).mkdir(parents=True, exist_ok=True)
        try:
            bootstrap = clickhouse_connect.get_client(dsn=dsn)
        except ProgrammingError as exc:
            raise ClickHouseUnavailable(
                f"cannot open embedded ClickHouse at {path}: another process (usually "
                "`callguard sink`) owns it. Read through that process (`callguard db query` "
                "does this automatically) or stop it first."
            ) from exc
        bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        return clickhouse_connect.get_client(dsn=dsn, database=database)
    bootstrap = clickhouse_connect.get_client(dsn=dsn)
    bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    return clickhouse_connect.get_client(dsn=dsn, database=database)
