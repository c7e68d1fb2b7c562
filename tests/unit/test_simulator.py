"""The call simulator: deterministic plans, valid wire records, well-formed audio, honest counts."""

from __future__ import annotations

import base64
import wave
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from connectors.kafka.topics import TopicCatalog
from connectors.simulator.audio import SAMPLE_RATE, Clip, load_clips, resample
from connectors.simulator.producer import (
    SimulationReport,
    message_count,
    run_simulation,
    schedule,
)
from connectors.simulator.scenario import (
    MALFORMED_HEADER,
    MALFORMED_KINDS,
    SimulatedCall,
    audio_chunks,
    cdr,
    chunk_count,
    events,
    malformed_messages,
    plan_calls,
)
from schemas.codec import MalformedMessage, decode, encode
from schemas.records import AudioChunk, CallEvent, Cdr

START_MS = 1_700_000_000_000
SAMPLES = Path(__file__).resolve().parents[2] / "connectors" / "simulator" / "samples"


@pytest.fixture(scope="module")
def clips() -> list[Clip]:
    return load_clips()


@pytest.fixture(scope="module")
def clip_by_name(clips: list[Clip]) -> dict[str, Clip]:
    return {c.name: c for c in clips}


@pytest.fixture(scope="module")
def calls(clips: list[Clip]) -> list[SimulatedCall]:
    return plan_calls(60, seed=42, start_ms=START_MS, clips=clips)


def _types(call: SimulatedCall) -> list[str]:
    return [fields["type"] for _, fields in call.timeline]


def test_shipped_clips_are_telephone_quality(clips: list[Clip]) -> None:
    assert len(clips) == 3
    assert sum(p.stat().st_size for p in SAMPLES.iterdir()) < 600_000
    for clip in clips:
        assert clip.sample_rate == SAMPLE_RATE and clip.samples.dtype == np.int16
        assert 5_000 < clip.duration_ms < 10_000
        assert np.abs(clip.samples).max() > 1_000  # real speech, not silence


def test_load_clips_resamples_other_rates(tmp_path: Path) -> None:
    tone = (np.sin(2 * np.pi * 440 * np.arange(16_000) / 16_000) * 8_000).astype("<i2")
    with wave.open(str(tmp_path / "tone.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(tone.tobytes())
    (clip,) = load_clips(tmp_path)
    assert clip.name == "tone" and clip.sample_rate == SAMPLE_RATE
    assert len(clip.samples) == 8_000
    rms = np.sqrt(np.mean(clip.samples[100:-100].astype(float) ** 2))
    assert rms == pytest.approx(8_000 / np.sqrt(2), rel=0.01)
    # and above the new Nyquist rate nothing gets through
    high = np.sin(2 * np.pi * 5_000 * np.arange(16_000) / 16_000) * 8_000
    assert np.abs(resample(high, 16_000, 8_000)[100:-100]).max() < 50


def test_load_clips_reads_flac(tmp_path: Path) -> None:
    soundfile = pytest.importorskip("soundfile")
    noise = np.random.default_rng(0).normal(0, 0.1, 44_100)
    soundfile.write(str(tmp_path / "a.flac"), noise, 44_100, subtype="PCM_16")
    (clip,) = load_clips(tmp_path)
    assert clip.sample_rate == SAMPLE_RATE and abs(len(clip.samples) - 8_000) <= 1


def test_plan_is_deterministic(clips: list[Clip], clip_by_name: dict[str, Clip]) -> None:
    a = plan_calls(20, seed=7, start_ms=START_MS, clips=clips)
    b = plan_calls(20, seed=7, start_ms=START_MS, clips=clips)
    assert a == b
    assert plan_calls(5, seed=7, start_ms=START_MS, clips=clips) == a[:5]
    assert plan_calls(20, seed=8, start_ms=START_MS, clips=clips) != a
    first = a[0]
    assert [encode(e) for e in events(first)] == [encode(e) for e in events(b[0])]
    assert [encode(c) for c in audio_chunks(first, clip_by_name)] == [
        encode(c) for c in audio_chunks(b[0], clip_by_name)
    ]


def test_plan_covers_the_untidy_cases(calls: list[SimulatedCall]) -> None:
    assert len({c.call_id for c in calls}) == len(calls)
    assert calls[0].call_id == "sim-42-1" and calls[0].start_ms == START_MS
    assert [c.start_ms for c in calls] == sorted(c.start_ms for c in calls)
    assert Counter(c.direction for c in calls)["inbound"] > len(calls) // 2
    assert {"inbound", "outbound"} <= {c.direction for c in calls}
    assert {"normal", "caller_hangup", "no_answer"} <= {c.hangup_cause for c in calls}
    assert any("dtmf" in _types(c) for c in calls)
    assert {c.department for c in calls} == {"traffic", "housing", "welfare", "tax"}
    for c in calls:
        citizen = c.callee if c.direction == "outbound" else c.caller
        assert citizen.startswith("010-0000-") and len(citizen) == 13
        staff = c.caller if c.direction == "outbound" else c.callee
        assert len(staff) == 4 and staff.startswith("2")


def test_timeline_order(calls: list[SimulatedCall]) -> None:
    for call in calls:
        offsets = [offset for offset, _ in call.timeline]
        assert offsets == sorted(offsets)
        types = _types(call)
        assert types[:4] == ["call_started", "ringing", "notice_started", "notice_finished"]
        assert types[-1] == "hangup" and types.count("hangup") == 1
        notice = offsets[3] - offsets[2]
        assert 2_500 <= notice <= 3_500
        ts = {e.type: e.ts_ms for e in events(call)}
        if call.disposition == "NO ANSWER":
            assert "answered" not in types and "bridged" not in types
            assert call.hangup_cause == "no_answer" and call.talk_ms == 0
        else:
            assert ts["call_started"] < ts["answered"] <= ts["bridged"] < ts["hangup"]
            assert ts["hangup"] - ts["answered"] == call.talk_ms
            assert 5_000 <= call.talk_ms <= 30_000
        digits = [e.digit for e in events(call) if e.type == "dtmf"]
        assert digits in ([], ["*", "9"])
        assert all(e.leg == "staff" for e in events(call) if e.type == "dtmf")


def test_every_record_decodes(calls: list[SimulatedCall], clip_by_name: dict[str, Clip]) -> None:
    event_ids: set[str] = set()
    for call in calls[:15]:
        for event in events(call):
            back = decode(CallEvent, encode(event))
            assert back.origin == "simulator" and back.ts_ms == event.ts_ms
            event_ids.add(event.event_id)
        assert decode(Cdr, encode(cdr(call))).origin == "simulator"
        for chunk in audio_chunks(call, clip_by_name):
            assert decode(AudioChunk, encode(chunk)).origin == "simulator"
    assert len(event_ids) == sum(len(c.timeline) for c in calls[:15])


def test_cdr_matches_the_call(calls: list[SimulatedCall]) -> None:
    for call in calls:
        record = cdr(call)
        assert record.billsec_s == call.talk_ms / 1000
        assert record.start_ms == call.start_ms and record.end_ms == events(call)[-1].ts_ms
        assert record.duration_s == (record.end_ms - record.start_ms) / 1000
        if call.answered:
            assert record.disposition == "ANSWERED"
            assert record.answer_ms == next(e.ts_ms for e in events(call) if e.type == "answered")
        else:
            assert (record.disposition, record.answer_ms, record.billsec_s) == ("NO ANSWER", 0, 0)


@pytest.mark.parametrize("chunk_ms", [200, 160, 1000])
def test_audio_chunks(
    calls: list[SimulatedCall], clip_by_name: dict[str, Clip], chunk_ms: int
) -> None:
    for call in calls[:12]:
        chunks = list(audio_chunks(call, clip_by_name, chunk_ms))
        if not call.answered:
            assert chunks == []
            continue
        for leg in ("caller", "staff"):
            mine = [c for c in chunks if c.leg == leg]
            assert [c.seq for c in mine] == list(range(chunk_count(call, chunk_ms)))
            assert [c.final for c in mine] == [False] * (len(mine) - 1) + [True]
            assert mine[0].start_ms == call.answer_ms
            assert sum(c.duration_ms for c in mine) == call.talk_ms
            for c in mine:
                assert (c.encoding, c.sample_rate, c.channels) == ("pcm_s16le", 8_000, 1)
                payload = base64.b64decode(c.payload_b64)
                assert len(payload) == c.sample_rate * c.duration_ms // 1000 * 2
                assert c.start_ms + c.duration_ms <= call.end_ms
        # the caller leg carries the clip itself (plus faint line noise)
        caller = b"".join(base64.b64decode(c.payload_b64) for c in chunks if c.leg == "caller")
        pcm = np.frombuffer(caller, dtype="<i2").astype(float)
        clip = clip_by_name[call.caller_clip].samples.astype(float)
        n = min(len(clip), len(pcm))
        assert np.abs(pcm[:n] - clip[:n]).mean() < 40


def test_malformed_payloads_fail_decode() -> None:
    models = {"call_events": CallEvent, "cdr": Cdr, "audio": AudioChunk}
    bad = malformed_messages(9, id_prefix="sim-1", ts_ms=START_MS)
    assert Counter(b.topic_key for b in bad) == {"call_events": 3, "cdr": 3, "audio": 3}
    assert {(b.topic_key, b.kind) for b in bad} == {
        (topic, kind) for topic, kinds in MALFORMED_KINDS.items() for kind in kinds
    }
    for b in bad:
        with pytest.raises(MalformedMessage):
            decode(models[b.topic_key], b.value)


def test_schedule_is_time_ordered_and_counted(
    calls: list[SimulatedCall], clips: list[Clip]
) -> None:
    catalog = TopicCatalog(prefix="t.")
    subset = calls[:8]
    messages = list(schedule(subset, catalog, clips, malformed=4))
    assert len(messages) == message_count(subset, malformed=4)
    keys = [(m.due_ms, m.priority) for m in messages]
    assert keys == sorted(keys)
    for call in subset:
        mine = [m for m in messages if m.key == call.call_id.encode()]
        kinds = [m.kind for m in mine]
        hangup = max(i for i, m in enumerate(mine) if m.kind == "event")
        assert kinds[-1] == "cdr" and hangup == len(mine) - 2  # CDR right after the hangup
        assert decode(CallEvent, mine[hangup].value).type == "hangup"
    bad = [m for m in messages if m.kind == "malformed"]
    assert len(bad) == 4 and all(m.headers == ((MALFORMED_HEADER, b"1"),) for m in bad)
    assert {m.topic for m in bad} == {catalog.call_events, catalog.cdr, catalog.audio}
    silent = list(schedule(subset, catalog, clips, with_audio=False))
    assert len(silent) == message_count(subset, with_audio=False)
    assert all(m.kind != "audio" for m in silent)


class FakeProducer:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.sent: list[tuple[str, bytes, bytes, Any]] = []

    def produce(self, topic: str, value: bytes, key: bytes, **kw: Any) -> None:
        self.sent.append((topic, value, key, kw.get("headers")))
        kw["on_delivery"](None, None)

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        return 0


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_run_simulation_paces_and_reports(calls: list[SimulatedCall], clips: list[Clip]) -> None:
    subset = calls[:4]
    made: list[FakeProducer] = []

    def factory(config: dict[str, Any]) -> FakeProducer:
        made.append(FakeProducer(config))
        return made[-1]

    fake = FakeTime()
    progress: list[tuple[int, int]] = []
    report = run_simulation(
        "broker:9092",
        TopicCatalog(),
        subset,
        clips,
        speed=2.0,
        malformed=3,
        progress=lambda done, total: progress.append((done, total)),
        clock=fake.clock,
        sleep=fake.sleep,
        producer_factory=factory,
    )
    (producer,) = made
    assert producer.config["enable.idempotence"] is True and producer.config["linger.ms"] == 5
    span_s = (max(c.end_ms for c in subset) - subset[0].start_ms) / 1000
    assert fake.now == pytest.approx(span_s / 2, abs=0.01)
    assert report.duration_s == pytest.approx(span_s / 2, abs=0.01)
    assert report.messages == len(producer.sent) == message_count(subset, malformed=3)
    assert report.events == sum(len(c.timeline) for c in subset)
    assert report.cdrs == report.calls == 4 and report.malformed == 3
    assert report.audio_chunks == 2 * sum(chunk_count(c) for c in subset)
    assert sum(1 for s in producer.sent if s[3] == [(MALFORMED_HEADER, b"1")]) == 3
    assert progress[-1] == (report.messages, report.messages)
    assert sum(report.departments.values()) == 4
    lines = report.summary_lines()
    assert lines[0].startswith("SIMULATED traffic: ")
    assert all("SIMULATED" in line for line in lines)

    fast = FakeTime()
    run_simulation(
        "broker:9092",
        TopicCatalog(),
        subset,
        clips,
        speed=float("inf"),
        clock=fast.clock,
        sleep=fast.sleep,
        producer_factory=FakeProducer,
    )
    assert fast.now == 0.0


def test_run_simulation_raises_on_failed_delivery(
    calls: list[SimulatedCall], clips: list[Clip]
) -> None:
    class Failing(FakeProducer):
        def produce(self, topic: str, value: bytes, key: bytes, **kw: Any) -> None:
            kw["on_delivery"]("broker said no", None)

    with pytest.raises(RuntimeError, match="failed"):
        run_simulation(
            "broker:9092", TopicCatalog(), calls[:1], clips, speed=0, producer_factory=Failing
        )


def test_empty_report_still_says_simulated() -> None:
    assert all(line.startswith("SIMULATED") for line in SimulationReport().summary_lines())
