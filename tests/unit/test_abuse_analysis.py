"""The abuse stream's analysis helpers: an office's term list, leg selection, baselines."""

from __future__ import annotations

import base64
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest

from connectors.asr.transcriber import FakeTranscriber
from pipelines.abuse.analysis import (
    LegSegmenters,
    UtteranceAnalyzer,
    WithLocalTerms,
    load_local_terms,
)
from schemas.records import AudioChunk


@dataclass(frozen=True)
class Verdict:
    abusive: bool
    category: str
    score: float
    scores: dict[str, float]


class CleanClassifier:
    version = "clean-1"

    def classify(self, texts: list[str]) -> list[Verdict]:
        return [Verdict(False, "clean", 0.01, {"insult": 0.01}) for _ in texts]


def test_local_terms_make_their_category_certain_and_ignore_spacing(tmp_path: Path) -> None:
    path = tmp_path / "terms.toml"
    path.write_text('[terms]\ninsult = ["월급 루팡"]\nthreat = ["찾아간다"]\n', encoding="utf-8")
    terms = load_local_terms(path)
    assert terms == {"insult": ("월급루팡",), "threat": ("찾아간다",)}
    classifier = WithLocalTerms(CleanClassifier(), terms)
    out = classifier.classify(["이 월급루 팡 같은", "좋은 하루 되세요", "내가 찾 아간다"])
    # ASR splits words anywhere: "찾 아간다" still matches 찾아간다 once spaces are removed
    assert [(v.category, v.score) for v in out] == [
        ("insult", 0.99),
        ("clean", 0.01),
        ("threat", 0.99),
    ]
    assert classifier.version == "clean-1+local"
    bad = tmp_path / "bad.toml"
    bad.write_text('[terms]\nrudeness = ["x"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match="unknown categories"):
        load_local_terms(bad)


def tone_chunk(seq: int, leg: str, amplitude: float, final: bool = False) -> AudioChunk:
    pcm = b"".join(
        struct.pack("<h", int(amplitude * 32767 * math.sin(2 * math.pi * 200 * i / 8000)))
        for i in range(1600)
    )
    return AudioChunk(
        call_id="c-1",
        leg=leg,
        seq=seq,
        start_ms=seq * 200,
        duration_ms=200,
        sample_rate=8000,
        encoding="pcm_s16le",
        channels=1,
        payload_b64=base64.b64encode(pcm).decode(),
        final=final,
    )


def test_only_the_chosen_legs_are_segmented_and_final_chunks_forget_the_leg() -> None:
    legs = LegSegmenters(legs=("caller",))
    pattern = [0.0] * 2 + [0.05] * 6 + [0.0] * 4
    staff = [legs.feed(tone_chunk(n, "staff", a)) for n, a in enumerate(pattern)]
    assert staff == [[]] * len(pattern) and len(legs) == 0
    found = [
        u
        for n, a in enumerate(pattern)
        for u in legs.feed(tone_chunk(n, "caller", a, final=n == len(pattern) - 1))
    ]
    assert len(found) == 1 and found[0].utterance.leg == "caller"
    assert found[0].utterance_id == f"c-1/caller/{found[0].utterance.start_ms}"
    assert len(legs) == 0  # the final chunk flushed and forgot the leg


def test_a_finished_legs_loudness_baseline_is_dropped_after_its_last_utterance() -> None:
    legs = LegSegmenters()
    pattern = [0.0] * 2 + [0.05] * 6 + [0.0] * 4
    utterances = [
        u
        for n, a in enumerate(pattern)
        for u in legs.feed(tone_chunk(n, "caller", a, final=n == len(pattern) - 1))
    ]
    analyzer = UtteranceAnalyzer(
        FakeTranscriber(default="안녕하세요 문의드려요"), CleanClassifier(), lambda: 0
    )
    analyzer.forget_leg_after("c-1", "caller", len(utterances))
    for item in utterances:
        assert analyzer.analyze(item) is not None
    assert analyzer._baselines == {} and analyzer._finished == {}
