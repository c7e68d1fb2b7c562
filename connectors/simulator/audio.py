"""Speech clips for the simulator, at telephone quality (8 kHz, mono, 16-bit).

The simulator plays real Korean speech so that the audio pipeline (ASR, abuse detection) gets
something realistic to chew on.  Three short Zeroth-Korean clips ship in ``samples/`` (see its
README for attribution); any directory of ``.wav`` / ``.flac`` files can be used instead.  Every
clip is converted to the 8 kHz telephone rate with a small numpy polyphase resampler, so no
audio library beyond ``soundfile`` (FLAC only, imported lazily) is needed.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from math import ceil, gcd
from pathlib import Path

import numpy as np

SAMPLE_RATE = 8000
SAMPLES_DIR = Path(__file__).parent / "samples"
SUFFIXES = (".wav", ".flac")


@dataclass(frozen=True, eq=False)
class Clip:
    """One mono speech clip; ``samples`` is int16 at ``sample_rate`` (8000 from load_clips)."""

    name: str
    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE

    @property
    def duration_ms(self) -> int:
        return len(self.samples) * 1000 // self.sample_rate


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Rational-ratio polyphase resampling with a Kaiser-windowed sinc low-pass; returns float64.

    Output sample ``n`` sits at input time ``n * from_rate / to_rate``; the filter cuts at 90 % of
    the lower Nyquist rate so decimation does not alias.
    """
    x = np.asarray(samples, dtype=np.float64)
    if from_rate == to_rate or len(x) == 0:
        return x.copy()
    g = gcd(from_rate, to_rate)
    up, down = to_rate // g, from_rate // g
    cutoff = 0.45 * min(from_rate, to_rate) / (from_rate * up)  # cycles per upsampled sample
    half = 16 * ceil(1 / (2 * cutoff))  # 16 zero crossings each side
    m = np.arange(2 * half + 1) - half
    h = 2 * cutoff * np.sinc(2 * cutoff * m) * np.kaiser(2 * half + 1, 8.0) * up
    h = np.concatenate([h, np.zeros(-len(h) % up)])  # whole taps per phase
    taps = len(h) // up
    phases = h.reshape(taps, up).T  # phases[p, j] = h[p + j * up]
    n_out = ceil(len(x) * up / down)
    t = np.arange(n_out, dtype=np.int64) * down + half
    base = t // up
    idx = base[:, None] - np.arange(taps)[None, :]
    padded = np.concatenate([x, np.zeros(1)])  # index -1 / past the end → the zero
    idx = np.where((idx >= 0) & (idx < len(x)), idx, len(x))
    return np.einsum("nj,nj->n", phases[t % up], padded[idx])


def to_int16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(samples), -32768, 32767).astype(np.int16)


def _read(path: Path) -> tuple[np.ndarray, int]:
    """Samples as float64 in int16 scale, mono, and the file's rate."""
    if path.suffix.lower() == ".wav":
        try:
            with wave.open(str(path), "rb") as wav:
                width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
                raw = wav.readframes(wav.getnframes())
            if width == 2:
                data = np.frombuffer(raw, dtype="<i2").astype(np.float64)
                return data.reshape(-1, channels).mean(axis=1), rate
        except wave.Error:
            pass  # e.g. float WAV: let soundfile read it
    import soundfile  # lazy: only FLAC and unusual WAVs need libsndfile

    data, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    return data.mean(axis=1) * 32768.0, int(rate)


def load_clip(path: Path) -> Clip:
    samples, rate = _read(path)
    return Clip(path.stem, to_int16(resample(samples, rate, SAMPLE_RATE)), SAMPLE_RATE)


def load_clips(directory: Path | None = None) -> list[Clip]:
    """Every ``.wav`` / ``.flac`` in ``directory`` (default: the shipped samples), by name."""
    directory = SAMPLES_DIR if directory is None else Path(directory)
    paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no .wav or .flac clips in {directory}")
    return [load_clip(p) for p in paths]
