"""The real Asterisk PBX (docker/asterisk) with real SIP phones (pjsua2) over loopback.

Proves the telephony infrastructure the connector builds on: registration and calls, audio
both ways through the PBX, the dialplan into the ARI application ``callguard``, ARI REST and
events, our announcement media URI and hold classes, caller ID presented to a staff phone,
RFC 4733 DTMF, AMI login and ``Cdr`` events.

The module starts Asterisk with ``docker/asterisk/asterisk.sh start`` (root needed: it runs
in a chroot) and stops it afterwards; with ``CALLGUARD_ASTERISK_RUNNING=1`` the caller
manages it and the tests only use it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import uuid
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from tests.support.phones import Call, PhoneSystem, phone_system

REPO = Path(__file__).resolve().parents[2]
ASTERISK_SH = REPO / "docker" / "asterisk" / "asterisk.sh"
ARI = "http://127.0.0.1:28088/ari"
ARI_USER, ARI_PASSWORD = "callguard", "callguard-ari"
AMI_HOST, AMI_PORT = "127.0.0.1", 25038
AMI_USER, AMI_SECRET = "callguard", "callguard-ami"
APP = "callguard"
SOUNDS = "/opt/pbx/sounds/callguard"
SILENCE_RMS = 0.01  # full scale 1.0; the placeholder announcements are around 0.08


def ari_headers() -> dict[str, str]:
    token = base64.b64encode(f"{ARI_USER}:{ARI_PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def asterisk() -> Iterator[None]:
    if os.environ.get("CALLGUARD_ASTERISK_RUNNING") == "1":
        yield
        return
    if os.geteuid() != 0:
        pytest.fail(
            "the Asterisk tests start the PBX in a chroot and need root; or start it yourself "
            "(docker/asterisk/asterisk.sh start) and set CALLGUARD_ASTERISK_RUNNING=1"
        )
    subprocess.run([str(ASTERISK_SH), "start"], check=True, timeout=900)
    try:
        yield
    finally:
        subprocess.run([str(ASTERISK_SH), "stop"], check=False, timeout=60)


@pytest.fixture(scope="session")
def phones() -> PhoneSystem:
    return phone_system()


@pytest.fixture
async def ari(asterisk: None) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=ari_headers()) as session:
        yield session


def rms(path: Path) -> tuple[float, float]:
    """(seconds, RMS on a 0..1 scale) of a 16-bit mono WAV file."""
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        seconds = w.getnframes() / w.getframerate()
    if samples.size == 0:
        return seconds, 0.0
    return seconds, float(np.sqrt(np.mean((samples / 32768.0) ** 2)))


class AriEvents:
    """The ARI event websocket of the ``callguard`` application."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def next(self, event_type: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        """The next event of ``event_type`` whose top-level fields equal ``match``."""

        async def find() -> dict[str, Any]:
            while True:
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise AssertionError(f"ARI websocket closed: {msg!r}")
                event = json.loads(msg.data)
                self.seen.append(event)
                if event["type"] == event_type and all(event.get(k) == v for k, v in match.items()):
                    return event

        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            types = [e["type"] for e in self.seen[-20:]]
            raise AssertionError(f"no {event_type} within {timeout} s; saw {types}") from None


@pytest.fixture
async def events(ari: aiohttp.ClientSession) -> AsyncIterator[AriEvents]:
    url = f"{ARI}/events?app={APP}&api_key={ARI_USER}:{ARI_PASSWORD}"
    async with ari.ws_connect(url) as ws:
        yield AriEvents(ws)


async def pumping(phones: PhoneSystem, awaitable: Any) -> Any:
    """Await ``awaitable`` while a worker thread processes the phones' SIP events."""
    stop = asyncio.Event()

    def pump() -> None:
        while not stop.is_set():
            phones.pump(0.05)

    worker = asyncio.create_task(asyncio.to_thread(pump))
    try:
        return await awaitable
    finally:
        stop.set()
        await worker


# ---------------------------------------------------------------------------------------


async def test_ari_answers_for_the_callguard_user(ari: aiohttp.ClientSession) -> None:
    async with ari.get(f"{ARI}/asterisk/info") as resp:
        assert resp.status == 200
        info = await resp.json()
    assert info["system"]["version"].startswith("22.")
    async with aiohttp.ClientSession() as anonymous, anonymous.get(f"{ARI}/asterisk/info") as resp:
        assert resp.status == 401


def test_call_to_9000_hears_the_announcement_then_bye(
    asterisk: None, phones: PhoneSystem, tmp_path: Path
) -> None:
    caller = phones.register("caller01")
    call = caller.call("9000")
    call.wait_confirmed(10)
    heard = call.record_to(tmp_path / "heard.wav")
    call.wait_disconnected(30)  # the PBX hangs up after the announcement: a BYE
    assert "CONFIRMED" in call.state_history
    assert call.last_status == 200, (call.last_status, call.last_reason)
    seconds, level = rms(heard)
    assert seconds > 5, seconds  # consent-notice is 6.8 s
    assert level > SILENCE_RMS, level


async def test_ami_login_and_cdr_event_after_a_call(asterisk: None, phones: PhoneSystem) -> None:
    reader, writer = await asyncio.open_connection(AMI_HOST, AMI_PORT)
    try:
        banner = await asyncio.wait_for(reader.readline(), 5)
        assert banner.startswith(b"Asterisk Call Manager/"), banner

        async def message() -> dict[str, str]:
            fields: dict[str, str] = {}
            while True:
                line = (await reader.readline()).decode().rstrip("\r\n")
                if not line:
                    if fields:
                        return fields
                    continue
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()

        writer.write(
            f"Action: Login\r\nActionID: login\r\nUsername: {AMI_USER}\r\n"
            f"Secret: {AMI_SECRET}\r\nEvents: cdr\r\n\r\n".encode()
        )
        await writer.drain()
        reply = await asyncio.wait_for(message(), 5)
        assert reply.get("Response") == "Success", reply

        caller = await asyncio.to_thread(phones.register, "caller01")
        call: Call = await asyncio.to_thread(caller.call, "9000")
        await asyncio.to_thread(call.wait_confirmed, 10)
        await asyncio.to_thread(phones.pump, 1.0)
        await asyncio.to_thread(call.hangup)

        async def cdr() -> dict[str, str]:
            while True:
                fields = await message()
                if fields.get("Event") == "Cdr" and fields.get("Channel", "").startswith(
                    "PJSIP/caller01-"
                ):
                    return fields

        event = await pumping(phones, asyncio.wait_for(cdr(), 15))
        assert event["Destination"] == "9000", event
        assert event["DestinationContext"] == "from-citizen", event
        assert event["Disposition"] == "ANSWERED", event
        assert event["Source"] == "caller01", event
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize(
    ("username", "dialled", "args"),
    [
        ("caller02", "1100", ["inbound", "1100"]),
        ("staff02", "01012345678", ["outbound", "01012345678"]),
    ],
)
async def test_dialplan_enters_the_stasis_app(
    ari: aiohttp.ClientSession,
    events: AriEvents,
    phones: PhoneSystem,
    username: str,
    dialled: str,
    args: list[str],
) -> None:
    phone = await asyncio.to_thread(phones.register, username)
    call: Call = await asyncio.to_thread(phone.call, dialled)
    start = await pumping(phones, events.next("StasisStart", application=APP))
    channel = start["channel"]
    assert start["args"] == args
    assert channel["caller"]["number"] == username
    assert channel["dialplan"]["exten"] == dialled
    async with ari.delete(f"{ARI}/channels/{channel['id']}") as resp:
        assert resp.status == 204
    await pumping(phones, events.next("StasisEnd"))
    await asyncio.to_thread(call.wait_disconnected, 10)


async def test_ari_plays_our_media_uri_moh_and_receives_dtmf(
    ari: aiohttp.ClientSession, events: AriEvents, phones: PhoneSystem, tmp_path: Path
) -> None:
    phone = await asyncio.to_thread(phones.register, "caller02")
    call: Call = await asyncio.to_thread(phone.call, "1101")
    start = await pumping(phones, events.next("StasisStart", application=APP))
    chan = f"{ARI}/channels/{start['channel']['id']}"
    async with ari.post(f"{chan}/answer") as resp:
        assert resp.status == 204
    await asyncio.to_thread(call.wait_confirmed, 10)

    # announcement by absolute path (no extension): the URI format the connector uses
    announcement = await asyncio.to_thread(call.record_to, tmp_path / "announcement.wav")
    media = f"sound:{SOUNDS}/abuse-warning"
    async with ari.post(f"{chan}/play", params={"media": media}) as resp:
        assert resp.status == 201, await resp.text()
        playback_id = (await resp.json())["id"]
    await pumping(phones, events.next("PlaybackStarted", timeout=5))
    finished = await pumping(phones, events.next("PlaybackFinished", timeout=15))
    assert finished["playback"]["id"] == playback_id
    assert finished["playback"]["state"] == "done"
    await asyncio.to_thread(call.stop_recording)
    seconds, level = rms(announcement)
    assert seconds > 4 and level > SILENCE_RMS, (seconds, level)

    # a hold class from musiconhold.conf
    hold = await asyncio.to_thread(call.record_to, tmp_path / "hold.wav")
    async with ari.post(f"{chan}/moh", params={"mohClass": "lunch"}) as resp:
        assert resp.status == 204, await resp.text()
    await asyncio.to_thread(phones.pump, 3.0)
    async with ari.delete(f"{chan}/moh") as resp:
        assert resp.status == 204
    await asyncio.to_thread(call.stop_recording)
    seconds, level = rms(hold)
    assert seconds > 2 and level > SILENCE_RMS, (seconds, level)

    # RFC 4733 DTMF from the phone
    await asyncio.to_thread(call.send_dtmf, "5#")
    first = await pumping(phones, events.next("ChannelDtmfReceived"))
    second = await pumping(phones, events.next("ChannelDtmfReceived"))
    assert [first["digit"], second["digit"]] == ["5", "#"]

    await asyncio.to_thread(call.hangup)
    await pumping(phones, events.next("StasisEnd"))


async def test_originated_call_presents_the_caller_id_to_staff(
    ari: aiohttp.ClientSession, events: AriEvents, phones: PhoneSystem
) -> None:
    staff = await asyncio.to_thread(phones.register, "staff01")
    channel_id = f"test-{uuid.uuid4().hex[:12]}"
    params = {
        "endpoint": "PJSIP/staff01",
        "app": APP,
        "appArgs": "originated,test",
        "callerId": '"City Hall" <0212345678>',
        "channelId": channel_id,
        "timeout": "15",
    }
    async with ari.post(f"{ARI}/channels", params=params) as resp:
        assert resp.status == 200, await resp.text()
    incoming: Call = await pumping(phones, asyncio.to_thread(staff.wait_incoming, 10))
    assert incoming.remote_number == "0212345678", incoming.headers
    assert incoming.remote_name == "City Hall", incoming.headers
    assert "0212345678" in incoming.headers.get("p-asserted-identity", ""), incoming.headers
    assert "0212345678" in incoming.headers.get("from", ""), incoming.headers
    await asyncio.to_thread(incoming.answer)
    start = await pumping(phones, events.next("StasisStart", application=APP))
    assert start["channel"]["id"] == channel_id
    assert start["args"] == ["originated", "test"]
    async with ari.delete(f"{ARI}/channels/{channel_id}") as resp:
        assert resp.status == 204
    await asyncio.to_thread(incoming.wait_disconnected, 10)
