"""Speech recognition cost and accuracy on telephone-quality Korean speech, against a baseline.

What runs, in one process and one run:

1. **baseline** — everything the speech side does *except* recognition, on the same audio:
   wire decoding (``pcm_s16le`` or μ-law), the utterance segmenter fed in 200 ms chunks,
   voice cues (loudness, baseline, pitch), the hallucination guard and PII masking
   (``pipelines.core``).  Its real-time factor (RTF = processing seconds ÷ audio seconds) and
   the process's peak RSS before any model is loaded.
2. **faster-whisper base** (int8, CPU, the packaged weights): model load time, then every
   utterance the segmenter produced is transcribed; RTF, peak RSS, and the character error rate
   (CER: edit distance ÷ reference length, spaces and punctuation removed) against the
   Zeroth-Korean transcripts.
3. **non-speech**: 3 s of silence, line noise, hold music and a tone go through segmenter,
   recogniser and guard; the number of transcripts that survive the guard should be 0.

Clips: the three shipped simulator samples (``connectors/simulator/samples``, 8 kHz) and, when
present, the 15 Zeroth-Korean clips in ``../shared/data/korean-speech/zeroth-samples`` (16 kHz
FLAC, resampled to 8 kHz like the simulator does; 10 have transcripts).

Run: ``.venv/bin/python -m bench.asr --help``  (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import resource
import sys
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.simulator.audio import SAMPLES_DIR, Clip, load_clip
from pipelines.core import asr_guard, pii, voice
from pipelines.core.utterances import (
    ULAW_TO_LINEAR,
    Segmenter,
    SegmenterConfig,
    Utterance,
    decode_audio,
)

REPO = Path(__file__).resolve().parents[1]
RATE = 8000
CHUNK_MS = 200


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Sample:
    clip: Clip
    reference: str | None  # Zeroth transcript (spaces at morpheme boundaries) or None
    source: str


def shared_speech_dir() -> Path | None:
    """``zeroth-samples`` from the shared data folder, when this checkout can see it."""
    override = os.environ.get("CALLGUARD_SPEECH_SAMPLES")
    candidates = (
        [Path(override)]
        if override
        else [
            REPO / "shared" / "data" / "korean-speech" / "zeroth-samples",
            REPO.parent / "shared" / "data" / "korean-speech" / "zeroth-samples",
        ]
    )
    return next((p for p in candidates if (p / "samples.tsv").is_file()), None)


def shipped_references() -> dict[str, str]:
    """Transcripts from the table in ``connectors/simulator/samples/README.md``."""
    refs = {}
    for line in (SAMPLES_DIR / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0].endswith(".wav`"):
            refs[cells[0].strip("`").removesuffix(".wav")] = cells[2]
    return refs


def speech_samples(include_shared: bool = True) -> list[Sample]:
    """The shipped clips, then the shared Zeroth clips not already shipped (by utterance id)."""
    refs = shipped_references()
    samples = [
        Sample(load_clip(path), refs.get(path.stem), "shipped")
        for path in sorted(SAMPLES_DIR.glob("*.wav"))
    ]
    shared = shared_speech_dir() if include_shared else None
    if shared is not None:
        seen = {s.clip.name for s in samples}
        with (shared / "samples.tsv").open(encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                if row["utt_id"] in seen:
                    continue
                reference = row["text"] if row.get("has_transcript") == "1" else None
                samples.append(Sample(load_clip(shared / row["path"]), reference, "shared"))
    return samples


def non_speech(seconds: float = 3.0, seed: int = 7) -> dict[str, np.ndarray]:
    """Deterministic int16 8 kHz signals without speech: what a line carries between words."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    rng = np.random.default_rng(seed)

    def at(signal: np.ndarray, dbfs: float) -> np.ndarray:
        rms = float(np.sqrt(np.mean(signal**2))) or 1.0
        return np.clip(signal / rms * 32768 * 10 ** (dbfs / 20), -32768, 32767).astype(np.int16)

    chords = ((261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6))
    music = np.zeros(n)
    for i, chord in enumerate(chords * math.ceil(seconds)):
        start, stop = int(i * RATE), min(n, int((i + 1) * RATE))
        if start >= n:
            break
        seg = t[start:stop]
        envelope = np.minimum(1.0, (seg - seg[0]) * 20) * np.exp(-(seg - seg[0]) * 1.5)
        for f in chord:
            music[start:stop] += envelope * (
                np.sin(2 * np.pi * f * seg) + 0.3 * np.sin(2 * np.pi * 2 * f * seg)
            )
    music *= 1 + 0.2 * np.sin(2 * np.pi * 5 * t)  # tremolo
    return {
        "silence": np.zeros(n, dtype=np.int16),
        "line noise": at(rng.normal(size=n), -55.0),
        "hold music": at(music + 0.01 * rng.normal(size=n), -20.0),
        "tone 425 Hz": at(np.sin(2 * np.pi * 425 * t), -18.0),
    }


def ulaw_encode(samples: np.ndarray) -> bytes:
    """int16 → G.711 μ-law bytes (nearest code; for the telephone-line round trip)."""
    table = np.array(ULAW_TO_LINEAR, dtype=np.int32)
    order = np.argsort(table, kind="stable")
    ordered = table[order]
    x = samples.astype(np.int32)
    idx = np.clip(np.searchsorted(ordered, x), 1, len(ordered) - 1)
    nearer = np.where(np.abs(ordered[idx - 1] - x) <= np.abs(ordered[idx] - x), idx - 1, idx)
    return order[nearer].astype(np.uint8).tobytes()


def wire_bytes(samples: np.ndarray, encoding: str) -> bytes:
    if encoding == "ulaw":
        return ulaw_encode(samples)
    return samples.astype("<i2").tobytes()


# ---------------------------------------------------------------- scoring


_NOT_SCORED = re.compile(r"[\s\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    return _NOT_SCORED.sub("", unicodedata.normalize("NFC", text)).lower()


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(reference: str, hypothesis: str) -> float:
    ref, hyp = normalise(reference), normalise(hypothesis)
    return edit_distance(ref, hyp) / max(1, len(ref))


# ---------------------------------------------------------------- the run


def segment_wire(data: bytes, encoding: str, leg: str = "caller") -> list[Utterance]:
    """Decode and segment like the stream does: 200 ms chunks on the leg's timeline."""
    width = 2 if encoding == "pcm_s16le" else 1
    step = RATE * CHUNK_MS // 1000 * width
    segmenter = Segmenter(leg, SegmenterConfig(sample_rate=RATE))
    out: list[Utterance] = []
    for i, offset in enumerate(range(0, len(data), step)):
        out.extend(segmenter.feed(decode_audio(data[offset : offset + step], encoding), i * 200))
    return out + segmenter.flush()


@dataclass
class ClipResult:
    name: str
    source: str
    audio_s: float
    utterances: int
    asr_s: float = 0.0
    asr_cpu_s: float = 0.0  # CPU time of all threads (less sensitive to a busy machine)
    hypothesis: str = ""
    reference: str | None = None
    cer: float | None = None
    edits: int = 0
    ref_chars: int = 0
    rejected: list[str] = field(default_factory=list)


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs`` 5) so stages are measured apart."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    """Peak RSS since the last reset (VmHWM), else since the process started (ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def baseline_pass(samples: list[Sample], encoding: str, repeat: int = 3) -> float:
    """Seconds for decoding + segmenting + voice cues + guard + masking of every clip (best of)."""
    best = math.inf
    wires = [wire_bytes(s.clip.samples, encoding) for s in samples]
    for _ in range(repeat):
        started = time.perf_counter()
        for sample, data in zip(samples, wires, strict=True):
            baseline: voice.SpeakerBaseline | None = None
            for utterance in segment_wire(data, encoding):
                baseline, _ = voice.step(baseline, utterance.pcm, utterance.sample_rate)
                text = sample.reference or ""
                verdict = asr_guard.check(
                    text, utterance.duration_s, level_dbfs=utterance.level_dbfs
                )
                pii.mask(verdict.text)
        best = min(best, time.perf_counter() - started)
    return best


def asr_pass(
    samples: list[Sample], encoding: str, transcriber: Any
) -> list[ClipResult]:
    results = []
    for sample in samples:
        data = wire_bytes(sample.clip.samples, encoding)
        utterances = segment_wire(data, encoding)
        result = ClipResult(
            name=sample.clip.name,
            source=sample.source,
            audio_s=len(sample.clip.samples) / RATE,
            utterances=len(utterances),
            reference=sample.reference,
        )
        texts = []
        for utterance in utterances:
            started, cpu_started = time.perf_counter(), time.process_time()
            transcript = transcriber.transcribe(utterance.pcm, utterance.sample_rate)
            result.asr_s += time.perf_counter() - started
            result.asr_cpu_s += time.process_time() - cpu_started
            verdict = asr_guard.check(
                transcript.text,
                transcript.duration_s,
                level_dbfs=utterance.level_dbfs,
                avg_logprob=transcript.avg_logprob,
                no_speech_prob=transcript.no_speech_prob,
            )
            if verdict.accepted:
                texts.append(verdict.text)
            else:
                result.rejected.append(f"{verdict.reason}: {transcript.text!r}")
        result.hypothesis = " ".join(texts)
        if sample.reference:
            ref = normalise(sample.reference)
            result.edits = edit_distance(ref, normalise(result.hypothesis))
            result.ref_chars = len(ref)
            result.cer = result.edits / max(1, len(ref))
        results.append(result)
    return results


def non_speech_pass(transcriber: Any) -> dict[str, dict[str, Any]]:
    """Per signal: transcripts of the whole 3 s and of each segment, and what the guard kept."""
    out = {}
    for name, signal in non_speech().items():
        pcm = signal.astype("<i2").tobytes()
        whole = transcriber.transcribe(pcm, RATE)
        level = voice.power_mean_dbfs(voice.speech_levels(pcm, RATE))
        verdicts = [
            (
                whole.text,
                asr_guard.check(
                    whole.text,
                    whole.duration_s,
                    level_dbfs=level,
                    avg_logprob=whole.avg_logprob,
                    no_speech_prob=whole.no_speech_prob,
                ),
            )
        ]
        for utterance in segment_wire(pcm, "pcm_s16le"):
            t = transcriber.transcribe(utterance.pcm, utterance.sample_rate)
            verdicts.append(
                (
                    t.text,
                    asr_guard.check(
                        t.text,
                        t.duration_s,
                        level_dbfs=utterance.level_dbfs,
                        avg_logprob=t.avg_logprob,
                        no_speech_prob=t.no_speech_prob,
                    ),
                )
            )
        out[name] = {
            "raw": [text for text, _ in verdicts],
            "reasons": [v.reason for _, v in verdicts],
            "kept": [v.text for _, v in verdicts if v.accepted],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.asr", description=__doc__.split("\n")[0])
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="CTranslate2 CPU threads (0=auto)")
    parser.add_argument("--encoding", choices=("pcm_s16le", "ulaw"), default="pcm_s16le")
    parser.add_argument("--no-shared", action="store_true", help="only the shipped clips")
    parser.add_argument("--model-path", type=Path, default=None, help="default: packaged base")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args(argv)

    samples = speech_samples(include_shared=not args.no_shared)
    audio_s = sum(len(s.clip.samples) for s in samples) / RATE
    print(f"command: {' '.join(sys.argv)}")
    print(
        f"{len(samples)} clips, {audio_s:.1f} s of 8 kHz speech ({args.encoding}); "
        f"{os.cpu_count()} CPUs"
    )

    # loading the clips (resampling 16 kHz FLAC) is not part of either measurement
    separate = reset_peak_rss()
    base_s = baseline_pass(samples, args.encoding)
    rss_before = peak_rss_mib()
    print(
        f"baseline (decode+segment+voice+guard+mask): {base_s:.3f} s, RTF {base_s / audio_s:.4f}; "
        f"peak RSS {rss_before:.0f} MiB" + ("" if separate else " (since start)")
    )
    reset_peak_rss()

    from connectors.asr import load_transcriber

    started = time.perf_counter()
    transcriber = load_transcriber(
        "faster-whisper",
        args.model_path,
        beam_size=args.beam_size,
        cpu_threads=args.threads,
    )
    load_s = time.perf_counter() - started
    rss_loaded = current_rss_mib()
    print(f"faster-whisper base loaded in {load_s:.1f} s; RSS {rss_loaded:.0f} MiB")

    results = asr_pass(samples, args.encoding, transcriber)
    asr_s = sum(r.asr_s for r in results)
    asr_cpu_s = sum(r.asr_cpu_s for r in results)
    print()
    print(f"{'clip':<14} {'src':<7} {'audio s':>7} {'utts':>4} {'asr s':>6} {'RTF':>5} {'CER':>5}")
    for r in results:
        cer_text = f"{r.cer:.3f}" if r.cer is not None else "  -  "
        print(
            f"{r.name:<14} {r.source:<7} {r.audio_s:7.2f} {r.utterances:4d} {r.asr_s:6.2f} "
            f"{r.asr_s / r.audio_s:5.2f} {cer_text:>5}"
        )
        if r.rejected:
            print(f"    rejected by the guard: {r.rejected}")
    scored = [r for r in results if r.cer is not None]
    total_cer = sum(r.edits for r in scored) / max(1, sum(r.ref_chars for r in scored))
    shipped = [r for r in scored if r.source == "shipped"]
    shipped_cer = sum(r.edits for r in shipped) / max(1, sum(r.ref_chars for r in shipped))
    worst = max((r.cer or 0.0 for r in scored), default=0.0)
    peak = peak_rss_mib()

    nonspeech = non_speech_pass(transcriber)
    kept = sum(len(v["kept"]) for v in nonspeech.values())
    print()
    for name, v in nonspeech.items():
        print(f"non-speech {name:<12} raw {v['raw']} → {v['reasons']} kept {v['kept']}")

    print()
    print(f"audio {audio_s:.1f} s | ASR {asr_s:.1f} s | RTF {asr_s / audio_s:.3f} (beam "
          f"{args.beam_size}; CPU {asr_cpu_s / audio_s:.3f} core-s per audio s) | baseline RTF "
          f"{base_s / audio_s:.4f} | ASR/baseline {asr_s / max(base_s, 1e-9):.0f}x")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs (a busy machine inflates the RTF)")
    print(f"CER {total_cer:.3f} over {len(scored)} clips (shipped {shipped_cer:.3f}, worst clip "
          f"{worst:.3f})")
    print(f"peak RSS with the model {peak:.0f} MiB (+{peak - rss_before:.0f} MiB over the "
          f"baseline's {rss_before:.0f} MiB); model load {load_s:.1f} s; non-speech transcripts "
          f"kept by the guard: {kept}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "clips": [asdict(r) for r in results],
                    "audio_s": audio_s,
                    "asr_s": asr_s,
                    "asr_cpu_s": asr_cpu_s,
                    "rtf": asr_s / audio_s,
                    "baseline_s": base_s,
                    "baseline_rtf": base_s / audio_s,
                    "cer": total_cer,
                    "shipped_cer": shipped_cer,
                    "peak_rss_mib": peak,
                    "rss_before_model_mib": rss_before,
                    "load_s": load_s,
                    "non_speech": nonspeech,
                    "beam_size": args.beam_size,
                    "encoding": args.encoding,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
