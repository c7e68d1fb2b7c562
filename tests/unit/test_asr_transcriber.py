"""Transcriber interface, the fake backend, the factory's errors, faster-whisper's options."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from connectors.asr import (
    FakeTranscriber,
    FasterWhisperTranscriber,
    Transcriber,
    TranscriberError,
    Transcript,
    load_transcriber,
    pcm16_to_whisper,
)

ONE_SECOND = bytes(16_000)  # 8 kHz, 16-bit


def test_fake_transcriber_plays_its_script_then_the_default() -> None:
    scripted = Transcript("여보세요", "ko", -0.9, 0.5, 1.0)
    fake = FakeTranscriber(["안녕하세요", scripted], default="")
    assert isinstance(fake, Transcriber) and fake.name == "fake"
    first = fake.transcribe(ONE_SECOND, 8000)
    assert (first.text, first.language, first.duration_s) == ("안녕하세요", "ko", 1.0)
    assert first.avg_logprob is not None and first.no_speech_prob is not None
    assert fake.transcribe(ONE_SECOND, 8000) is scripted
    empty = fake.transcribe(bytes(8000), 8000)
    assert empty.text == "" and empty.duration_s == 0.5 and empty.avg_logprob is None
    assert fake.calls == [(16_000, 8000), (16_000, 8000), (8000, 8000)]


def test_load_transcriber_fake_and_unknown_backends() -> None:
    fake = load_transcriber("fake", script=["네"])
    assert fake.transcribe(ONE_SECOND, 8000).text == "네"
    with pytest.raises(TranscriberError, match="unknown ASR backend 'vosk'"):
        load_transcriber("vosk")


def test_a_missing_model_folder_is_explained(tmp_path: Path) -> None:
    with pytest.raises(TranscriberError, match=r"model\.bin|not installed"):
        load_transcriber("faster-whisper", tmp_path / "nowhere")


@pytest.mark.skipif(
    importlib.util.find_spec("whisperx") is not None, reason="whisperx is installed here"
)
def test_whisperx_without_the_extra_says_how_to_install() -> None:
    with pytest.raises(TranscriberError, match=r"pip install -e '\.\[whisperx\]'"):
        load_transcriber("whisperx")


def test_pcm_is_converted_to_16k_float() -> None:
    t = np.arange(8000) / 8000
    tone = (np.sin(2 * np.pi * 500 * t) * 16384).astype("<i2").tobytes()
    audio = pcm16_to_whisper(tone, 8000)
    assert audio.dtype == np.float32 and len(audio) == 16_000
    assert float(np.sqrt(np.mean(audio[200:-200] ** 2))) == pytest.approx(0.5 / np.sqrt(2), 0.02)
    # the spectrum stays at 500 Hz (no image at 7.5 kHz from the up-sampling)
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(int(np.argmax(spectrum)) - 500) <= 1
    assert spectrum[7400:7600].max() < spectrum.max() * 1e-3
    assert len(pcm16_to_whisper(ONE_SECOND, 16_000)) == 8000
    assert len(pcm16_to_whisper(bytes(2 * 11025), 11025)) == 16_000
    assert len(pcm16_to_whisper(b"", 8000)) == 0


@dataclass
class Segment:
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    start: float
    end: float


@dataclass
class Info:
    language: str = "ko"


class StandInModel:
    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments
        self.calls: list[dict[str, Any]] = []

    def transcribe(self, audio: np.ndarray, **options: Any) -> tuple[Any, Info]:
        self.calls.append({"samples": len(audio), **options})
        return iter(self.segments), Info()


def test_faster_whisper_decodes_deterministically_without_its_own_filters() -> None:
    model = StandInModel(
        [
            Segment(" 민원 접수", -0.2, 0.1, 1.1, 0.0, 1.0),
            Segment("했어요.", -0.8, 0.3, 1.0, 1.0, 4.0),
        ]
    )
    transcriber = FasterWhisperTranscriber(model=model, beam_size=3)
    result = transcriber.transcribe(bytes(2 * 8000 * 4), 8000)
    assert result.text == "민원 접수 했어요."
    assert result.language == "ko" and result.duration_s == 4.0
    assert result.avg_logprob == pytest.approx((-0.2 * 1 + -0.8 * 3) / 4)
    assert result.no_speech_prob == 0.3
    [call] = model.calls
    assert call["samples"] == 64_000
    assert call["language"] == "ko" and call["beam_size"] == 3 and call["temperature"] == 0.0
    assert call["vad_filter"] is False and call["condition_on_previous_text"] is False
    assert call["no_speech_threshold"] is None and call["log_prob_threshold"] is None


def test_faster_whisper_with_no_segments_or_no_audio() -> None:
    transcriber = FasterWhisperTranscriber(model=StandInModel([]))
    assert transcriber.transcribe(ONE_SECOND, 8000) == Transcript("", "ko", None, None, 1.0)
    assert transcriber.transcribe(b"", 8000).text == ""
    with pytest.raises(ValueError, match="beam_size"):
        FasterWhisperTranscriber(model=StandInModel([]), beam_size=0)
