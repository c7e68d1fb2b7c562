"""Fakes shared by the Asterisk connector tests (a PBX, an emitter, an audio capture, ARI
event builders), and the checks that keep the fakes honest against the real classes."""

from __future__ import annotations

import base64
import inspect
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.asterisk.ari import AriClient, AriError, PbxUnavailable
from connectors.asterisk.callflow import CallFlow, FlowConfig
from connectors.asterisk.protocols import Pbx
from pipelines.departments import Department, Directory
from schemas.records import AudioChunk, CallEvent, CommandResult

T0 = 1_795_000_000_000
SOUNDS = "/opt/pbx/sounds/callguard"
CITIZEN = "010-0000-1234"


def directory() -> Directory:
    return Directory(
        {
            "traffic": Department(
                code="traffic",
                name="교통과",
                line="1100",
                office_number="02-120-1100",
                staff_endpoints=("staff01", "staff02"),
                notices=("consent-notice",),
                ringback="lunch",
            ),
            "housing": Department(
                code="housing",
                name="주택정책과",
                line="1200",
                office_number="02-120-1200",
                staff_endpoints=("staff03",),
                notices=("consent-notice", "abuse-warning"),
                ringback="default",
            ),
            "welfare": Department(
                code="welfare",
                name="복지정책과",
                line="1300",
                office_number="02-120-1300",
                staff_endpoints=("staff05",),
                notices=(),
                ringback="default",
            ),
        }
    )


class FakePbx:
    """Records every ARI call; ``refuse`` makes a method raise AriError, ``unavailable`` all."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.refuse: dict[str, AriError] = {}
        self.unavailable = False

    async def _do(self, _method: str, **kw: Any) -> dict[str, Any]:
        if self.unavailable:
            raise PbxUnavailable(f"{_method}: connection refused")
        self.calls.append((_method, kw))
        if _method in self.refuse:
            raise self.refuse[_method]
        return {"id": kw.get("channel_id", "")}

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def called(self, name: str) -> list[dict[str, Any]]:
        return [kw for n, kw in self.calls if n == name]

    def clear(self) -> None:
        self.calls.clear()

    async def answer(self, channel_id: str) -> None:
        await self._do("answer", channel_id=channel_id)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self._do("hangup", channel_id=channel_id, reason=reason)

    async def ring(self, channel_id: str) -> None:
        await self._do("ring", channel_id=channel_id)

    async def ring_stop(self, channel_id: str) -> None:
        await self._do("ring_stop", channel_id=channel_id)

    async def start_moh(self, channel_id: str, moh_class: str) -> None:
        await self._do("start_moh", channel_id=channel_id, moh_class=moh_class)

    async def stop_moh(self, channel_id: str) -> None:
        await self._do("stop_moh", channel_id=channel_id)

    async def play_on_channel(self, channel_id: str, media: str, playback_id: str) -> None:
        await self._do(
            "play_on_channel", channel_id=channel_id, media=media, playback_id=playback_id
        )

    async def play_on_bridge(self, bridge_id: str, media: str, playback_id: str) -> None:
        await self._do("play_on_bridge", bridge_id=bridge_id, media=media, playback_id=playback_id)

    async def create_bridge(self, bridge_id: str, bridge_type: str = "mixing") -> None:
        await self._do("create_bridge", bridge_id=bridge_id, bridge_type=bridge_type)

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self._do("destroy_bridge", bridge_id=bridge_id)

    async def add_channels(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        await self._do("add_channels", bridge_id=bridge_id, channel_ids=list(channel_ids))

    async def record_bridge(
        self, bridge_id: str, name: str, fmt: str = "wav", if_exists: str = "overwrite"
    ) -> None:
        await self._do(
            "record_bridge", bridge_id=bridge_id, name=name, fmt=fmt, if_exists=if_exists
        )

    async def stop_recording(self, name: str) -> None:
        await self._do("stop_recording", name=name)

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
        return await self._do(
            "originate",
            endpoint=endpoint,
            app=app,
            app_args=app_args,
            caller_id=caller_id,
            channel_id=channel_id,
            variables=dict(variables or {}),
            timeout_s=timeout_s,
        )

    async def external_media(
        self, *, app: str, external_host: str, fmt: str, channel_id: str
    ) -> dict[str, Any]:
        return await self._do(
            "external_media", app=app, external_host=external_host, fmt=fmt, channel_id=channel_id
        )

    async def snoop(
        self, channel_id: str, *, snoop_id: str, app: str, app_args: str, spy: str = "in"
    ) -> dict[str, Any]:
        return await self._do(
            "snoop", channel_id=channel_id, snoop_id=snoop_id, app=app, app_args=app_args, spy=spy
        )

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self._do("set_variable", channel_id=channel_id, name=name, value=value)


class FakeEmitter:
    def __init__(self) -> None:
        self.records: list[Any] = []

    def emit(self, record: Any) -> None:
        self.records.append(record)

    def events(self) -> list[CallEvent]:
        return [r for r in self.records if isinstance(r, CallEvent)]

    def types(self) -> list[str]:
        return [e.type for e in self.events()]

    def of_type(self, type_: str) -> list[CallEvent]:
        return [e for e in self.events() if e.type == type_]

    def chunks(self) -> list[AudioChunk]:
        return [r for r in self.records if isinstance(r, AudioChunk)]

    def results(self) -> list[CommandResult]:
        return [r for r in self.records if isinstance(r, CommandResult)]


class FakeCapture:
    """Hands out ports; closing a leg emits its final chunk like the real RtpCapture."""

    def __init__(self, emitter: FakeEmitter, first_port: int = 41000) -> None:
        self.emitter = emitter
        self.next_port = first_port
        self.opened: dict[tuple[str, str], int] = {}
        self.closed: list[tuple[str, str]] = []

    async def open(self, call_id: str, leg: str) -> int:
        port = self.next_port
        self.next_port += 1
        self.opened[(call_id, leg)] = port
        return port

    async def close(self, call_id: str, leg: str) -> None:
        if (call_id, leg) not in self.opened or (call_id, leg) in self.closed:
            return
        self.closed.append((call_id, leg))
        self.emitter.emit(
            AudioChunk(
                call_id=call_id,
                leg=leg,
                seq=0,
                start_ms=T0,
                duration_ms=0,
                sample_rate=8000,
                encoding="pcm_s16le",
                channels=1,
                payload_b64=base64.b64encode(b"").decode(),
                final=True,
                origin="asterisk",
            )
        )


class Clock:
    def __init__(self, start: int = T0) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now


def make_flow(
    *, timeout_s: float = 30.0, ids: list[str] | None = None
) -> tuple[CallFlow, FakePbx, FakeEmitter, FakeCapture]:
    pbx, emitter = FakePbx(), FakeEmitter()
    capture = FakeCapture(emitter)
    pending = list(ids or [f"call-{n:032x}" for n in range(1, 50)])
    flow = CallFlow(
        pbx,
        emitter,
        directory(),
        capture,
        FlowConfig(no_answer_timeout_s=timeout_s, sounds_dir=SOUNDS),
        now_ms=Clock(),
        new_call_id=lambda: pending.pop(0),
    )
    return flow, pbx, emitter, capture


# -- ARI event builders ----------------------------------------------------------------------


def iso(ts_ms: int) -> str:
    moment = datetime.fromtimestamp(ts_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}+0000"


def channel(
    channel_id: str, *, state: str = "Ring", number: str = CITIZEN, name: str = ""
) -> dict[str, Any]:
    return {
        "id": channel_id,
        "name": name or f"PJSIP/caller01-{abs(hash(channel_id)) % 10**8:08x}",
        "state": state,
        "caller": {"name": "", "number": number},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {"context": "from-citizen", "exten": "1100", "priority": 1},
        "language": "en",
    }


def event(type_: str, ts_ms: int = T0, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "timestamp": iso(ts_ms), "application": "callguard", **fields}


def stasis_start(
    channel_id: str, args: Sequence[str], ts_ms: int = T0, **channel_kw: Any
) -> dict[str, Any]:
    return event("StasisStart", ts_ms, args=list(args), channel=channel(channel_id, **channel_kw))


def playback(type_: str, playback_id: str, ts_ms: int = T0, state: str = "") -> dict[str, Any]:
    state = state or ("playing" if type_ == "PlaybackStarted" else "done")
    body = {"id": playback_id, "media_uri": "sound:x", "target_uri": "channel:x", "state": state}
    return event(type_, ts_ms, playback=body)


def hangup_request(channel_id: str, cause: int = 16, ts_ms: int = T0) -> dict[str, Any]:
    return event("ChannelHangupRequest", ts_ms, cause=cause, channel=channel(channel_id))


def destroyed(channel_id: str, cause: int = 16, ts_ms: int = T0) -> dict[str, Any]:
    return event("ChannelDestroyed", ts_ms, cause=cause, cause_txt="x", channel=channel(channel_id))


def dtmf(channel_id: str, digit: str, ts_ms: int = T0) -> dict[str, Any]:
    return event(
        "ChannelDtmfReceived", ts_ms, digit=digit, duration_ms=100, channel=channel(channel_id)
    )


# -- keeping the fakes honest ------------------------------------------------------------------

PBX_METHODS = [
    name
    for name, member in inspect.getmembers(Pbx)
    if not name.startswith("_") and inspect.iscoroutinefunction(member)
]


def test_pbx_protocol_is_implemented_by_the_ari_client_and_the_fake() -> None:
    assert len(PBX_METHODS) >= 15
    for name in PBX_METHODS:
        expected = inspect.signature(getattr(Pbx, name))
        for cls in (AriClient, FakePbx):
            actual = inspect.signature(getattr(cls, name))
            assert list(actual.parameters) == list(expected.parameters), (cls.__name__, name)


def test_iso_timestamps_round_trip_through_the_ari_parser() -> None:
    from connectors.asterisk.ari import event_time_ms

    assert event_time_ms({"timestamp": iso(T0 + 123)}) == T0 + 123
    assert event_time_ms({"timestamp": "2026-11-03T10:15:02.123+0900"}) is not None
    assert event_time_ms({}) is None and event_time_ms({"timestamp": "yesterday"}) is None
