"""The abuse-detection text classifier: rules + hashed char n-gram linear model + calibration.

Inference needs numpy only (never torch, never scikit-learn) and reads the shipped files in
``models/abuse-text/v1/``:

* ``weights.npz``: ``W`` (n_features × 5, float16) and ``b`` (5,) of a multinomial logistic
  regression over hashed features (:class:`FeatureHasher`): character 1–4-grams of the
  normalised, homograph-masked transcript, its words, and symbolic features from the rules in
  :mod:`pipelines.core.abuse_text` (which rule fired, crossed with the context: reported
  speech, lawful pressure, addressed to the listener);
* ``config.json``: hashing parameters, per-category Platt calibration, decision threshold and
  the rule floor/cap (see :meth:`LinearAbuseClassifier.classify`);
* ``metrics.json`` and ``MODEL_CARD.md``: what it was trained on and how it scores.

A verdict's ``score`` is the calibrated probability of its category (for ``clean``: the
highest abusive probability), so ``abusive == (score >= threshold)``.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pipelines.core import abuse_text
from pipelines.core.abuse_text import (
    ABUSIVE,
    CATEGORIES,
    CLEAN,
    MEDIUM,
    SEXUAL,
    STRONG,
    THREAT,
    TextAnalysis,
)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_DIR = REPO / "models" / "abuse-text" / "v1"

#: column order of the model's weight matrix
CLASSES: tuple[str, ...] = CATEGORIES  # clean, profanity, insult, threat, sexual_harassment


@dataclass(frozen=True)
class TextVerdict:
    abusive: bool
    #: one of profanity, insult, threat, sexual_harassment, clean
    category: str
    #: calibrated probability (0..1) of ``category``; for clean, the highest abusive one
    score: float
    #: per category; ``clean`` is 1 - the highest abusive probability
    scores: dict[str, float] = field(default_factory=dict)
    #: why: rule names, context flags, ``model`` when the linear model decided
    reasons: tuple[str, ...] = ()

    def as_json(self, utterance_id: Any) -> dict[str, Any]:
        return {
            "id": utterance_id,
            "abusive": self.abusive,
            "category": self.category,
            "score": round(self.score, 4),
        }


@runtime_checkable
class TextClassifier(Protocol):
    version: str

    def classify(self, texts: Sequence[str]) -> list[TextVerdict]: ...


def _verdict(
    probs: dict[str, float], threshold: float, reasons: tuple[str, ...], priority: str = "max"
) -> TextVerdict:
    best = max(ABUSIVE, key=lambda c: (probs[c], -ABUSIVE.index(c)))
    top = probs[best]
    if priority == "severity" and top >= threshold:
        best = next(c for c in ABUSIVE if probs[c] >= threshold)
        top = probs[best]
    scores = {CLEAN: 1.0 - top, **{c: probs[c] for c in ABUSIVE}}
    if top >= threshold:
        return TextVerdict(True, best, top, scores, reasons)
    return TextVerdict(False, CLEAN, top, scores, reasons)


class KeywordOnlyClassifier:
    """The rules alone: precise, low recall.  The baseline, and a stand-in for tests."""

    version = "keywords-1"

    def __init__(self, threshold: float = 0.6) -> None:
        self.threshold = threshold

    def classify(self, texts: Sequence[str]) -> list[TextVerdict]:
        out = []
        for text in texts:
            analysis = abuse_text.analyze(text)
            evidence = analysis.category_evidence()
            out.append(_verdict(evidence, self.threshold, analysis.reasons()))
        return out


# --- features ------------------------------------------------------------------------------


class FeatureHasher:
    """Hashed sparse features of one analysed utterance (CRC-32, deterministic everywhere).

    Text features (character n-grams of `` masked text ``, plus ``w:word``) are binary and
    L2-normalised together; symbolic features (``§rule=…``) have value 1.
    """

    def __init__(self, n_features: int = 1 << 18, ngram_min: int = 1, ngram_max: int = 4) -> None:
        if n_features & (n_features - 1):
            raise ValueError("n_features must be a power of two")
        self.n_features = n_features
        self.mask = n_features - 1
        self.ngram_min = ngram_min
        self.ngram_max = ngram_max

    def config(self) -> dict[str, int]:
        return {
            "n_features": self.n_features,
            "ngram_min": self.ngram_min,
            "ngram_max": self.ngram_max,
        }

    def text_keys(self, analysis: TextAnalysis) -> set[str]:
        text = f" {analysis.masked} "
        keys: set[str] = set()
        for n in range(self.ngram_min, self.ngram_max + 1):
            for i in range(len(text) - n + 1):
                keys.add(text[i : i + n])
        keys.discard(" ")
        for word in analysis.masked.split():
            keys.add("w:" + word)
        return keys

    def transform_one(self, analysis: TextAnalysis) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, values)`` of one utterance (indices may repeat; values add up)."""
        crc, mask = zlib.crc32, self.mask
        text_idx = [crc(k.encode("utf-8")) & mask for k in self.text_keys(analysis)]
        sym_idx = [
            crc(("§" + t).encode("utf-8")) & mask for t in abuse_text.feature_tokens(analysis)
        ]
        norm = 1.0 / math.sqrt(len(text_idx)) if text_idx else 0.0
        indices = np.fromiter(
            text_idx + sym_idx, dtype=np.int64, count=len(text_idx) + len(sym_idx)
        )
        values = np.empty(len(indices), dtype=np.float32)
        values[: len(text_idx)] = norm
        values[len(text_idx) :] = 1.0
        return indices, values


# --- the shipped model ---------------------------------------------------------------------


@dataclass
class ModelConfig:
    version: str
    hasher: dict[str, int]
    #: per abusive category: Platt ``[a, b]`` on the one-vs-rest logit of the model
    calibration: dict[str, list[float]]
    threshold: float = 0.5
    #: an undiscounted STRONG rule hit lifts its category to at least this probability
    strong_rule_floor: float = 0.9
    #: an undiscounted MEDIUM rule hit lifts its category to at least this (0: off)
    medium_rule_floor: float = 0.0
    #: ... but only where the model itself gives that category at least this probability
    #: (0: always).  `callguard retrain` sets it, so staff feedback on a MEDIUM rule that
    #: misfires (a homograph the rules do not mask) can overrule the floor.
    medium_floor_min_model: float = 0.0
    #: reported speech with no sign of being addressed to the listener caps every category
    reported_cap: float = 0.35
    #: lawful pressure ("소송", "찾아가서 항의") with no undiscounted threat rule caps threat
    lawful_threat_cap: float = 1.0
    #: thanks or relief with no undiscounted sexual rule caps sexual harassment (1.0: off)
    grateful_sexual_cap: float = 1.0
    #: ``max`` (the most probable category) or ``severity`` (the most severe one above the
    #: threshold, in :data:`ABUSIVE` order)
    priority: str = "max"
    #: ``softmax`` (multinomial model) or ``ovr`` (one binary model per class)
    link: str = "softmax"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ModelConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {k: data.pop(k) for k in list(data) if k in cls.__dataclass_fields__}
        return cls(**known, extra=data)

    def dump(self, path: Path) -> None:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "extra"}
        data.update(self.extra)
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class LinearAbuseClassifier:
    """Rules + hashed linear model + Platt calibration + context (see the module docstring).

    Per utterance: the model's softmax over the five classes gives each abusive category a
    one-vs-rest logit, calibrated with that category's Platt parameters.  Then the context
    rules apply: a STRONG rule hit that is not inside reported speech lifts its category to
    ``strong_rule_floor``; reported speech (``…라고 했어요``, a third party as subject) with no
    sign that the listener is addressed caps every category at ``reported_cap``.  A MEDIUM
    rule hit outside reported speech lifts its category to ``medium_rule_floor`` (when set).
    """

    def __init__(self, weights: np.ndarray, bias: np.ndarray, config: ModelConfig) -> None:
        if weights.shape[1] != len(CLASSES):
            raise ValueError(f"weights have {weights.shape[1]} columns, expected {len(CLASSES)}")
        self.weights = weights
        self.bias = bias.astype(np.float32)
        self.config = config
        self.version = config.version
        self.hasher = FeatureHasher(**config.hasher)
        if self.hasher.n_features != weights.shape[0]:
            raise ValueError("weights and hashing config disagree on n_features")

    @classmethod
    def load(cls, model_dir: Path) -> LinearAbuseClassifier:
        config = ModelConfig.load(model_dir / "config.json")
        with np.load(model_dir / "weights.npz") as data:
            weights = data["W"]
            bias = data["b"]
        return cls(weights, bias, config)

    def save(self, model_dir: Path) -> None:
        model_dir.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            model_dir / "weights.npz", W=self.weights.astype(np.float16), b=self.bias
        )
        self.config.dump(model_dir / "config.json")

    def logits(self, analysis: TextAnalysis) -> np.ndarray:
        """The model's raw class scores (before softmax), shape (5,)."""
        indices, values = self.hasher.transform_one(analysis)
        rows = self.weights[indices].astype(np.float32)
        result: np.ndarray = values @ rows + self.bias
        return result

    def ovr_logits(self, analysis: TextAnalysis) -> dict[str, float]:
        """Per abusive category, the one-vs-rest logit before calibration."""
        z = self.logits(analysis).astype(np.float64)
        if self.config.link == "ovr":
            return {c: float(z[i]) for i, c in enumerate(CLASSES) if c != CLEAN}
        z -= z.max()
        p = np.exp(z)
        p /= p.sum()
        out = {}
        for i, category in enumerate(CLASSES):
            if category != CLEAN:
                pc = min(max(float(p[i]), 1e-7), 1 - 1e-7)
                out[category] = math.log(pc / (1 - pc))
        return out

    def model_probs(self, analysis: TextAnalysis) -> dict[str, float]:
        """Calibrated per-category probabilities from the model alone (no floor or cap)."""
        probs = {}
        for category, logit in self.ovr_logits(analysis).items():
            a, b = self.config.calibration.get(category, [1.0, 0.0])
            probs[category] = _sigmoid(a * logit + b)
        return probs

    def classify_one(self, text: str) -> TextVerdict:
        analysis = abuse_text.analyze(text)
        probs = self.model_probs(analysis)
        model_probs = dict(probs)
        reasons = list(analysis.reasons())
        cfg = self.config
        for hit in analysis.hits:
            if hit.discounted:
                continue
            if hit.strength >= STRONG:
                probs[hit.category] = max(probs[hit.category], cfg.strong_rule_floor)
            elif (
                hit.strength >= MEDIUM
                and cfg.medium_rule_floor
                and model_probs[hit.category] >= cfg.medium_floor_min_model
            ):
                probs[hit.category] = max(probs[hit.category], cfg.medium_rule_floor)
        threat_rule = any(
            h.category == THREAT and not h.discounted and h.strength >= MEDIUM
            for h in analysis.hits
        )
        if analysis.lawful and not threat_rule and probs[THREAT] > cfg.lawful_threat_cap:
            probs[THREAT] = cfg.lawful_threat_cap
            reasons.append("context:lawful_cap")
        sexual_rule = any(
            h.category == SEXUAL and not h.discounted and h.strength >= MEDIUM
            for h in analysis.hits
        )
        if analysis.grateful and not sexual_rule and probs[SEXUAL] > cfg.grateful_sexual_cap:
            probs[SEXUAL] = cfg.grateful_sexual_cap
            reasons.append("context:grateful_cap")
        if analysis.reported and not analysis.directed:
            capped = {c: min(p, cfg.reported_cap) for c, p in probs.items()}
            if capped != probs:
                reasons.append("context:reported_cap")
            probs = capped
        reasons.append("model")
        return _verdict(probs, cfg.threshold, tuple(reasons), cfg.priority)

    def classify(self, texts: Sequence[str]) -> list[TextVerdict]:
        return [self.classify_one(text) for text in texts]


def load_text_classifier(model_dir: Path | None = None) -> TextClassifier:
    """The shipped model (``models/abuse-text/v1``) or the one in ``model_dir``."""
    directory = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
    if not (directory / "config.json").exists():
        raise FileNotFoundError(f"no text model in {directory} (config.json missing)")
    return LinearAbuseClassifier.load(directory)
