"""The ARI client against a local aiohttp server: request shapes, errors, the event socket."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from connectors.asterisk.ari import AriClient, AriError, PbxUnavailable


class FakeAri:
    """Records requests; answers 204, or what ``responses[(method, path)]`` says."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.responses: dict[tuple[str, str], tuple[int, Any]] = {}
        self.sessions: list[list[dict[str, Any]]] = []  # events per websocket connection
        self.ws_queries: list[dict[str, str]] = []
        self.app = web.Application()
        self.app.router.add_get("/ari/events", self.events)
        self.app.router.add_route("*", "/ari/{tail:.*}", self.rest)

    async def rest(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path[len("/ari") :],
                "raw_path": request.raw_path,
                "query": dict(request.query),
                "json": json.loads(body) if body else None,
                "auth": request.headers.get("Authorization", ""),
            }
        )
        status, payload = self.responses.get((request.method, request.path[4:]), (204, None))
        if payload is None:
            return web.Response(status=status)
        return web.json_response(payload, status=status)

    async def events(self, request: web.Request) -> web.WebSocketResponse:
        self.ws_queries.append(dict(request.query))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        batch = self.sessions.pop(0) if self.sessions else []
        for event in batch:
            await ws.send_str(json.dumps(event))
        await ws.send_str("not json")
        await ws.close()
        return ws


@pytest.fixture
async def ari_server():
    fake = FakeAri()
    runner = web.AppRunner(fake.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = AriClient(
        f"http://127.0.0.1:{port}", "callguard", "callguard-ari", "callguard", min_backoff_s=0.01
    )
    yield fake, client
    await client.close()
    await runner.cleanup()


async def test_rest_requests_have_the_ari_shape(ari_server) -> None:
    fake, client = ari_server
    await client.answer("ch-1")
    await client.hangup("ch-1", "busy")
    await client.start_moh("ch-1", "lunch")
    await client.stop_moh("ch-1")
    await client.ring("ch-1")
    await client.play_on_channel("ch-1", "sound:/x/consent-notice", "pb-1")
    await client.play_on_bridge("br-1", "sound:/x/abuse-warning", "cmd-1")
    await client.create_bridge("br-1")
    await client.add_channels("br-1", ["a", "b"])
    await client.record_bridge("br-1", "call-1")
    await client.stop_recording("call-1")
    await client.set_variable("ch-1", "CDR(userfield)", "cg1:call_id=x")
    await client.originate(
        endpoint="PJSIP/staff01",
        app="callguard",
        app_args="staff,call-1",
        caller_id='"교통과" <02-120-1100>',
        channel_id="call-1-staff",
        variables={"CALLGUARD_CALL_ID": "call-1"},
    )
    await client.external_media(
        app="callguard", external_host="127.0.0.1:32000", fmt="ulaw", channel_id="m-1"
    )
    await client.snoop("ch-1", snoop_id="s-1", app="callguard", app_args="snoop,call-1,caller")
    await client.destroy_bridge("br-1")
    got = [(r["method"], r["path"]) for r in fake.requests]
    assert got == [
        ("POST", "/channels/ch-1/answer"),
        ("DELETE", "/channels/ch-1"),
        ("POST", "/channels/ch-1/moh"),
        ("DELETE", "/channels/ch-1/moh"),
        ("POST", "/channels/ch-1/ring"),
        ("POST", "/channels/ch-1/play/pb-1"),
        ("POST", "/bridges/br-1/play/cmd-1"),
        ("POST", "/bridges/br-1"),
        ("POST", "/bridges/br-1/addChannel"),
        ("POST", "/bridges/br-1/record"),
        ("POST", "/recordings/live/call-1/stop"),
        ("POST", "/channels/ch-1/variable"),
        ("POST", "/channels/call-1-staff"),
        ("POST", "/channels/externalMedia"),
        ("POST", "/channels/ch-1/snoop/s-1"),
        ("DELETE", "/bridges/br-1"),
    ]
    q = [r["query"] for r in fake.requests]
    assert q[1] == {"reason": "busy"} and q[2] == {"mohClass": "lunch"}
    assert q[5] == {"media": "sound:/x/consent-notice"}
    assert q[7] == {"type": "mixing", "name": "br-1"}
    assert q[8] == {"channel": "a,b"}
    assert q[9] == {
        "name": "call-1",
        "format": "wav",
        "ifExists": "overwrite",
        "beep": "false",
        "terminateOn": "none",
    }
    assert q[11] == {"variable": "CDR(userfield)", "value": "cg1:call_id=x"}
    assert q[12] == {
        "endpoint": "PJSIP/staff01",
        "app": "callguard",
        "appArgs": "staff,call-1",
        "callerId": '"교통과" <02-120-1100>',
        "timeout": "30",
    }
    assert fake.requests[12]["json"] == {"variables": {"CALLGUARD_CALL_ID": "call-1"}}
    assert q[13]["external_host"] == "127.0.0.1:32000" and q[13]["format"] == "ulaw"
    assert q[13]["channelId"] == "m-1" and q[13]["encapsulation"] == "rtp"
    assert q[14] == {
        "spy": "in",
        "whisper": "none",
        "app": "callguard",
        "appArgs": "snoop,call-1,caller",
    }
    token = base64.b64encode(b"callguard:callguard-ari").decode()
    assert {r["auth"] for r in fake.requests} == {f"Basic {token}"}


async def test_refusals_and_outages_are_told_apart(ari_server) -> None:
    fake, client = ari_server
    fake.responses[("POST", "/channels/gone/answer")] = (404, {"message": "Channel not found"})
    fake.responses[("POST", "/channels/x/answer")] = (503, {"message": "starting"})
    with pytest.raises(AriError) as refused:
        await client.answer("gone")
    assert (refused.value.status, refused.value.message) == (404, "Channel not found")
    assert refused.value.path == "/channels/gone/answer"
    with pytest.raises(PbxUnavailable):
        await client.answer("x")


async def test_ids_are_escaped_in_paths(ari_server) -> None:
    fake, client = ari_server
    await client.answer("odd/id?x")
    assert fake.requests[-1]["raw_path"] == "/ari/channels/odd%2Fid%3Fx/answer"
    assert fake.requests[-1]["query"] == {}


async def test_list_channels_returns_json(ari_server) -> None:
    fake, client = ari_server
    fake.responses[("GET", "/channels")] = (200, [{"id": "a"}, {"id": "b"}])
    assert [c["id"] for c in await client.list_channels()] == ["a", "b"]


async def test_unreachable_pbx_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = AriClient(f"http://127.0.0.1:{port}", "u", "p", "callguard")
    try:
        with pytest.raises(PbxUnavailable):
            await client.answer("ch")
    finally:
        await client.close()


async def test_events_reconnect_and_call_the_hook_each_time(ari_server) -> None:
    fake, client = ari_server
    fake.sessions = [
        [{"type": "StasisStart", "n": 1}, {"type": "StasisEnd", "n": 2}],
        [{"type": "ChannelDestroyed", "n": 3}],
    ]
    connects: list[int] = []

    async def on_connect() -> None:
        connects.append(len(connects) + 1)

    seen: list[int] = []
    events = client.events(on_connect)
    async with asyncio.timeout(5):
        async for event in events:
            seen.append(event["n"])
            if len(seen) == 3:
                break
    await events.aclose()
    assert seen == [1, 2, 3]
    assert connects == [1, 2]
    assert fake.ws_queries[0] == {"app": "callguard", "subscribeAll": "true"}
    assert client.events_url().startswith("ws://127.0.0.1:")
    assert WSMsgType.TEXT  # the client reads text frames only
