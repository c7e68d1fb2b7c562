"""The abuse-detection agents under faust's test_context, with fake ASR and classifier.

* transcribe: live audio chunks → utterances → (fake) ASR → guard → masking → classifier →
  ``calls.transcripts``;
* respond: call events + transcripts + command results → incidents, warning, termination,
  hangup; malformed input is dead-lettered.
"""

from __future__ import annotations

import base64
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
import pytest

from connectors.asr.transcriber import FakeTranscriber
from pipelines.abuse.analysis import UtteranceAnalyzer
from pipelines.app import StreamOptions, create_app
from pipelines.core import abuse as core
from pipelines.settings import Settings
from schemas.codec import encode
from schemas.records import (
    AudioChunk,
    CommandResult,
    DeadLetter,
    Decision,
    Incident,
    PbxCommand,
    Transcript,
)
from tests.agents.conftest import Clock, Sent, put_on_topic
from tests.samples import T0, call_event

RATE = 8000


@dataclass(frozen=True)
class Verdict:
    abusive: bool
    category: str
    score: float
    scores: dict[str, float]
    reasons: tuple[str, ...] = ()


@dataclass
class KeywordClassifier:
    """A stand-in for the trained model: one word per category."""

    version: str = "fake-1"
    words: dict[str, str] = field(
        default_factory=lambda: {"개새끼": "profanity", "죽여": "threat", "멍청": "insult"}
    )

    def classify(self, texts: list[str]) -> list[Verdict]:
        out = []
        for text in texts:
            hit = next((c for w, c in self.words.items() if w in text), "")
            scores = {c: (0.95 if c == hit else 0.02) for c in core.ABUSE_CATEGORIES}
            out.append(
                Verdict(bool(hit), hit or "clean", 0.95 if hit else 0.02, scores)
            )
        return out


def speech_pcm(ms: int, amplitude: float) -> bytes:
    """A voiced-sounding tone (what the energy segmenter calls speech)."""
    n = RATE * ms // 1000
    return b"".join(
        struct.pack("<h", int(amplitude * 32767 * math.sin(2 * math.pi * 180 * i / RATE)))
        for i in range(n)
    )


def chunks(call_id: str, pattern: list[tuple[int, float]], leg: str = "caller") -> list[AudioChunk]:
    """200 ms chunks following (duration_ms, amplitude) segments; the last one is final."""
    pcm = b"".join(speech_pcm(ms, amp) for ms, amp in pattern)
    size = RATE * 2 // 5
    parts = [pcm[i : i + size] for i in range(0, len(pcm), size)]
    return [
        AudioChunk(
            call_id=call_id,
            leg=leg,
            seq=n,
            start_ms=T0 + n * 200,
            duration_ms=len(part) // 2 * 1000 // RATE,
            sample_rate=RATE,
            encoding="pcm_s16le",
            channels=1,
            payload_b64=base64.b64encode(part).decode(),
            final=n == len(parts) - 1,
        )
        for n, part in enumerate(parts)
    ]


@pytest.fixture
def transcriber() -> FakeTranscriber:
    return FakeTranscriber(
        script=["안녕하세요 주차 과태료 문의드립니다", "야 이 개새끼야 내 번호 010-1234-5678 적어"]
    )


@pytest.fixture
def abuse_app(settings: Settings, clock: Clock, transcriber: FakeTranscriber) -> faust.App:
    options = StreamOptions(
        idle_limit_s=60,
        analyzer=lambda: UtteranceAnalyzer(transcriber, KeywordClassifier(), clock),
    )
    return create_app(settings, options=options, clock=clock)


async def test_audio_becomes_masked_scored_transcripts(
    abuse_app: faust.App, catalog: Any, sent: Sent, transcriber: FakeTranscriber
) -> None:
    # silence, speech, silence, louder speech, silence
    pattern = [(600, 0.0), (1200, 0.05), (1000, 0.0), (1400, 0.06), (1000, 0.0)]
    async with abuse_app.agents["callguard.abuse.transcribe"].test_context() as ctx:
        for chunk in chunks("c-1", pattern):
            await ctx.put(key=b"c-1", value=encode(chunk))
    first, second = sent.records(catalog.transcripts, Transcript)
    assert len(transcriber.calls) == 2
    assert first.category == "clean" and first.leg == "caller"
    assert second.category == "profanity" and second.score == 0.95
    assert "010-1234-5678" not in second.text and "[전화번호]" in second.text
    assert second.classifier_version == "fake-1" and second.asr_backend == "fake"
    assert T0 + 300 <= first.start_ms < first.end_ms <= second.start_ms < second.end_ms
    assert second.utterance_id == f"c-1/caller/{second.start_ms}"


async def test_silence_and_hallucinations_produce_no_transcript(
    abuse_app: faust.App, catalog: Any, sent: Sent, transcriber: FakeTranscriber
) -> None:
    transcriber._queue.clear()
    transcriber._queue.append("시청해 주셔서 감사합니다")
    app = abuse_app
    async with app.agents["callguard.abuse.transcribe"].test_context() as ctx:
        # trailing silence: the utterance closes before the final chunk, so the agent has
        # finished with it by the time the test context ends
        for chunk in chunks("c-2", [(3000, 0.0), (1000, 0.05), (1600, 0.0)]):
            await ctx.put(key=b"c-2", value=encode(chunk))
    assert len(transcriber.calls) == 1  # the speech was transcribed …
    assert sent.on(catalog.transcripts) == []  # … and the guard dropped the hallucination


def said(call_id: str, n: int, text: str, category: str, score: float) -> Transcript:
    return Transcript(
        utterance_id=f"{call_id}/caller/{n}",
        call_id=call_id,
        leg="caller",
        start_ms=T0 + n * 1000,
        end_ms=T0 + n * 1000 + 900,
        text=text,
        category=category,
        score=score,
        scores={category: score},
        asr_backend="fake",
        asr_model="",
        classifier_version="fake-1",
        avg_logprob=-0.2,
        no_speech_prob=0.01,
        loudness_dbfs=-20.0,
        baseline_dbfs=-22.0,
        shouting=False,
        ts_ms=T0 + n * 1000 + 1000,
    )


async def test_warn_then_end_then_hang_up_once(
    abuse_app: faust.App, catalog: Any, sent: Sent, clock: Clock
) -> None:
    agent = abuse_app.agents["callguard.abuse.respond"]
    async with agent.test_context() as ctx:
        for n, type_ in enumerate(("call_started", "answered", "bridged")):
            event = call_event(call_id="c-3", event_id=f"c-3-{n}", type_=type_, ts_ms=T0 + n)
            await ctx.put(key=b"c-3", value=encode(event))
        for n, (at, text, category, score) in enumerate(
            [
                (10, "주차 과태료가 왜 나왔는지 모르겠어요", "clean", 0.05),
                (11, "야 이 개새끼야", "profanity", 0.95),
                (11, "야 이 개새끼야", "profanity", 0.95),  # a replay of the same utterance
                (20, "찾아가서 죽여버린다", "threat", 0.97),
            ]
        ):
            record = said("c-3", at, text, category, score)
            clock.now_ms = T0 + 30_000 + n * 1000
            await put_on_topic(ctx, catalog.transcripts, b"c-3", encode(record))
        terminate = core.command_id("c-3", "terminate")
        result = CommandResult(
            command_id=terminate, call_id="c-3", action="play", status="applied", ts_ms=T0 + 40_000
        )
        for _ in range(2):  # a redelivered result must not hang up twice
            await put_on_topic(ctx, catalog.command_results, b"c-3", encode(result))
        await put_on_topic(ctx, catalog.transcripts, b"c-3", b'{"not": "a transcript"}')
    commands = sent.records(catalog.commands, PbxCommand)
    assert [(c.action, c.args.get("media", c.args.get("cause"))) for c in commands] == [
        ("play", "abuse-warning"),
        ("play", "abuse-termination"),
        ("hangup", "abuse"),
    ]
    assert {c.issued_by for c in commands} == {"abuse"}
    incidents = sent.records(catalog.incidents, Incident)
    assert [(i.category, i.action) for i in incidents] == [("profanity", "warn"), ("threat", "end")]
    assert incidents[0].evidence == "야 이 개새끼야" and incidents[0].model_version == "fake-1"
    assert incidents[0].department == "traffic"
    kinds = [d.kind for d in sent.records(catalog.decisions, Decision)]
    assert kinds == ["warn", "alert", "terminate", "alert", "hangup"]
    (dead,) = sent.records(catalog.dead_letters, DeadLetter)
    assert dead.consumer == "abuse-respond" and dead.source_topic == catalog.transcripts


def test_the_worker_can_leave_abuse_detection_to_others(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, kafka_bootstrap="127.0.0.1:1", streams=["calls", "timeout"]
    )
    app = create_app(settings)
    names = set(app.agents)
    assert "callguard.timeout" in names
    assert not any(name.startswith("callguard.abuse") for name in names)
