"""Pluggable senders: an HTTP JSON POST to an operator-configured endpoint, or nothing.

:class:`HttpNotifier` posts one validated body, with ``Idempotency-Key: <request_id>`` so the
service can drop a retry, and an optional bearer token.  It never logs the body (phone numbers
are personal data).  Results are values (:class:`SendResult`), never exceptions, so a stream
records what happened and carries on.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from connectors.notify.requests import InvalidRequest, validate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendResult:
    status: str  # sent | failed | rejected | disabled
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "sent"


class Notifier(Protocol):
    """What a stream needs from a branded-call or AlimTalk connector."""

    schema: str

    async def send(self, body: dict[str, Any]) -> SendResult: ...

    async def close(self) -> None: ...


class DisabledNotifier:
    """No endpoint configured: nothing is sent; the decision says so."""

    def __init__(self, schema: str) -> None:
        self.schema = schema

    async def send(self, body: dict[str, Any]) -> SendResult:
        validate(self.schema, body)
        return SendResult("disabled", "no endpoint configured")

    async def close(self) -> None:
        return None


class HttpNotifier:
    def __init__(
        self,
        schema: str,
        endpoint: str,
        *,
        token: str = "",
        timeout_s: float = 3.0,
        retries: int = 1,
    ) -> None:
        self.schema = schema
        self.endpoint = endpoint
        self.token = token
        self.timeout_s = timeout_s
        self.retries = retries
        self._session: aiohttp.ClientSession | None = None

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        return self._session

    async def send(self, body: dict[str, Any]) -> SendResult:
        try:
            validate(self.schema, body)
        except InvalidRequest as exc:
            return SendResult("rejected", str(exc))
        headers = {"Idempotency-Key": str(body["request_id"])}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        detail = ""
        for attempt in range(self.retries + 1):
            try:
                session = await self._client()
                async with session.post(self.endpoint, json=body, headers=headers) as resp:
                    if 200 <= resp.status < 300:
                        return SendResult("sent", f"HTTP {resp.status}")
                    detail = f"HTTP {resp.status}"
                    if 400 <= resp.status < 500 and resp.status != 429:
                        break  # the service refuses this request: a retry will not help
            except (TimeoutError, aiohttp.ClientError) as exc:
                detail = type(exc).__name__
            if attempt < self.retries:
                await asyncio.sleep(0.2 * (attempt + 1))
        log.warning(
            "%s request %s to %s failed: %s", self.schema, body["request_id"], self.endpoint, detail
        )
        return SendResult("failed", detail)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def notifier(schema: str, endpoint: str | None, **kwargs: Any) -> Notifier:
    """An HTTP notifier for ``endpoint``, or a disabled one when it is empty."""
    if endpoint:
        return HttpNotifier(schema, endpoint, **kwargs)
    return DisabledNotifier(schema)
