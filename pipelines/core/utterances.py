"""Utterance segmenter: one call leg's live audio → whole utterances for speech recognition.

Pure and deterministic (standard library only, no clock): time is the audio's own timeline,
``start_ms`` of each chunk plus the samples in it.  Feed 16-bit PCM as it arrives
(:meth:`Segmenter.feed`), get an :class:`Utterance` back when the speaker stops.

Voice activity is energy-based, per 20 ms frame:

* a frame is *loud* when its RMS level is above ``max(threshold_dbfs, noise floor + margin_db)``;
  the noise floor follows the quietest recent frames (drops at once, rises ``floor_rise_db_per_s``),
  so steady line noise or a hum stops counting as speech after a while;
* an utterance opens after ``start_ms`` of loud frames (the ``pre_roll_ms`` before it is kept, so
  soft onsets are not clipped) and closes after ``hangover_ms`` of quiet frames;
* utterances with less than ``min_speech_ms`` of loud frames are dropped (clicks, coughs);
* one longer than ``max_ms`` is cut there (``forced=True``) and the next one continues at once.

A gap in the chunk timeline (lost chunks) is filled with silence up to ``max_gap_ms``; a larger
gap closes any open utterance and restarts the timeline.  A chunk that starts before the end
of what was already fed (a duplicate or late chunk) is ignored and counted.

The wire carries audio base64 in ``pcm_s16le``, ``ulaw`` or ``alaw``: :func:`decode_payload`
turns any of them into 16-bit little-endian PCM without ``audioop`` (gone in Python 3.13).
"""

from __future__ import annotations

import base64
import math
import sys
from array import array
from collections import deque
from dataclasses import dataclass, field

SILENCE_DBFS = -100.0
FULL_SCALE = 32768.0


# ---------------------------------------------------------------- PCM helpers


def _ulaw_table() -> tuple[int, ...]:
    """ITU-T G.711 μ-law byte → linear 16-bit sample."""
    out = []
    for byte in range(256):
        u = ~byte & 0xFF
        magnitude = ((((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84
        out.append(-magnitude if u & 0x80 else magnitude)
    return tuple(out)


def _alaw_table() -> tuple[int, ...]:
    """ITU-T G.711 A-law byte → linear 16-bit sample."""
    out = []
    for byte in range(256):
        a = byte ^ 0x55
        exponent, mantissa = (a >> 4) & 0x07, a & 0x0F
        shifted = ((mantissa << 4) + 0x108) << max(exponent - 1, 0)
        magnitude = (mantissa << 4) + 8 if exponent == 0 else shifted
        out.append(magnitude if a & 0x80 else -magnitude)
    return tuple(out)


ULAW_TO_LINEAR = _ulaw_table()
ALAW_TO_LINEAR = _alaw_table()


def samples(pcm: bytes) -> array:
    """16-bit little-endian PCM bytes → ``array('h')`` (an odd trailing byte is dropped)."""
    out = array("h")
    out.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":
        out.byteswap()
    return out


def to_pcm(values: array) -> bytes:
    """``array('h')`` → 16-bit little-endian PCM bytes."""
    if sys.byteorder == "big":
        values = array("h", values)
        values.byteswap()
    return values.tobytes()


def decode_audio(data: bytes, encoding: str) -> bytes:
    """``pcm_s16le`` | ``ulaw`` | ``alaw`` bytes → 16-bit little-endian PCM."""
    if encoding == "pcm_s16le":
        return data[: len(data) - len(data) % 2]
    if encoding in ("ulaw", "alaw"):
        table = ULAW_TO_LINEAR if encoding == "ulaw" else ALAW_TO_LINEAR
        return to_pcm(array("h", [table[b] for b in data]))
    raise ValueError(f"unknown audio encoding {encoding!r}")


def decode_payload(payload_b64: str, encoding: str) -> bytes:
    """An ``AudioChunk``'s ``payload_b64`` in ``encoding`` → 16-bit little-endian PCM."""
    return decode_audio(base64.b64decode(payload_b64), encoding)


def level_dbfs(values: array | list[int]) -> float:
    """RMS level of 16-bit samples in dBFS (full-scale square wave = 0 dB; silence = -100)."""
    if not len(values):
        return SILENCE_DBFS
    energy = sum(v * v for v in values) / len(values)
    if energy <= 0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 10.0 * math.log10(energy / (FULL_SCALE * FULL_SCALE)))


def frame_levels(pcm: bytes, sample_rate: int, frame_ms: int = 20) -> list[float]:
    """dBFS of each whole ``frame_ms`` frame of 16-bit PCM (a partial last frame is dropped)."""
    values = samples(pcm)
    n = sample_rate * frame_ms // 1000
    return [level_dbfs(values[i : i + n]) for i in range(0, len(values) - n + 1, n)]


# ---------------------------------------------------------------- segmenter


@dataclass(frozen=True)
class SegmenterConfig:
    sample_rate: int = 8000
    frame_ms: int = 20
    threshold_dbfs: float = -45.0  # never speech below this, whatever the floor
    margin_db: float = 10.0  # speech is this far above the noise floor
    floor_init_dbfs: float = -60.0
    floor_min_dbfs: float = -75.0
    floor_rise_db_per_s: float = 1.5
    start_ms: int = 60  # loud audio needed to open an utterance
    pre_roll_ms: int = 200  # audio kept from before the opening
    hangover_ms: int = 500  # quiet audio that closes an utterance
    tail_ms: int = 200  # quiet audio kept after the last loud frame
    min_speech_ms: int = 400  # loud audio an utterance needs, else it is dropped
    max_ms: int = 15_000  # forced cut
    max_gap_ms: int = 2_000  # timeline gaps up to this are filled with silence

    def frames(self, ms: int) -> int:
        return max(1, ms // self.frame_ms)

    @property
    def frame_samples(self) -> int:
        return self.sample_rate * self.frame_ms // 1000


@dataclass(frozen=True)
class Utterance:
    """One stretch of speech of one leg; ``pcm`` is 16-bit little-endian mono."""

    leg: str
    start_ms: int
    end_ms: int
    pcm: bytes
    sample_rate: int
    speech_ms: int  # loud frames inside it
    level_dbfs: float  # RMS of the loud frames (active speech level)
    peak_frame_dbfs: float
    noise_floor_dbfs: float
    forced: bool = False  # cut at max_ms, the speaker had not stopped

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def duration_s(self) -> float:
        return self.duration_ms / 1000.0


@dataclass
class _Frame:
    start_ms: int
    values: array
    level: float
    loud: bool


@dataclass
class SegmenterStats:
    frames: int = 0
    utterances: int = 0
    dropped_short: int = 0
    forced_cuts: int = 0
    late_chunks: int = 0
    gaps_filled_ms: int = 0
    resyncs: int = 0


@dataclass
class Segmenter:
    """Incremental segmenter for one leg (keep one per call and leg)."""

    leg: str
    config: SegmenterConfig = field(default_factory=SegmenterConfig)
    stats: SegmenterStats = field(default_factory=SegmenterStats)

    def __post_init__(self) -> None:
        self._origin_ms: int | None = None  # timeline position of the first sample
        self._fed = 0  # samples fed since the origin (gap silence included)
        self._framed = 0  # whole frames made since the origin
        self._pending = array("h")  # samples not yet a whole frame
        self._floor = self.config.floor_init_dbfs
        self._recent: deque[_Frame] = deque(
            maxlen=self.config.frames(self.config.pre_roll_ms) + self.config.frames(
                self.config.start_ms
            )
        )
        self._run = 0  # consecutive loud frames while closed
        self._open: list[_Frame] | None = None
        self._quiet = 0  # consecutive quiet frames while open

    @property
    def noise_floor_dbfs(self) -> float:
        return self._floor

    @property
    def in_speech(self) -> bool:
        return self._open is not None

    def feed(self, pcm: bytes, start_ms: int) -> list[Utterance]:
        """Audio that starts at ``start_ms`` on this leg's timeline; returns closed utterances."""
        out: list[Utterance] = []
        cfg = self.config
        next_ms = self.next_ms
        if next_ms is not None:
            if start_ms < next_ms - cfg.frame_ms:
                self.stats.late_chunks += 1
                return out
            gap = start_ms - next_ms
            if gap > cfg.max_gap_ms:
                out.extend(self.flush())
                self.stats.resyncs += 1
            elif gap >= cfg.frame_ms:
                silence = array("h", bytes(2 * (gap * cfg.sample_rate // 1000)))
                self.stats.gaps_filled_ms += gap
                out.extend(self._consume(silence))
        if self._origin_ms is None:
            self._origin_ms, self._fed, self._framed = start_ms, 0, 0
        out.extend(self._consume(samples(pcm)))
        return out

    @property
    def next_ms(self) -> int | None:
        """Where the next chunk is expected to start on the timeline (None before any audio)."""
        if self._origin_ms is None:
            return None
        return self._origin_ms + self._fed * 1000 // self.config.sample_rate

    def flush(self) -> list[Utterance]:
        """End of the leg (or a timeline break): close what is open; pending samples count."""
        out: list[Utterance] = []
        if self._pending and self._open is not None:
            self._open.append(_Frame(self._frame_ms(), self._pending, SILENCE_DBFS, False))
        self._pending = array("h")
        if self._open is not None:
            utterance = self._close(forced=False)
            self._open = None
            if utterance is not None:
                out.append(utterance)
        self._recent.clear()
        self._run = 0
        self._origin_ms = None
        return out

    # -- internals

    def _frame_ms(self) -> int:
        """Timeline position of the next whole frame."""
        return (self._origin_ms or 0) + self._framed * self.config.frame_ms

    def _consume(self, values: array) -> list[Utterance]:
        cfg = self.config
        n = cfg.frame_samples
        self._pending.extend(values)
        self._fed += len(values)
        out: list[Utterance] = []
        offset = 0
        while len(self._pending) - offset >= n:
            frame_values = self._pending[offset : offset + n]
            offset += n
            utterance = self._frame(frame_values)
            if utterance is not None:
                out.append(utterance)
        del self._pending[:offset]
        return out

    def _frame(self, values: array) -> Utterance | None:
        cfg = self.config
        self.stats.frames += 1
        level = level_dbfs(values)
        loud = level > max(cfg.threshold_dbfs, self._floor + cfg.margin_db)
        step = cfg.floor_rise_db_per_s * cfg.frame_ms / 1000.0
        self._floor = max(cfg.floor_min_dbfs, min(level, self._floor + step))
        frame = _Frame(self._frame_ms(), values, level, loud)
        self._framed += 1
        if self._open is None:
            self._recent.append(frame)
            self._run = self._run + 1 if loud else 0
            if self._run >= cfg.frames(cfg.start_ms):
                self._open = list(self._recent)
                self._recent.clear()
                self._run = 0
                self._quiet = 0
            return None
        self._open.append(frame)
        self._quiet = 0 if loud else self._quiet + 1
        if self._quiet >= cfg.frames(cfg.hangover_ms):
            return self._close(forced=False)
        if len(self._open) >= cfg.frames(cfg.max_ms):
            return self._close(forced=True)
        return None

    def _close(self, *, forced: bool) -> Utterance | None:
        cfg = self.config
        frames = self._open or []
        self._open = None
        self._quiet = 0
        if not forced:  # keep only tail_ms of the trailing quiet frames
            last_loud = max((i for i, f in enumerate(frames) if f.loud), default=-1)
            frames = frames[: last_loud + 1 + cfg.frames(cfg.tail_ms)]
        else:
            self.stats.forced_cuts += 1
            # the speaker goes on: the next utterance starts at once, already open
            self._open = []
        loud = [f for f in frames if f.loud]
        speech_ms = len(loud) * cfg.frame_ms
        if not frames or speech_ms < cfg.min_speech_ms:
            self.stats.dropped_short += 1
            return None
        pcm_values = array("h")
        for f in frames:
            pcm_values.extend(f.values)
        energy = sum(10 ** (f.level / 10.0) for f in loud) / len(loud)
        self.stats.utterances += 1
        return Utterance(
            leg=self.leg,
            start_ms=frames[0].start_ms,
            end_ms=frames[0].start_ms + len(pcm_values) * 1000 // cfg.sample_rate,
            pcm=to_pcm(pcm_values),
            sample_rate=cfg.sample_rate,
            speech_ms=speech_ms,
            level_dbfs=round(10.0 * math.log10(energy), 2),
            peak_frame_dbfs=round(max(f.level for f in loud), 2),
            noise_floor_dbfs=round(self._floor, 2),
            forced=forced,
        )


def segment(
    pcm: bytes, leg: str = "caller", config: SegmenterConfig | None = None, start_ms: int = 0
) -> list[Utterance]:
    """Every utterance in one stretch of audio (feed + flush), e.g. for tests and benchmarks."""
    segmenter = Segmenter(leg, config or SegmenterConfig())
    return segmenter.feed(pcm, start_ms) + segmenter.flush()
