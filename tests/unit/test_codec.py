"""Wire codec: every model round-trips; malformed input fails with a clear, payload-free reason."""

from __future__ import annotations

import json

import pytest

from schemas.codec import MalformedMessage, decode, encode
from schemas.records import AudioChunk, CallEvent, Cdr
from tests.samples import SAMPLES


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_model_round_trips(name: str) -> None:
    record = SAMPLES[name]
    assert decode(type(record), encode(record)) == record


def valid_event() -> dict[str, object]:
    return json.loads(encode(SAMPLES["call_event"]))


@pytest.mark.parametrize(
    ("raw", "error_type", "needle"),
    [
        (b"", "empty", "empty"),
        (b"\xff\xfe\x00", "encoding", "UTF-8"),
        (b'{"event_id": "e1", "call_id": ', "json", "not JSON"),
        (b"[1, 2]", "schema", "must be object"),
    ],
)
def test_unparseable_bytes(raw: bytes, error_type: str, needle: str) -> None:
    with pytest.raises(MalformedMessage) as info:
        decode(CallEvent, raw)
    assert info.value.error_type == error_type
    assert needle in info.value.reason
    assert info.value.reason.startswith("call_event:")


def test_missing_field_names_the_field() -> None:
    data = valid_event()
    del data["call_id"]
    with pytest.raises(MalformedMessage, match="call_id"):
        decode(CallEvent, json.dumps(data).encode())


def test_unknown_event_type_is_rejected_without_quoting_it() -> None:
    data = valid_event()
    data["type"] = "SECRET-CALLER-NAME"
    with pytest.raises(MalformedMessage) as info:
        decode(CallEvent, json.dumps(data).encode())
    assert "type" in info.value.reason
    assert "SECRET-CALLER-NAME" not in info.value.reason


def test_wrong_type_and_unknown_field_are_rejected() -> None:
    data = valid_event()
    data["ts_ms"] = "yesterday"
    with pytest.raises(MalformedMessage, match="ts_ms"):
        decode(CallEvent, json.dumps(data).encode())
    data = valid_event()
    data["surprise"] = 1
    with pytest.raises(MalformedMessage):
        decode(CallEvent, json.dumps(data).encode())


def test_future_schema_version_is_rejected() -> None:
    data = valid_event()
    data["schema_version"] = 2
    with pytest.raises(MalformedMessage) as info:
        decode(CallEvent, json.dumps(data).encode())
    assert info.value.error_type == "version"


def test_audio_chunk_constraints() -> None:
    data = json.loads(encode(SAMPLES["audio_chunk"]))
    for field, bad in (("seq", -1), ("sample_rate", 11025), ("leg", "agent"), ("encoding", "mp3")):
        broken = {**data, field: bad}
        with pytest.raises(MalformedMessage, match=field):
            decode(AudioChunk, json.dumps(broken).encode())


def test_negative_duration_in_cdr_is_rejected() -> None:
    data = json.loads(encode(SAMPLES["cdr"]))
    data["billsec_s"] = -3.0
    with pytest.raises(MalformedMessage, match="billsec_s"):
        decode(Cdr, json.dumps(data).encode())


def test_default_dicts_are_not_shared_between_records() -> None:
    a = CallEvent.from_data({**valid_event(), "attrs": {}})
    b = CallEvent.from_data({**valid_event(), "attrs": {}})
    a.attrs["x"] = "1"
    assert b.attrs == {}
