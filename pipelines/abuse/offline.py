"""The abuse detection on a recording file: the live stream's steps, without Kafka.

The file is cut into the chunks the PBX connector would send (one leg), run through the same
segmenter, ASR, guard, masking, classifier and voice cues as the live stream, and the resulting
utterances through the same response policy, so ``callguard analyze call.wav`` shows what the
live system would have done: which utterances, which scores, warning, termination.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.abuse import wire
from pipelines.abuse.analysis import LegSegmenters, UtteranceAnalyzer
from pipelines.core import abuse as core
from schemas.records import AudioChunk, Transcript

TELEPHONE_RATE = 8000
CHUNK_MS = 200


def file_chunks(
    path: Path, call_id: str, leg: str = "caller", start_ms: int = 0
) -> Iterator[AudioChunk]:
    """A WAV/FLAC file as telephone-rate 16-bit PCM chunks (mono, resampled), last one final."""
    from connectors.simulator.audio import load_clip

    pcm = load_clip(path).samples
    rate = TELEPHONE_RATE
    step = rate * CHUNK_MS // 1000
    parts = [pcm[i : i + step] for i in range(0, len(pcm), step)] or [pcm[:0]]
    for seq, part in enumerate(parts):
        yield AudioChunk(
            call_id=call_id,
            leg=leg,
            seq=seq,
            start_ms=start_ms + seq * CHUNK_MS,
            duration_ms=len(part) * 1000 // rate,
            sample_rate=rate,
            encoding="pcm_s16le",
            channels=1,
            payload_b64=base64.b64encode(part.astype("<i2").tobytes()).decode(),
            final=seq == len(parts) - 1,
            origin="simulator",
        )


@dataclass
class OfflineResult:
    transcripts: list[Transcript] = field(default_factory=list)
    outputs: list[core.Output] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # guard reason → utterances

    @property
    def incidents(self) -> list[core.IncidentFound]:
        return [o for o in self.outputs if isinstance(o, core.IncidentFound)]

    @property
    def actions(self) -> list[str]:
        return [o.kind for o in self.outputs if isinstance(o, core.AbuseDecision)]


def transcribe_file(
    path: Path,
    analyzer: UtteranceAnalyzer,
    *,
    leg: str = "caller",
    progress: Callable[[int, int], None] | None = None,
) -> list[Transcript]:
    call_id = f"file-{path.stem}"
    chunks = list(file_chunks(path, call_id, leg))
    segmenters = LegSegmenters(legs=(leg,))
    out: list[Transcript] = []
    for n, chunk in enumerate(chunks, 1):
        for utterance in segmenters.feed(chunk):
            transcript = analyzer.analyze(utterance)
            if transcript is not None:
                out.append(transcript)
        if progress is not None:
            progress(n, len(chunks))
    return out


def analyze_file(
    path: Path,
    analyzer: UtteranceAnalyzer,
    book: core.PolicyBook,
    *,
    department: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> OfflineResult:
    """Transcripts of the caller leg and what the response policy would have done."""
    result = OfflineResult()
    result.transcripts = transcribe_file(path, analyzer, progress=progress)
    result.dropped = dict(analyzer.rejected)
    call_id = f"file-{path.stem}"
    state, outs = core.step(
        None, core.CallSeen("start", call_id, "call_started", 0, department), 0, book
    )
    result.outputs += outs
    for transcript in result.transcripts:
        now = transcript.end_ms
        state, outs = core.step(state, wire.utterance_seen(transcript), now, book)
        result.outputs += outs
        if state is not None and state.terminate_ms and not state.hangup_ms:
            # offline the announcement "finishes" at once: the hangup follows
            done = core.ResultSeen(
                call_id, core.command_id(call_id, "terminate"), "play", "applied", now
            )
            state, outs = core.step(state, done, now, book)
            result.outputs += outs
    return result
