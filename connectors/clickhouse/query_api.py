"""Read-only SQL over loopback HTTP, served by the process that owns embedded ClickHouse.

chDB locks its data directory to one process (the sink).  Everyone else (the CLI, the demo,
reports) reads through this small API while the sink runs, or opens chDB directly when it
does not.  Queries run with ClickHouse's own ``readonly=1``, so nothing can be written here.

    POST /query   body: SQL          → {"columns": [...], "types": [...], "rows": [[...]]}
    GET  /health                     → {"status": "ok", "sink": {...counters...}}
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)

MAX_ROWS = 100_000


@dataclass
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def run_readonly(client: Client, lock: threading.Lock, sql: str) -> QueryResult:
    """Run ``sql`` with ClickHouse's ``readonly=1``; at most ``MAX_ROWS`` rows come back.

    Give this a client of its own: embedded chDB keeps ``readonly`` on the session after a
    refused query, which would stop a writer sharing it.  Only ``readonly`` is set per query,
    since no other setting may change once it is on.
    """
    with lock:
        result = client.query(sql, settings={"readonly": 1})
    return QueryResult(
        columns=list(result.column_names),
        types=[t.name for t in result.column_types],
        rows=[list(r) for r in result.result_rows[:MAX_ROWS]],
    )


class QueryServer:
    """Serves the API from a thread; ``client`` must be a reader client, not the sink's writer."""

    def __init__(
        self,
        client: Client,
        lock: threading.Lock,
        port: int,
        health: Callable[[], dict[str, Any]],
        host: str = "127.0.0.1",
    ) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, default=_json_default, ensure_ascii=False).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/health":
                    self._reply(200, {"status": "ok", "sink": server.health()})
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self) -> None:
                if self.path != "/query":
                    self._reply(404, {"error": "not found"})
                    return
                length = int(self.headers.get("Content-Length", "0"))
                sql = self.rfile.read(length).decode("utf-8")
                try:
                    result = run_readonly(server.client, server.lock, sql)
                except Exception as exc:  # noqa: BLE001 - report any query error to the caller
                    self._reply(400, {"error": str(exc).splitlines()[0][:500]})
                    return
                self._reply(200, result.__dict__)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                log.debug("query api: " + format, *args)

        self.client = client
        self.lock = lock
        self.health = health
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class QueryApiError(RuntimeError):
    pass


def remote_query(port: int, sql: str, timeout_s: float = 30.0) -> QueryResult:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/query", data=sql.encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise QueryApiError(json.loads(exc.read()).get("error", str(exc))) from None
    return QueryResult(body["columns"], body["types"], body["rows"])


def remote_health(port: int, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """The sink's health document, or None when no sink answers on ``port``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout_s) as r:
            return dict(json.loads(r.read()))
    except (OSError, ValueError):
        return None
