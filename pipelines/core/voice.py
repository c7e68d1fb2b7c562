"""Voice cues per utterance: loudness against the speaker's own baseline, and pitch.

Shouting is relative: a caller on a loud line, or simply a loud voice, is not shouting.  Each
speaker (call + leg) keeps a short history of the loudness of their earlier *calm* utterances;
the baseline is its median.  An utterance is ``shouting`` when its loudness exceeds the baseline
by ``margin_db`` (default 10 dB) over at least ``min_loud_fraction`` of its speech frames.
Until ``min_history`` utterances are known there is no baseline and only an absolute level
(``absolute_shout_dbfs``, near clipping) counts as shouting.  Shouted utterances do not enter
the baseline, so a caller who keeps shouting does not make shouting their new normal.

Pitch (optional) is a plain autocorrelation estimate on the loudest voiced frames, enough to see
a voice rise by several semitones; :func:`estimate_pitch` costs a few milliseconds per utterance.

Pure: standard library only; state is a small frozen value (:class:`SpeakerBaseline`).
"""

from __future__ import annotations

import math
import statistics
from array import array
from dataclasses import dataclass, replace
from typing import Any

from pipelines.core.utterances import SILENCE_DBFS, level_dbfs, samples


@dataclass(frozen=True)
class VoiceConfig:
    frame_ms: int = 20
    speech_gate_db: float = 30.0  # frames within this of the loudest frame count as speech
    margin_db: float = 10.0  # shouting = this far above the speaker's baseline …
    min_loud_fraction: float = 0.3  # … in at least this share of the speech frames
    min_history: int = 2  # calm utterances needed before a baseline exists
    history: int = 15  # calm utterances the baseline remembers
    absolute_shout_dbfs: float = -6.0  # without a baseline: only near-clipping counts
    pitch: bool = True
    pitch_min_hz: float = 70.0
    pitch_max_hz: float = 400.0
    pitch_frames: int = 10  # loudest frames analysed
    pitch_frame_ms: int = 40
    pitch_min_correlation: float = 0.5  # voiced when the normalised peak reaches this


@dataclass(frozen=True)
class VoiceCues:
    loudness_dbfs: float  # active speech level of this utterance
    baseline_dbfs: float | None  # the speaker's usual level (None: not known yet)
    excess_db: float  # loudness - baseline (0 without a baseline)
    shouting: bool
    pitch_hz: float | None = None
    loud_fraction: float = 0.0  # share of speech frames above baseline + margin


@dataclass(frozen=True)
class SpeakerBaseline:
    """Loudness of the speaker's recent calm utterances, oldest first."""

    levels: tuple[float, ...] = ()

    def value(self, config: VoiceConfig) -> float | None:
        if len(self.levels) < config.min_history:
            return None
        return float(statistics.median(self.levels))

    def to_dict(self) -> dict[str, Any]:
        return {"levels": list(self.levels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpeakerBaseline:
        return cls(levels=tuple(float(v) for v in data.get("levels", ())))


def speech_levels(pcm: bytes, sample_rate: int, config: VoiceConfig | None = None) -> list[float]:
    """dBFS of the utterance's speech frames (within ``speech_gate_db`` of the loudest)."""
    cfg = config or VoiceConfig()
    values = samples(pcm)
    n = max(1, sample_rate * cfg.frame_ms // 1000)
    levels = [level_dbfs(values[i : i + n]) for i in range(0, len(values) - n + 1, n)]
    levels = [lv for lv in levels if lv > SILENCE_DBFS]
    if not levels:
        return []
    top = max(levels)
    return [lv for lv in levels if lv >= top - cfg.speech_gate_db]


def power_mean_dbfs(levels: list[float]) -> float:
    """Level of the frames together (mean power, not mean of decibels)."""
    if not levels:
        return SILENCE_DBFS
    return 10.0 * math.log10(sum(10 ** (lv / 10.0) for lv in levels) / len(levels))


def estimate_pitch(pcm: bytes, sample_rate: int, config: VoiceConfig | None = None) -> float | None:
    """Median fundamental frequency (Hz) of the loudest voiced frames, or None (unvoiced).

    The signal is decimated to about 4 kHz (pair averages) before the autocorrelation, which is
    plenty for voices up to ``pitch_max_hz`` and keeps the pure-Python cost low.
    """
    cfg = config or VoiceConfig()
    values = samples(pcm)
    factor = max(1, sample_rate // 4000)
    if factor > 1:
        values = array(
            "h", [sum(values[i : i + factor]) // factor for i in range(0, len(values), factor)]
        )
    rate = sample_rate / factor
    n = int(rate * cfg.pitch_frame_ms / 1000)
    min_lag = max(2, int(rate / cfg.pitch_max_hz))
    max_lag = min(n // 2, math.ceil(rate / cfg.pitch_min_hz))
    if len(values) < n or max_lag <= min_lag:
        return None
    frames = [values[i : i + n] for i in range(0, len(values) - n + 1, n // 2)]
    loudest = sorted(frames, key=lambda f: sum(v * v for v in f), reverse=True)
    estimates = []
    for frame in loudest[: cfg.pitch_frames]:
        estimate = _frame_pitch(frame, rate, min_lag, max_lag, cfg.pitch_min_correlation)
        if estimate is not None:
            estimates.append(estimate)
    if not estimates:
        return None
    return round(float(statistics.median(estimates)), 1)


def _frame_pitch(
    frame: array, rate: float, min_lag: int, max_lag: int, min_corr: float
) -> float | None:
    mean = sum(frame) / len(frame)
    x = [v - mean for v in frame]
    n = len(x)
    energy = sum(v * v for v in x)
    if energy <= 0:
        return None
    # unbiased autocorrelation normalised by the frame energy
    corr = [
        sum(a * b for a, b in zip(x, x[lag:], strict=False)) * n / ((n - lag) * energy)
        for lag in range(min_lag, max_lag + 1)
    ]
    peak = max(range(len(corr)), key=corr.__getitem__)
    if corr[peak] < min_corr:
        return None
    # the first local maximum close to the best one avoids picking an octave too low
    best = peak
    for i in range(1, peak + 1):
        if corr[i] >= 0.85 * corr[peak] and corr[i] >= corr[i - 1] and corr[i] >= corr[i + 1]:
            best = i
            break
    lag = float(best + min_lag)
    if 0 < best < len(corr) - 1:  # parabolic interpolation around the peak
        a, b, c = corr[best - 1], corr[best], corr[best + 1]
        denominator = a - 2 * b + c
        if denominator:
            lag += 0.5 * (a - c) / denominator
    return rate / lag


def step(
    baseline: SpeakerBaseline | None,
    pcm: bytes,
    sample_rate: int,
    config: VoiceConfig | None = None,
) -> tuple[SpeakerBaseline, VoiceCues]:
    """Cues for one utterance of a speaker, and the speaker's updated baseline."""
    cfg = config or VoiceConfig()
    baseline = baseline or SpeakerBaseline()
    levels = speech_levels(pcm, sample_rate, cfg)
    loudness = power_mean_dbfs(levels)
    reference = baseline.value(cfg)
    if reference is None:
        loud = [lv for lv in levels if lv >= cfg.absolute_shout_dbfs]
        excess = 0.0
    else:
        loud = [lv for lv in levels if lv >= reference + cfg.margin_db]
        excess = loudness - reference
    fraction = len(loud) / len(levels) if levels else 0.0
    shouting = bool(levels) and fraction >= cfg.min_loud_fraction
    if reference is not None:
        shouting = shouting and excess >= cfg.margin_db / 2
    pitch = estimate_pitch(pcm, sample_rate, cfg) if cfg.pitch and levels else None
    cues = VoiceCues(
        loudness_dbfs=round(loudness, 2),
        baseline_dbfs=None if reference is None else round(reference, 2),
        excess_db=round(excess, 2),
        shouting=shouting,
        pitch_hz=pitch,
        loud_fraction=round(fraction, 3),
    )
    if levels and not shouting:
        baseline = replace(baseline, levels=(*baseline.levels, round(loudness, 2))[-cfg.history :])
    return baseline, cues
