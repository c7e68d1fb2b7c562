"""Asterisk REST Interface: the REST calls CallGuard needs and the event websocket.

Two failure kinds, because the command path treats them differently:

* :class:`AriError` — Asterisk answered and refused (404 channel gone, 409 not in Stasis …).
  Retrying will not help; a command gets status ``failed``.
* :class:`PbxUnavailable` — no answer at all (connection refused, timeout, 503 while Asterisk
  starts or stops).  Retrying later will help, so a command is *not* acknowledged on Kafka and
  comes back after a PBX restart.

Passwords travel in the ``Authorization`` header, never in a URL, and nothing here logs
request parameters (caller ids are personal data).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp

log = logging.getLogger(__name__)


class PbxUnavailable(ConnectionError):
    """Asterisk could not be reached (retryable)."""


class AriError(RuntimeError):
    """Asterisk refused a request."""

    def __init__(self, status: int, path: str, message: str) -> None:
        super().__init__(f"ARI {status} on {path}: {message}")
        self.status = status
        self.path = path
        self.message = message


def _seg(value: str) -> str:
    return quote(value, safe="")


def _params(params: Mapping[str, object | None]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def event_time_ms(event: Mapping[str, Any]) -> int | None:
    """Epoch ms of an ARI event's ``timestamp`` (``2026-11-03T10:15:02.123+0000``), or None."""
    raw = event.get("timestamp")
    if not isinstance(raw, str) or not raw:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return int(datetime.strptime(raw, fmt).timestamp() * 1000)
        except ValueError:
            continue
    try:
        return int(datetime.fromisoformat(raw).timestamp() * 1000)
    except ValueError:
        return None


class AriClient:
    """REST client for one Asterisk (``base_url`` like ``http://127.0.0.1:28088``)."""

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        app: str,
        *,
        timeout_s: float = 10.0,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, object | None] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """One REST call; JSON result (or None).  Raises AriError / PbxUnavailable."""
        url = f"{self.base_url}/ari{path}"
        try:
            async with self._client().request(
                method, url, params=_params(params or {}), json=body
            ) as resp:
                text = await resp.text()
                if resp.status == 503:
                    raise PbxUnavailable(f"ARI {method} {path}: 503 (Asterisk not ready)")
                if resp.status >= 400:
                    raise AriError(resp.status, path, _error_message(text, resp.reason))
                if not text:
                    return None
                try:
                    return json.loads(text)
                except json.JSONDecodeError:
                    return None
        except (TimeoutError, aiohttp.ClientConnectionError, OSError) as exc:
            raise PbxUnavailable(f"ARI {method} {path}: {type(exc).__name__}") from exc

    # -- channels ---------------------------------------------------------------------------

    async def list_channels(self) -> list[dict[str, Any]]:
        result = await self.request("GET", "/channels")
        return list(result or [])

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{_seg(channel_id)}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{_seg(channel_id)}", {"reason": reason})

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{_seg(channel_id)}/ring")

    async def ring_stop(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{_seg(channel_id)}/ring")

    async def start_moh(self, channel_id: str, moh_class: str) -> None:
        await self.request("POST", f"/channels/{_seg(channel_id)}/moh", {"mohClass": moh_class})

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{_seg(channel_id)}/moh")

    async def play_on_channel(self, channel_id: str, media: str, playback_id: str) -> None:
        path = f"/channels/{_seg(channel_id)}/play/{_seg(playback_id)}"
        await self.request("POST", path, {"media": media})

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{_seg(playback_id)}")

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        path = f"/channels/{_seg(channel_id)}/variable"
        await self.request("POST", path, {"variable": name, "value": value})

    async def originate(
        self,
        *,
        endpoint: str,
        app: str,
        app_args: str,
        caller_id: str,
        channel_id: str,
        variables: Mapping[str, str] | None = None,
        timeout_s: int = 30,
    ) -> dict[str, Any]:
        """Dial ``endpoint``; when it answers it enters Stasis ``app`` with ``app_args``."""
        params = {
            "endpoint": endpoint,
            "app": app,
            "appArgs": app_args,
            "callerId": caller_id or None,
            "timeout": timeout_s,
        }
        body = {"variables": dict(variables)} if variables else None
        result = await self.request("POST", f"/channels/{_seg(channel_id)}", params, body)
        return dict(result or {})

    async def external_media(
        self, *, app: str, external_host: str, fmt: str, channel_id: str
    ) -> dict[str, Any]:
        """A UnicastRTP channel that sends its bridge's audio as RTP to ``external_host``."""
        params = {
            "app": app,
            "external_host": external_host,
            "format": fmt,
            "channelId": channel_id,
            "encapsulation": "rtp",
            "transport": "udp",
            "direction": "both",
        }
        return dict(await self.request("POST", "/channels/externalMedia", params) or {})

    async def snoop(
        self, channel_id: str, *, snoop_id: str, app: str, app_args: str, spy: str = "in"
    ) -> dict[str, Any]:
        """A channel hearing ``channel_id``'s audio (``in`` = what that phone sends)."""
        path = f"/channels/{_seg(channel_id)}/snoop/{_seg(snoop_id)}"
        params = {"spy": spy, "whisper": "none", "app": app, "appArgs": app_args}
        return dict(await self.request("POST", path, params) or {})

    # -- bridges and recordings -------------------------------------------------------------

    async def create_bridge(self, bridge_id: str, bridge_type: str = "mixing") -> None:
        params = {"type": bridge_type, "name": bridge_id}
        await self.request("POST", f"/bridges/{_seg(bridge_id)}", params)

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{_seg(bridge_id)}")

    async def add_channels(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        params = {"channel": ",".join(channel_ids)}
        await self.request("POST", f"/bridges/{_seg(bridge_id)}/addChannel", params)

    async def remove_channels(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        params = {"channel": ",".join(channel_ids)}
        await self.request("POST", f"/bridges/{_seg(bridge_id)}/removeChannel", params)

    async def play_on_bridge(self, bridge_id: str, media: str, playback_id: str) -> None:
        path = f"/bridges/{_seg(bridge_id)}/play/{_seg(playback_id)}"
        await self.request("POST", path, {"media": media})

    async def record_bridge(
        self, bridge_id: str, name: str, fmt: str = "wav", if_exists: str = "overwrite"
    ) -> None:
        params = {
            "name": name,
            "format": fmt,
            "ifExists": if_exists,
            "beep": False,
            "terminateOn": "none",
        }
        await self.request("POST", f"/bridges/{_seg(bridge_id)}/record", params)

    async def stop_recording(self, name: str) -> None:
        await self.request("POST", f"/recordings/live/{_seg(name)}/stop")

    # -- events -----------------------------------------------------------------------------

    def events_url(self, subscribe_all: bool = True) -> str:
        ws_base = self.base_url
        if ws_base.startswith("http"):  # http → ws, https → wss
            ws_base = "ws" + ws_base[len("http") :]
        query = f"app={quote(self.app)}" + ("&subscribeAll=true" if subscribe_all else "")
        return f"{ws_base}/ari/events?{query}"

    async def events(
        self,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        *,
        subscribe_all: bool = True,
    ) -> AsyncIterator[dict[str, Any]]:
        """ARI events, forever: reconnects with exponential backoff when the socket drops.

        ``on_connect`` runs after every (re)connection, before the first event of that
        connection is yielded — the place to reconcile state missed while disconnected.
        """
        backoff = self.min_backoff_s
        url = self.events_url(subscribe_all)
        while True:
            try:
                async with self._client().ws_connect(url, heartbeat=20.0) as ws:
                    log.info("ARI events connected (app %s)", self.app)
                    backoff = self.min_backoff_s
                    if on_connect is not None:
                        try:
                            await on_connect()
                        except AriError as exc:
                            log.warning("ARI reconnect hook failed: %s", exc)
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            try:
                                event = json.loads(msg.data)
                            except json.JSONDecodeError:
                                log.warning("ARI sent a non-JSON event; ignored")
                                continue
                            if isinstance(event, dict):
                                yield event
                        elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                            break
                log.warning("ARI event socket closed; reconnecting in %.1f s", backoff)
            except aiohttp.WSServerHandshakeError as exc:
                log.warning(
                    "ARI refused the event socket (HTTP %s); retrying in %.1f s",
                    exc.status,
                    backoff,
                )
            except (TimeoutError, aiohttp.ClientError, OSError, PbxUnavailable) as exc:
                log.warning("ARI unreachable (%s); retrying in %.1f s", type(exc).__name__, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)


def _error_message(text: str, fallback: str | None) -> str:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return fallback or "error"
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return fallback or "error"
