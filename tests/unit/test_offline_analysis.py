"""`callguard analyze` / `transcribe` on files: chunks, utterances and the policy, with fakes."""

from __future__ import annotations

import math
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

from connectors.asr.transcriber import FakeTranscriber
from pipelines.abuse.analysis import UtteranceAnalyzer
from pipelines.abuse.offline import analyze_file, file_chunks
from pipelines.core import abuse as core


@dataclass(frozen=True)
class Verdict:
    abusive: bool
    category: str
    score: float
    scores: dict[str, float]


class WordClassifier:
    version = "words-1"

    def classify(self, texts: list[str]) -> list[Verdict]:
        return [
            Verdict(True, "insult", 0.9, {"insult": 0.9})
            if "멍청" in t
            else Verdict(False, "clean", 0.05, {"insult": 0.05})
            for t in texts
        ]


def write_wav(path: Path, rate: int, pattern: list[tuple[float, float]]) -> None:
    """Tone bursts (speech-like for the energy segmenter) and silences, 16-bit mono."""
    frames = bytearray()
    for seconds, amplitude in pattern:
        for i in range(int(seconds * rate)):
            value = amplitude * 32767 * math.sin(2 * math.pi * 200 * i / rate)
            frames += struct.pack("<h", int(value))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))


def test_file_is_cut_into_final_terminated_8k_chunks(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    write_wav(path, 16000, [(1.0, 0.1)])
    chunks = list(file_chunks(path, "c"))
    assert [c.sample_rate for c in chunks] == [8000] * 5
    assert [c.final for c in chunks] == [False] * 4 + [True]
    assert [c.start_ms for c in chunks] == [0, 200, 400, 600, 800]


def test_two_insults_warn_then_end(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    write_wav(
        path, 8000, [(0.5, 0), (1.5, 0.05), (1.0, 0), (1.5, 0.05), (1.0, 0), (1.5, 0.05), (1, 0)]
    )
    transcriber = FakeTranscriber(
        script=["안녕하세요 문의 좀", "이 멍청한 공무원아", "멍청하다고 했다"]
    )
    analyzer = UtteranceAnalyzer(transcriber, WordClassifier(), lambda: 0)
    book = core.PolicyBook(default=core.Policy())
    result = analyze_file(path, analyzer, book, department="traffic")
    assert len(result.transcripts) == 3
    assert [(i.category, i.action) for i in result.incidents] == [
        ("insult", "warn"),
        ("insult", "end"),
    ]
    assert result.actions == ["warn", "alert", "terminate", "alert", "hangup"]
