"""A local HTTP receiver standing in for a third-party service (branded call, AlimTalk relay).

It validates every body against the JSON Schema file it is given, independently of the sender,
and records what arrived.  Runs its own event loop in a thread, so sync and async tests and
other processes (a faust worker) can post to it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastjsonschema
from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    valid: bool
    error: str = ""


@dataclass
class Receiver:
    """Routes ``/<name>`` → the schema at ``schemas[name]``; answers ``status`` (default 202)."""

    schemas: dict[str, Path]
    status: int = 202
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def of(self, name: str) -> list[Received]:
        return [r for r in self.received if r.path == f"/{name}"]

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.path.strip("/")
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            self.received.append(Received(request.path, dict(request.headers), None, False, "json"))
            return web.Response(status=400)
        schema = self.schemas.get(name)
        valid, error = schema is not None, "" if schema else "no such endpoint"
        if schema is not None:
            try:
                fastjsonschema.compile(json.loads(schema.read_text(encoding="utf-8")))(body)
            except fastjsonschema.JsonSchemaValueException as exc:
                valid, error = False, exc.message
        self.received.append(Received(request.path, dict(request.headers), body, valid, error))
        return web.Response(status=self.status if valid else 422)

    def start(self) -> Receiver:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/{name}", self._handle)
            self._runner = web.AppRunner(app)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
