"""From live audio chunks to scored, masked transcripts (the abuse stream's heavy half).

:class:`LegSegmenters` keeps one pure :class:`~pipelines.core.utterances.Segmenter` per call
and leg and turns chunks into utterances.  :class:`UtteranceAnalyzer` runs one utterance through
speech recognition, the hallucination guard, PII masking, the text classifier and the voice
cues, and returns the :class:`~schemas.records.Transcript` to publish (or ``None`` when the
guard rejects it).  Both take their collaborators as arguments (fakes in tests); only
:func:`analyzer_from_settings` knows about settings and the real models.
"""

from __future__ import annotations

import logging
import tomllib
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.core import asr_guard, pii, voice
from pipelines.core.abuse import ABUSE_CATEGORIES
from pipelines.core.utterances import Segmenter, SegmenterConfig, Utterance, decode_payload
from schemas.records import AudioChunk, Transcript

if TYPE_CHECKING:
    from connectors.asr.transcriber import Transcriber
    from connectors.models.text_classifier import TextClassifier
    from pipelines.settings import Settings

log = logging.getLogger(__name__)

#: a leg with no audio for this long (chunk time) lost its final chunk: its segmenter is dropped
LEG_IDLE_MS = 10 * 60 * 1000


@dataclass(frozen=True)
class CallUtterance:
    call_id: str
    origin: str
    utterance: Utterance

    @property
    def utterance_id(self) -> str:
        u = self.utterance
        return f"{self.call_id}/{u.leg}/{u.start_ms}"


@dataclass
class LegSegmenters:
    """One segmenter per (call, leg); a leg's final chunk flushes and forgets it."""

    config: SegmenterConfig = field(default_factory=SegmenterConfig)
    legs: tuple[str, ...] = ("caller", "staff")  # which legs are transcribed at all
    _legs: dict[tuple[str, str], Segmenter] = field(default_factory=dict)
    _last_ms: dict[tuple[str, str], int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._legs)

    def feed(self, chunk: AudioChunk) -> list[CallUtterance]:
        if chunk.leg not in self.legs:
            return []
        key = (chunk.call_id, chunk.leg)
        segmenter = self._legs.get(key)
        if segmenter is None:
            config = self.config
            if chunk.sample_rate != config.sample_rate:
                config = SegmenterConfig(
                    **{**config.__dict__, "sample_rate": chunk.sample_rate}
                )
            segmenter = self._legs[key] = Segmenter(chunk.leg, config)
        pcm = decode_payload(chunk.payload_b64, chunk.encoding)
        found = segmenter.feed(pcm, chunk.start_ms)
        self._last_ms[key] = chunk.start_ms + chunk.duration_ms
        if chunk.final:
            found += segmenter.flush()
            self._forget(key)
        self._sweep(chunk.start_ms)
        return [CallUtterance(chunk.call_id, chunk.origin, u) for u in found]

    def _forget(self, key: tuple[str, str]) -> None:
        self._legs.pop(key, None)
        self._last_ms.pop(key, None)

    def _sweep(self, now_ms: int) -> None:
        stale = [k for k, last in self._last_ms.items() if now_ms - last > LEG_IDLE_MS]
        for key in stale:
            self._forget(key)


@dataclass(frozen=True)
class LocalTermVerdict:
    abusive: bool
    category: str
    score: float
    scores: dict[str, float]
    reasons: tuple[str, ...] = ()


@dataclass
class WithLocalTerms:
    """An office's own terms on top of the model: a listed term makes its category certain.

    Offices learn the insults their callers repeat faster than a model is retrained; terms are
    matched on the text with spaces removed (ASR splits words unpredictably).
    """

    base: TextClassifier
    terms: dict[str, tuple[str, ...]]  # category → terms
    version: str = ""

    def __post_init__(self) -> None:
        self.version = f"{getattr(self.base, 'version', 'unknown')}+local"

    def classify(self, texts: Sequence[str]) -> list[Any]:
        out: list[Any] = []
        verdicts: list[Any] = list(self.base.classify(texts))
        for text, verdict in zip(texts, verdicts, strict=True):
            squashed = "".join(unicodedata.normalize("NFC", text).split())
            hit = next(
                (c for c, terms in self.terms.items() for t in terms if t and t in squashed), ""
            )
            if hit:
                scores = {**verdict.scores, hit: 0.99}
                out.append(LocalTermVerdict(True, hit, 0.99, scores, ("local_term",)))
            else:
                out.append(verdict)
        return out


def load_local_terms(path: Path) -> dict[str, tuple[str, ...]]:
    """``[terms]`` table of category = [terms] (categories as in the classifier)."""
    data = tomllib.loads(path.read_text(encoding="utf-8")).get("terms", {})
    unknown = set(data) - set(ABUSE_CATEGORIES)
    if unknown:
        raise ValueError(f"{path}: unknown categories {sorted(unknown)}")
    return {
        category: tuple("".join(unicodedata.normalize("NFC", str(t)).split()) for t in terms)
        for category, terms in data.items()
    }


@dataclass
class UtteranceAnalyzer:
    transcriber: Transcriber
    classifier: TextClassifier
    clock: Callable[[], int]
    guard: asr_guard.GuardConfig = field(default_factory=asr_guard.GuardConfig)
    voice_config: voice.VoiceConfig = field(default_factory=voice.VoiceConfig)
    asr_model: str = ""
    rejected: dict[str, int] = field(default_factory=dict)  # guard reason → count
    _baselines: dict[tuple[str, str], voice.SpeakerBaseline] = field(default_factory=dict)
    _finished: dict[tuple[str, str], int] = field(default_factory=dict)  # leg → utterances left

    @property
    def classifier_version(self) -> str:
        return str(getattr(self.classifier, "version", "unknown"))

    def analyze(self, item: CallUtterance) -> Transcript | None:
        u = item.utterance
        if (item.call_id, u.leg) in self._finished:
            self._finished[(item.call_id, u.leg)] -= 1
        heard = self.transcriber.transcribe(u.pcm, u.sample_rate)
        verdict = asr_guard.check(
            heard.text,
            u.duration_s,
            level_dbfs=u.level_dbfs,
            avg_logprob=heard.avg_logprob,
            no_speech_prob=heard.no_speech_prob,
            config=self.guard,
        )
        if not verdict.accepted:
            self.rejected[verdict.reason] = self.rejected.get(verdict.reason, 0) + 1
            log.debug("utterance %s dropped by the guard: %s", item.utterance_id, verdict.reason)
            self._drop_finished()
            return None
        key = (item.call_id, u.leg)
        baseline, cues = voice.step(
            self._baselines.get(key), u.pcm, u.sample_rate, self.voice_config
        )
        self._baselines[key] = baseline
        self._drop_finished()
        (scored,) = self.classifier.classify([verdict.text])
        masked = pii.mask_text(verdict.text)
        # never the text itself at INFO: transcripts are personal data
        log.debug(
            "utterance %s: %d chars, %s %.2f",
            item.utterance_id,
            len(masked),
            scored.category,
            scored.score,
        )
        return Transcript(
            utterance_id=item.utterance_id,
            call_id=item.call_id,
            leg=u.leg,
            start_ms=u.start_ms,
            end_ms=u.end_ms,
            text=masked,
            category=scored.category,
            score=round(float(scored.score), 4),
            scores={k: round(float(v), 4) for k, v in scored.scores.items()},
            asr_backend=self.transcriber.name,
            asr_model=self.asr_model,
            classifier_version=self.classifier_version,
            avg_logprob=_num(heard.avg_logprob),
            no_speech_prob=_num(heard.no_speech_prob),
            loudness_dbfs=cues.loudness_dbfs,
            baseline_dbfs=cues.loudness_dbfs if cues.baseline_dbfs is None else cues.baseline_dbfs,
            shouting=cues.shouting,
            ts_ms=self.clock(),
            origin=item.origin,
        )

    def forget_call(self, call_id: str) -> None:
        for key in [k for k in self._baselines if k[0] == call_id]:
            del self._baselines[key]

    def forget_leg_after(self, call_id: str, leg: str, pending: int) -> None:
        """Drop a finished leg's baseline once its ``pending`` last utterances are analysed."""
        self._finished[(call_id, leg)] = pending
        self._drop_finished()

    def _drop_finished(self) -> None:
        for key, pending in list(self._finished.items()):
            if pending <= 0:
                self._baselines.pop(key, None)
                del self._finished[key]


def _num(value: Any) -> float:
    return 0.0 if value is None else round(float(value), 4)


def classifier_loader(settings: Settings) -> Callable[[str | Path | None], TextClassifier]:
    """Loads a text classifier folder (None = the registry's current version, else the shipped
    model), with the office's local terms."""
    from connectors.models.text_classifier import load_text_classifier

    terms = (
        load_local_terms(settings.abuse_local_terms_file)
        if settings.abuse_local_terms_file
        else None
    )

    def load(path: str | Path | None) -> TextClassifier:
        if not path:  # the model registry's current version, else the shipped model
            from connectors.models.registry import current_model_dir

            path = current_model_dir(settings.model_registry_path)
        classifier = load_text_classifier(Path(path) if path else None)
        return WithLocalTerms(classifier, terms) if terms else classifier

    return load


def analyzer_from_settings(settings: Settings, clock: Callable[[], int]) -> UtteranceAnalyzer:
    """The real models, loaded once per worker (called lazily, on the first utterance)."""
    from connectors.asr.transcriber import load_transcriber

    transcriber = load_transcriber(
        settings.asr_backend,
        settings.asr_model_path,
        device=settings.asr_device,
        compute_type=settings.asr_compute_type,
        beam_size=settings.asr_beam_size,
        cpu_threads=settings.asr_cpu_threads,
    )
    classifier = classifier_loader(settings)(settings.text_model_dir)
    model = settings.asr_model_path.name if settings.asr_model_path else "whisper-base"
    log.info(
        "abuse detection ready: ASR %s (%s), text classifier %s",
        transcriber.name,
        model,
        getattr(classifier, "version", "?"),
    )
    return UtteranceAnalyzer(transcriber, classifier, clock, asr_model=model)
