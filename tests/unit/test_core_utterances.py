"""The utterance segmenter: energy VAD with hangover, min/max length, timeline gaps, decoding."""

from __future__ import annotations

import base64
import math
from array import array

import numpy as np
import pytest

from connectors.asterisk.rtp import ALAW_TO_PCM, ULAW_TO_PCM
from pipelines.core.utterances import (
    ALAW_TO_LINEAR,
    SILENCE_DBFS,
    ULAW_TO_LINEAR,
    Segmenter,
    SegmenterConfig,
    Utterance,
    decode_audio,
    decode_payload,
    frame_levels,
    level_dbfs,
    samples,
    segment,
    to_pcm,
)

RATE = 8000


def silence(ms: int) -> list[int]:
    return [0] * (RATE * ms // 1000)


def speechlike(ms: int, dbfs: float = -20.0, seed: int = 1) -> list[int]:
    """Noise with a 4 Hz syllable envelope that never drops to silence (stays 'loud')."""
    rng = np.random.default_rng(seed)
    n = RATE * ms // 1000
    envelope = 0.75 + 0.25 * np.sin(2 * np.pi * 4 * np.arange(n) / RATE)
    noise = rng.normal(0, 32768 * 10 ** (dbfs / 20), n) * envelope
    return [int(v) for v in np.clip(noise, -32768, 32767)]


def noise(ms: int, dbfs: float, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 32768 * 10 ** (dbfs / 20), RATE * ms // 1000)
    return [int(v) for v in np.clip(values, -32768, 32767)]


def pcm(*parts: list[int]) -> bytes:
    values = array("h")
    for part in parts:
        values.extend(part)
    return to_pcm(values)


def feed_in_chunks(data: bytes, chunk_bytes: int, leg: str = "caller") -> list[Utterance]:
    segmenter = Segmenter(leg)
    out = []
    for offset in range(0, len(data), chunk_bytes):
        start_ms = offset // 2 * 1000 // RATE
        out += segmenter.feed(data[offset : offset + chunk_bytes], start_ms)
    return out + segmenter.flush()


# ---------------------------------------------------------------- levels and decoding


def test_level_of_full_scale_square_wave_is_0_dbfs_and_silence_is_the_floor() -> None:
    assert level_dbfs(array("h", [32767, -32768] * 80)) == pytest.approx(0.0, abs=0.01)
    assert level_dbfs(array("h", [0] * 160)) == SILENCE_DBFS
    assert level_dbfs(array("h")) == SILENCE_DBFS


def test_level_of_a_sine_is_its_rms() -> None:
    sine = [int(3276.8 * math.sin(2 * math.pi * 440 * i / RATE)) for i in range(1600)]
    expected = 20 * math.log10(0.1 / math.sqrt(2))  # -23.0 dBFS
    assert frame_levels(pcm(sine), RATE)[3] == pytest.approx(expected, abs=0.1)


def test_g711_tables_match_the_asterisk_connector() -> None:
    assert list(ULAW_TO_LINEAR) == ULAW_TO_PCM.tolist()
    assert list(ALAW_TO_LINEAR) == ALAW_TO_PCM.tolist()


def test_decode_payload_for_every_wire_encoding() -> None:
    raw = pcm([0, 1, -1, 32767, -32768])
    assert decode_payload(base64.b64encode(raw).decode(), "pcm_s16le") == raw
    ulaw = bytes([0xFF, 0x00, 0x80])
    assert samples(decode_payload(base64.b64encode(ulaw).decode(), "ulaw")).tolist() == [
        0,
        -32124,
        32124,
    ]
    assert samples(decode_audio(bytes([0xD5]), "alaw")).tolist() == [8]
    with pytest.raises(ValueError, match="encoding"):
        decode_audio(b"\x00", "opus")


def test_odd_trailing_byte_is_dropped() -> None:
    assert decode_audio(b"\x01\x00\x02", "pcm_s16le") == b"\x01\x00"
    assert samples(b"\x01\x00\x02").tolist() == [1]


# ---------------------------------------------------------------- segmentation


def test_one_utterance_between_silences_with_pre_roll_and_tail() -> None:
    data = pcm(silence(1000), speechlike(1500), silence(1000))
    [u] = segment(data, leg="staff")
    cfg = SegmenterConfig()
    assert u.leg == "staff"
    assert 1000 - cfg.pre_roll_ms - cfg.start_ms <= u.start_ms <= 1000
    assert 2500 <= u.end_ms <= 2500 + cfg.tail_ms + cfg.frame_ms
    assert len(u.pcm) == (u.end_ms - u.start_ms) * RATE // 1000 * 2
    assert u.speech_ms == pytest.approx(1500, abs=40)
    assert u.level_dbfs == pytest.approx(-22.3, abs=1.0)  # -20 dB noise × mean envelope²
    assert u.sample_rate == RATE and not u.forced
    assert u.duration_s == pytest.approx(u.duration_ms / 1000)


def test_chunking_does_not_change_the_result() -> None:
    data = pcm(silence(700), speechlike(900), silence(800), speechlike(1200, -25, 2), silence(600))
    whole = segment(data)
    assert len(whole) == 2
    for chunk_bytes in (320, 3200, 74, 4002):  # 20 ms, 200 ms, 37 samples, odd sizes
        assert feed_in_chunks(data, chunk_bytes) == whole


def test_hangover_keeps_short_pauses_inside_one_utterance() -> None:
    short_pause = pcm(silence(500), speechlike(800), silence(300), speechlike(800), silence(900))
    long_pause = pcm(silence(500), speechlike(800), silence(900), speechlike(800), silence(900))
    assert len(segment(short_pause)) == 1
    assert len(segment(long_pause)) == 2


def test_bursts_shorter_than_the_minimum_are_dropped() -> None:
    segmenter = Segmenter("caller")
    data = pcm(silence(500), speechlike(200), silence(1000), speechlike(300, seed=3), silence(900))
    assert segmenter.feed(data, 0) + segmenter.flush() == []
    assert segmenter.stats.dropped_short == 2


def test_quiet_line_noise_is_never_speech() -> None:
    assert segment(pcm(noise(10_000, -60, seed=5))) == []


def test_steady_loud_noise_stops_counting_as_speech_once_the_floor_adapts() -> None:
    out = segment(pcm(noise(30_000, -38, seed=6)))
    assert len(out) <= 1
    assert all(u.duration_ms < 10_000 for u in out)


def test_long_speech_is_cut_at_the_maximum_and_continues() -> None:
    # 40 s of talk with 100 ms breaths every second (shorter than the hangover)
    talk: list[int] = []
    for second in range(40):
        talk += speechlike(900, seed=second) + silence(100)
    out = segment(pcm(silence(300), talk, silence(1000)))
    assert [u.forced for u in out] == [True, True, False]
    assert [u.duration_ms for u in out[:2]] == [15_000, 15_000]
    assert out[1].start_ms == out[0].end_ms and out[2].start_ms == out[1].end_ms
    assert out[2].end_ms <= 40_300 + SegmenterConfig().tail_ms


def test_max_length_is_configurable() -> None:
    cfg = SegmenterConfig(max_ms=2000, min_speech_ms=200)
    out = segment(pcm(speechlike(5000)), config=cfg)
    assert [u.forced for u in out] == [True, True, False]
    assert all(u.duration_ms <= 2000 for u in out)


def test_flush_closes_an_open_utterance_at_the_end_of_the_leg() -> None:
    segmenter = Segmenter("caller")
    assert segmenter.feed(pcm(silence(400), speechlike(1000)), 5_000) == []
    assert segmenter.in_speech
    [u] = segmenter.flush()
    assert u.start_ms >= 5_000 and u.end_ms <= 6_400
    assert not segmenter.in_speech and segmenter.next_ms is None


def test_timeline_starts_at_the_first_chunk_and_small_gaps_are_filled() -> None:
    segmenter = Segmenter("caller")
    first = pcm(silence(600), speechlike(600))
    second = pcm(speechlike(600, seed=9), silence(1000))
    out = segmenter.feed(first, 10_000)
    out += segmenter.feed(second, 10_000 + 1200 + 200)  # one 200 ms chunk lost
    out += segmenter.flush()
    assert segmenter.stats.gaps_filled_ms == 200
    [u] = out  # the lost 200 ms is shorter than the hangover: still one utterance
    assert 10_300 <= u.start_ms <= 10_600 and 12_000 <= u.end_ms <= 12_400


def test_a_large_gap_closes_the_utterance_and_restarts_the_timeline() -> None:
    segmenter = Segmenter("caller")
    out = segmenter.feed(pcm(silence(300), speechlike(1000)), 0)
    out += segmenter.feed(pcm(speechlike(1000, seed=4), silence(800)), 60_000)
    out += segmenter.flush()
    assert segmenter.stats.resyncs == 1
    assert len(out) == 2
    assert out[0].end_ms <= 1_300 + SegmenterConfig().tail_ms and out[1].start_ms >= 60_000


def test_late_or_duplicate_chunks_are_ignored() -> None:
    segmenter = Segmenter("caller")
    chunk = pcm(speechlike(200))
    segmenter.feed(chunk, 0)
    segmenter.feed(chunk, 200)
    assert segmenter.feed(chunk, 0) == []  # a duplicate of the first chunk
    assert segmenter.stats.late_chunks == 1
    assert segmenter.next_ms == 400


def test_real_speech_clip_is_one_utterance() -> None:
    from connectors.simulator.audio import load_clips

    clip = load_clips()[0]
    data = np.asarray(clip.samples, dtype="<i2").tobytes()
    out = segment(data)
    assert len(out) == 1
    assert out[0].speech_ms > 4_000
    assert -30 < out[0].level_dbfs < -10
