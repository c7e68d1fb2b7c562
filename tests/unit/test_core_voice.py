"""Voice cues: loudness against the speaker's own baseline (shouting) and a pitch estimate."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.core.voice import (
    SpeakerBaseline,
    VoiceConfig,
    estimate_pitch,
    power_mean_dbfs,
    speech_levels,
    step,
)

RATE = 8000


def voiced(seconds: float, dbfs: float, f0: float = 140.0, seed: int = 0) -> bytes:
    """A harmonic 'vowel' at ``f0`` with a little noise, scaled to ``dbfs`` RMS."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
    x = x + 0.05 * np.random.default_rng(seed).normal(size=len(t))
    x = x / np.sqrt(np.mean(x**2)) * 32768 * 10 ** (dbfs / 20)
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()


def calm_history(levels: list[float]) -> SpeakerBaseline | None:
    baseline = None
    for i, level in enumerate(levels):
        baseline, cues = step(baseline, voiced(1.0, level, seed=i), RATE)
        assert not cues.shouting
    return baseline


def test_no_baseline_at_first_and_only_near_clipping_counts() -> None:
    baseline, cues = step(None, voiced(1.0, -28), RATE)
    assert cues.baseline_dbfs is None and cues.excess_db == 0 and not cues.shouting
    assert cues.loudness_dbfs == pytest.approx(-28, abs=0.5)
    assert baseline.levels == (pytest.approx(-28, abs=0.5),)
    _, loud = step(None, voiced(1.0, -3), RATE)
    assert loud.shouting


def test_shouting_is_relative_to_the_speakers_own_baseline() -> None:
    baseline = calm_history([-30, -29, -31])
    assert baseline is not None
    after, cues = step(baseline, voiced(1.5, -16), RATE)
    assert cues.baseline_dbfs == pytest.approx(-30, abs=0.5)
    assert cues.excess_db == pytest.approx(14, abs=1)
    assert cues.shouting and cues.loud_fraction > 0.9
    assert after == baseline  # a shouted utterance does not raise the baseline


def test_a_loud_voice_on_a_loud_line_is_not_shouting() -> None:
    baseline = calm_history([-12, -13, -12])
    _, cues = step(baseline, voiced(1.0, -10), RATE)
    assert not cues.shouting and cues.excess_db == pytest.approx(2, abs=1)


def test_a_little_louder_is_not_shouting_and_the_margin_is_configurable() -> None:
    baseline = calm_history([-30, -30])
    _, cues = step(baseline, voiced(1.0, -24), RATE)
    assert not cues.shouting
    _, strict = step(baseline, voiced(1.0, -24), RATE, VoiceConfig(margin_db=5))
    assert strict.shouting


def test_a_short_loud_burst_inside_a_calm_utterance_is_not_shouting() -> None:
    baseline = calm_history([-30, -30, -30])
    burst = voiced(1.8, -30) + voiced(0.2, -12, seed=9)  # 10 % of the frames
    _, cues = step(baseline, burst, RATE)
    assert not cues.shouting and 0 < cues.loud_fraction < 0.2


def test_baseline_is_a_median_of_a_bounded_history() -> None:
    cfg = VoiceConfig(history=3)
    baseline = SpeakerBaseline((-40.0, -30.0, -31.0, -29.0))
    assert baseline.value(cfg) == pytest.approx(-30.5)
    baseline, _ = step(baseline, voiced(1.0, -28), RATE, cfg)
    assert len(baseline.levels) == 3 and baseline.levels[-1] == pytest.approx(-28, abs=0.5)
    assert SpeakerBaseline.from_dict(baseline.to_dict()) == baseline
    assert SpeakerBaseline().value(cfg) is None


def test_silence_gives_no_cues_and_leaves_the_baseline_alone() -> None:
    baseline = SpeakerBaseline((-30.0, -30.0))
    after, cues = step(baseline, bytes(16000), RATE)
    assert after == baseline and not cues.shouting and cues.pitch_hz is None
    assert speech_levels(b"", RATE) == [] and power_mean_dbfs([]) == -100.0


@pytest.mark.parametrize("f0", [90.0, 140.0, 210.0, 330.0])
def test_pitch_of_a_harmonic_voice(f0: float) -> None:
    assert estimate_pitch(voiced(0.6, -20, f0), RATE) == pytest.approx(f0, rel=0.03)


def test_noise_has_no_pitch_and_pitch_can_be_switched_off() -> None:
    rng = np.random.default_rng(3)
    noise = (rng.normal(size=RATE) * 3000).astype("<i2").tobytes()
    assert estimate_pitch(noise, RATE) is None
    _, cues = step(None, voiced(0.5, -20), RATE, VoiceConfig(pitch=False))
    assert cues.pitch_hz is None
    assert estimate_pitch(b"\x00\x01", RATE) is None
