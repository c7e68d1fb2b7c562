"""Audio sequence tracker: per call leg, counts chunks, duplicates and missing sequence numbers.

Missing chunks are kept as ranges of sequence numbers ("holes") so a long call with one lost
chunk costs one range, not a set of every number received.  A hole filled later by an
out-of-order chunk is closed; what is still open when the leg ends is reported as missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any


@dataclass(frozen=True)
class ChunkObservation:
    call_id: str
    leg: str
    seq: int
    start_ms: int
    duration_ms: int
    lost_packets: int
    final: bool
    origin: str


@dataclass(frozen=True)
class LegState:
    call_id: str
    leg: str
    origin: str = ""
    max_seq: int = -1
    holes: tuple[tuple[int, int], ...] = field(default=())  # [start, end) ranges
    chunks: int = 0
    duplicate_chunks: int = 0
    lost_packets: int = 0
    audio_duration_ms: int = 0
    first_ms: int = 0
    last_ms: int = 0
    finished: bool = False
    updated_ms: int = 0

    @property
    def missing_chunks(self) -> int:
        return sum(end - start for start, end in self.holes)

    def to_dict(self) -> dict[str, Any]:
        # shallow on purpose: asdict() deep-copies, and this runs for every event
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["holes"] = [list(h) for h in self.holes]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LegState:
        return cls(**{**data, "holes": tuple(tuple(h) for h in data.get("holes", ()))})


@dataclass(frozen=True)
class LegFinished:
    call_id: str
    leg: str
    chunks: int
    duplicate_chunks: int
    missing_chunks: int
    lost_packets: int
    audio_duration_ms: int
    first_ms: int
    last_ms: int
    origin: str


def _fill(holes: tuple[tuple[int, int], ...], seq: int) -> tuple[tuple[int, int], ...] | None:
    """Holes with ``seq`` removed, or None when ``seq`` was in no hole (a duplicate)."""
    for i, (start, end) in enumerate(holes):
        if start <= seq < end:
            pieces = tuple(p for p in ((start, seq), (seq + 1, end)) if p[0] < p[1])
            return holes[:i] + pieces + holes[i + 1 :]
    return None


def finished(state: LegState) -> LegFinished:
    return LegFinished(
        call_id=state.call_id,
        leg=state.leg,
        chunks=state.chunks,
        duplicate_chunks=state.duplicate_chunks,
        missing_chunks=state.missing_chunks,
        lost_packets=state.lost_packets,
        audio_duration_ms=state.audio_duration_ms,
        first_ms=state.first_ms,
        last_ms=state.last_ms,
        origin=state.origin,
    )


def step(
    state: LegState | None, chunk: ChunkObservation, now_ms: int
) -> tuple[LegState, list[LegFinished]]:
    if state is None:
        state = LegState(call_id=chunk.call_id, leg=chunk.leg, origin=chunk.origin)
    if chunk.seq > state.max_seq:
        holes = state.holes
        if chunk.seq > state.max_seq + 1:
            holes = (*holes, (state.max_seq + 1, chunk.seq))
        max_seq = chunk.seq
    else:
        filled = _fill(state.holes, chunk.seq)
        if filled is None:
            return replace(
                state, duplicate_chunks=state.duplicate_chunks + 1, updated_ms=now_ms
            ), []
        holes, max_seq = filled, state.max_seq
    new = replace(
        state,
        max_seq=max_seq,
        holes=holes,
        chunks=state.chunks + 1,
        lost_packets=state.lost_packets + chunk.lost_packets,
        audio_duration_ms=state.audio_duration_ms + chunk.duration_ms,
        first_ms=chunk.start_ms if state.first_ms == 0 else min(state.first_ms, chunk.start_ms),
        last_ms=max(state.last_ms, chunk.start_ms + chunk.duration_ms),
        updated_ms=now_ms,
    )
    if chunk.final and not state.finished:
        new = replace(new, finished=True)
        return new, [finished(new)]
    return new, []


def expire(
    state: LegState, now_ms: int, idle_limit_ms: int
) -> tuple[LegState | None, list[LegFinished]]:
    """A leg whose final chunk never came is reported after ``idle_limit_ms``; then forgotten."""
    if now_ms - state.updated_ms < idle_limit_ms:
        return state, []
    if state.finished:
        return None, []
    done = replace(state, finished=True, updated_ms=now_ms)
    return done, [finished(done)]
