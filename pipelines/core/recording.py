"""Recording assembly: per call and leg, audio chunks → one continuous recording, with every
gap reported.

Two halves, both pure (standard library only, time passed in):

* **Tracking** (:class:`RecordingState`, small enough for a changelog-backed table).  Each
  chunk is judged once: ``append`` (new sequence number: the stream appends its payload to the
  leg's spool file), ``duplicate`` (sequence number seen before), ``late`` (the leg was already
  finished and stored), ``skip`` (the department does not record).  The state remembers the
  spool file's committed length and the Kafka offsets of the leg's first and last chunk, so a
  worker that died mid-call can cut an uncommitted tail off the spool, or rebuild a lost spool
  from the audio topic.  A leg finishes on its final chunk, ``hangup_grace`` after the call's
  hangup, or after ``idle_timeout`` without a chunk.
* **Assembly** (:func:`assemble`): the spooled pieces ordered by sequence number, duplicates
  dropped, and every gap filled with silence *and reported* — missing sequence ranges, packets
  the connector counted as lost inside a chunk (already silent in the payload), and jumps of
  the media timeline.  Nothing is papered over: the recording keeps wall-clock length and the
  report says exactly which stretches are not real audio.

When the CDR arrives, :func:`completeness` compares the recorded audio with the talk time.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from pipelines.core.consent import PolicyBook, RecordingPolicy

STREAM = "recording"
LEGS = ("caller", "staff")
_ID_NS = uuid.UUID("5d3c1f0a-7e2b-4b8e-a1c4-9f6d2e8b7a31")

APPEND, DUPLICATE, LATE, SKIP = "append", "duplicate", "late", "skip"
#: gaps listed one by one in a row at most (the counts and totals always cover all of them)
GAPS_LISTED = 200

# decision kinds
RECORDING_GAPS = "recording_gaps"
RECORDING_SHORTFALL = "recording_shortfall"
LATE_CHUNKS = "recording_late_chunks"


@dataclass(frozen=True)
class Timing:
    idle_timeout_ms: int = 120_000  # a leg without chunks for this long is finished
    hangup_grace_ms: int = 5_000  # final chunks follow the hangup event (another topic)
    spool_keep_ms: int = 30_000  # keep a stored leg's spool until its state is surely committed
    linger_ms: int = 600_000  # keep a finished call's state for a late CDR and late chunks


def recording_id(call_id: str, leg: str) -> str:
    """Deterministic, so every version of a recording's row replaces the previous one."""
    return str(uuid.uuid5(_ID_NS, f"{call_id}/{leg}"))


# ---------------------------------------------------------------------------------------------
# observations


@dataclass(frozen=True)
class ChunkSeen:
    call_id: str
    leg: str
    seq: int
    start_ms: int
    duration_ms: int
    lost_packets: int
    final: bool
    offset: int = -1  # Kafka offset of the chunk in its partition
    origin: str = ""


@dataclass(frozen=True)
class CallSeen:
    call_id: str
    type: str
    ts_ms: int
    department: str = ""
    direction: str = ""


@dataclass(frozen=True)
class WindowSeen:
    """Key-press mode: the consent check opened the recording window here (PBX clock)."""

    call_id: str
    start_ms: int


@dataclass(frozen=True)
class CdrSeen:
    call_id: str
    billsec_s: float
    answer_ms: int
    end_ms: int
    disposition: str


# ---------------------------------------------------------------------------------------------
# assembly


@dataclass(frozen=True)
class Piece:
    """One spooled chunk: 16-bit little-endian mono PCM."""

    seq: int
    start_ms: int
    duration_ms: int
    lost_packets: int
    pcm: bytes


@dataclass(frozen=True)
class Gap:
    """A stretch of the recording that is not (all) real audio.

    ``offset_ms``/``span_ms`` locate it in the recording; ``missing_ms`` is how much audio is
    missing there (for ``lost`` packets somewhere inside a chunk it is less than the span).
    """

    kind: str  # missing (sequence numbers) | lost (packets inside a chunk) | timeline (jump)
    offset_ms: int
    span_ms: int
    missing_ms: int
    count: int  # chunks (missing), packets (lost), 0 (timeline)

    def as_list(self) -> list[Any]:
        return [self.offset_ms, self.span_ms, self.missing_ms, self.kind, self.count]


@dataclass(frozen=True)
class Assembled:
    pcm: bytes
    sample_rate: int
    started_ms: int  # wall time of the first sample
    duration_ms: int
    chunk_count: int
    duplicate_chunks: int
    missing_chunks: int
    lost_packets: int
    gaps: tuple[Gap, ...]

    @property
    def gap_duration_ms(self) -> int:
        return sum(g.missing_ms for g in self.gaps)

    @property
    def audio_ms(self) -> int:
        """Real audio: the length minus what the gaps are missing."""
        return max(self.duration_ms - self.gap_duration_ms, 0)

    def gaps_json(self) -> str:
        return json.dumps([g.as_list() for g in self.gaps[:GAPS_LISTED]], separators=(",", ":"))


def _ms_to_bytes(ms: int, sample_rate: int) -> int:
    return ms * sample_rate // 1000 * 2


def assemble(
    pieces: Iterable[Piece],
    *,
    sample_rate: int = 8000,
    window_start_ms: int = 0,
    packet_ms: int = 20,
    timeline_tolerance_ms: int = 100,
) -> Assembled:
    """Order by sequence number, drop duplicates, fill and report gaps (see module doc).

    ``window_start_ms`` (key-press mode) drops audio before that moment.  A leading gap is
    reported when the first piece is not sequence number 0 (full mode only: with a window the
    pieces before it are left out on purpose).
    """
    by_seq: dict[int, Piece] = {}
    duplicates = 0
    for piece in pieces:
        if piece.seq in by_seq:
            duplicates += 1
        else:
            by_seq[piece.seq] = piece
    ordered = [by_seq[s] for s in sorted(by_seq)]
    if window_start_ms:
        kept = []
        for piece in ordered:
            end = piece.start_ms + piece.duration_ms
            if end <= window_start_ms:
                continue
            if piece.start_ms < window_start_ms:  # straddles the window start: cut its head
                cut = _ms_to_bytes(window_start_ms - piece.start_ms, sample_rate)
                piece = replace(
                    piece,
                    start_ms=window_start_ms,
                    duration_ms=end - window_start_ms,
                    pcm=piece.pcm[cut:],
                    lost_packets=0,
                )
            kept.append(piece)
        ordered = kept
    if not ordered:
        return Assembled(b"", sample_rate, window_start_ms, 0, 0, duplicates, 0, 0, ())

    out = bytearray()
    gaps: list[Gap] = []
    missing_chunks = 0
    lost_packets = 0
    first = ordered[0]
    started_ms = first.start_ms
    if not window_start_ms and first.seq > 0:
        # the first chunks never came: their length is the first chunk's (chunks are fixed)
        span = first.seq * max(first.duration_ms, 1)
        started_ms -= span
        out += bytes(_ms_to_bytes(span, sample_rate))
        gaps.append(Gap("missing", 0, span, span, first.seq))
        missing_chunks += first.seq
    previous: Piece | None = None
    for piece in ordered:
        offset_ms = len(out) * 1000 // (2 * sample_rate)
        if previous is not None:
            expected = previous.start_ms + previous.duration_ms
            jump = piece.start_ms - expected
            absent = piece.seq - previous.seq - 1
            if absent > 0:
                # the media timeline says how long they were; a restarted timeline cannot, so
                # fall back to the chunk length
                span = jump if jump > 0 else absent * max(previous.duration_ms, 1)
                out += bytes(_ms_to_bytes(span, sample_rate))
                gaps.append(Gap("missing", offset_ms, span, span, absent))
                missing_chunks += absent
            elif jump > timeline_tolerance_ms:
                out += bytes(_ms_to_bytes(jump, sample_rate))
                gaps.append(Gap("timeline", offset_ms, jump, jump, 0))
            offset_ms = len(out) * 1000 // (2 * sample_rate)
        if piece.lost_packets:
            lost_ms = min(piece.lost_packets * packet_ms, piece.duration_ms)
            gaps.append(Gap("lost", offset_ms, piece.duration_ms, lost_ms, piece.lost_packets))
            lost_packets += piece.lost_packets
        out += piece.pcm[: len(piece.pcm) - len(piece.pcm) % 2]
        previous = piece
    return Assembled(
        pcm=bytes(out),
        sample_rate=sample_rate,
        started_ms=started_ms,
        duration_ms=len(out) * 1000 // (2 * sample_rate),
        chunk_count=len(ordered),
        duplicate_chunks=duplicates,
        missing_chunks=missing_chunks,
        lost_packets=lost_packets,
        gaps=tuple(gaps),
    )


# ---------------------------------------------------------------------------------------------
# completeness


@dataclass(frozen=True)
class Completeness:
    cdr_billsec_s: float
    expected_ms: int
    shortfall_ms: int
    short: bool


def completeness(
    audio_ms: int,
    *,
    billsec_s: float,
    answer_ms: int,
    end_ms: int,
    window_start_ms: int = 0,
    tolerance_ms: int = 2000,
) -> Completeness:
    """Recorded audio (gaps excluded) against the CDR's talk time.

    Full mode expects the whole talk time (``billsec``); with a key-press window, the time from
    the window to the end of the call.
    """
    expected = round(billsec_s * 1000)
    if window_start_ms and end_ms:
        expected = max(min(expected, end_ms - max(window_start_ms, answer_ms)), 0)
    shortfall = max(expected - audio_ms, 0)
    return Completeness(billsec_s, expected, shortfall, shortfall > tolerance_ms)


# ---------------------------------------------------------------------------------------------
# tracking state


@dataclass(frozen=True)
class StoredLeg:
    """What was stored for a leg (the row, less what the CDR adds)."""

    started_ms: int
    duration_ms: int
    audio_ms: int
    sample_rate: int
    chunk_count: int
    duplicate_chunks: int
    missing_chunks: int
    lost_packets: int
    gap_count: int
    gap_duration_ms: int
    gaps: str
    sha256: str
    key_id: str
    path: str
    size_bytes: int
    format: str
    retention_until_ms: int
    stored_ms: int  # worker time the file was written (the row's ts_ms)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class LegTrack:
    leg: str
    sample_rate: int = 0
    max_seq: int = -1
    holes: tuple[tuple[int, int], ...] = ()  # [start, end) sequence ranges not seen
    chunks: int = 0  # appended to the spool
    duplicate_chunks: int = 0
    late_chunks: int = 0  # arrived after the leg was finished
    spool_bytes: int = 0  # committed length of the spool file
    first_offset: int = -1  # Kafka offsets of the first and last appended chunk
    last_offset: int = -1
    first_audio_ms: int = 0  # start of the first chunk with audio in it
    final_seen: bool = False
    last_chunk_ms: int = 0  # worker clock
    finished_ms: int = 0  # worker clock; 0 = still recording
    finish_reason: str = ""
    spool_deleted: bool = False
    stored: StoredLeg | None = None  # None after finishing: nothing to store

    @property
    def finished(self) -> bool:
        return self.finished_ms > 0

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["holes"] = [list(h) for h in self.holes]
        data["stored"] = self.stored.to_dict() if self.stored else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LegTrack:
        stored = data.get("stored")
        return cls(
            **{
                **data,
                "holes": tuple((int(a), int(b)) for a, b in data.get("holes", ())),
                "stored": StoredLeg(**stored) if stored else None,
            }
        )


@dataclass(frozen=True)
class CdrFacts:
    billsec_s: float
    answer_ms: int
    end_ms: int
    disposition: str


@dataclass(frozen=True)
class RecordingState:
    call_id: str
    department: str = ""
    direction: str = ""
    mode: str = ""  # "" until a call event says which department
    origin: str = ""
    window_start_ms: int = 0
    hangup_seen_ms: int = 0  # worker clock
    legs: tuple[LegTrack, ...] = ()
    cdr: CdrFacts | None = None
    issued: tuple[str, ...] = ()
    updated_ms: int = 0

    def leg(self, name: str) -> LegTrack | None:
        return next((t for t in self.legs if t.leg == name), None)

    def with_leg(self, track: LegTrack) -> RecordingState:
        others = tuple(t for t in self.legs if t.leg != track.leg)
        return replace(self, legs=tuple(sorted((*others, track), key=lambda t: t.leg)))

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["legs"] = [t.to_dict() for t in self.legs]
        data["cdr"] = None if self.cdr is None else self.cdr.__dict__.copy()
        data["issued"] = list(self.issued)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordingState:
        cdr = data.get("cdr")
        return cls(
            **{
                **data,
                "legs": tuple(LegTrack.from_dict(t) for t in data.get("legs", ())),
                "cdr": CdrFacts(**cdr) if cdr else None,
                "issued": tuple(data.get("issued", ())),
            }
        )


# ---------------------------------------------------------------------------------------------
# outputs


@dataclass(frozen=True)
class RecordingRow:
    """A version of a leg's row (stored, or completed with the CDR)."""

    call_id: str
    leg: str
    department: str
    mode: str
    origin: str
    finish_reason: str
    stored: StoredLeg
    completeness: Completeness | None
    ts_ms: int


@dataclass(frozen=True)
class RecordingDecision:
    call_id: str
    department: str
    kind: str
    reason: str
    at_ms: int
    leg: str = ""
    attrs: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.leg}" if self.leg else self.kind


Output = RecordingRow | RecordingDecision


@dataclass(frozen=True)
class FinishPlan:
    """What the stream needs to finish a leg: which spool, what to keep, how long to keep it."""

    call_id: str
    leg: str
    reason: str
    store: bool  # False: the department does not record (the spool is just deleted)
    mode: str
    window_start_ms: int
    spool_bytes: int
    first_offset: int
    last_offset: int
    sample_rate: int
    retention_ms: int
    duplicate_chunks: int = 0  # dropped before the spool (the spool has each chunk once)


# ---------------------------------------------------------------------------------------------
# transitions


def _policy(state: RecordingState, book: PolicyBook) -> RecordingPolicy:
    return book.for_department(state.department) if state.department else book.default


def effective_mode(state: RecordingState, book: PolicyBook) -> str:
    """The mode to act on: the department's, or the default's while no call event came."""
    if state.mode:
        return state.mode
    default = book.default
    return default.mode_for(state.direction or "inbound")


def _fill(holes: tuple[tuple[int, int], ...], seq: int) -> tuple[tuple[int, int], ...] | None:
    """Holes with ``seq`` removed, or None when ``seq`` was in no hole (a duplicate)."""
    for i, (start, end) in enumerate(holes):
        if start <= seq < end:
            pieces = tuple(p for p in ((start, seq), (seq + 1, end)) if p[0] < p[1])
            return holes[:i] + pieces + holes[i + 1 :]
    return None


def on_chunk(
    state: RecordingState | None, chunk: ChunkSeen, now_ms: int, sample_rate: int = 8000
) -> tuple[RecordingState, str]:
    """Judge one chunk: ``append`` (then call :func:`appended`), ``duplicate``, ``late`` or
    ``skip``.  A final chunk marks the leg ready to finish even when it is a duplicate."""
    if state is None:
        state = RecordingState(call_id=chunk.call_id, origin=chunk.origin)
    track = state.leg(chunk.leg) or LegTrack(leg=chunk.leg, sample_rate=sample_rate)
    if track.finished:
        known = chunk.seq <= track.max_seq and _fill(track.holes, chunk.seq) is None
        if known:  # a repeat of a chunk the file already has
            track = replace(track, duplicate_chunks=track.duplicate_chunks + 1)
            return replace(state.with_leg(track), updated_ms=now_ms), DUPLICATE
        track = replace(track, late_chunks=track.late_chunks + 1)
        return replace(state.with_leg(track), updated_ms=now_ms), LATE
    if state.mode == "off":
        track = replace(track, last_chunk_ms=now_ms, final_seen=track.final_seen or chunk.final)
        return replace(state.with_leg(track), updated_ms=now_ms), SKIP
    if chunk.seq > track.max_seq:
        holes = track.holes
        if chunk.seq > track.max_seq + 1:
            holes = (*holes, (track.max_seq + 1, chunk.seq))
        track = replace(track, max_seq=chunk.seq, holes=holes)
        verdict = APPEND
    else:
        filled = _fill(track.holes, chunk.seq)
        if filled is None:
            track = replace(track, duplicate_chunks=track.duplicate_chunks + 1)
            verdict = DUPLICATE
        else:
            track = replace(track, holes=filled)
            verdict = APPEND
    if track.sample_rate and sample_rate != track.sample_rate and verdict == APPEND:
        raise ValueError("sample rate changed within a leg")
    track = replace(track, last_chunk_ms=now_ms, final_seen=track.final_seen or chunk.final)
    return replace(state.with_leg(track), updated_ms=now_ms), verdict


def appended(
    state: RecordingState, chunk: ChunkSeen, spool_bytes: int
) -> tuple[RecordingState, bool]:
    """The chunk's payload is in the spool, which is now ``spool_bytes`` long.  Returns the new
    state and whether this was the leg's first audio (for the consent check)."""
    track = state.leg(chunk.leg)
    assert track is not None, "appended() before on_chunk()"
    first_audio = not track.first_audio_ms and chunk.duration_ms > 0
    track = replace(
        track,
        chunks=track.chunks + 1,
        spool_bytes=spool_bytes,
        first_offset=track.first_offset if track.first_offset >= 0 else chunk.offset,
        last_offset=max(track.last_offset, chunk.offset),
        first_audio_ms=chunk.start_ms if first_audio else track.first_audio_ms,
    )
    return state.with_leg(track), first_audio


def spool_length(state: RecordingState, leg: str, spool_bytes: int) -> RecordingState:
    """The spool grew by a record the state already counted (a repeat kept in the spool)."""
    track = state.leg(leg)
    if track is None:
        return state
    return state.with_leg(replace(track, spool_bytes=spool_bytes))


def on_call(
    state: RecordingState | None, obs: CallSeen, now_ms: int, book: PolicyBook
) -> RecordingState:
    """Department (hence mode) from the first call event; the hangup.  Returns the very same
    object when nothing changed, so the stream writes the table only when it must."""
    if state is None:
        state = RecordingState(call_id=obs.call_id, updated_ms=now_ms)
    changed = state
    if not state.department and obs.department:
        direction = obs.direction or state.direction
        mode = book.for_department(obs.department).mode_for(direction)
        changed = replace(changed, department=obs.department, direction=direction, mode=mode)
    if obs.type == "hangup" and not state.hangup_seen_ms:
        changed = replace(changed, hangup_seen_ms=now_ms)
    return state if changed is state else replace(changed, updated_ms=now_ms)


def on_window(state: RecordingState | None, obs: WindowSeen, now_ms: int) -> RecordingState:
    if state is None:
        state = RecordingState(call_id=obs.call_id)
    if state.window_start_ms:
        return state
    return replace(state, window_start_ms=obs.start_ms, updated_ms=now_ms)


def ready(state: RecordingState, now_ms: int, timing: Timing) -> list[tuple[str, str]]:
    """Legs to finish now, with why: final chunk, the hangup's grace is over, or idle."""
    out = []
    for track in state.legs:
        if track.finished:
            continue
        if track.final_seen:
            out.append((track.leg, "final_chunk"))
        elif state.hangup_seen_ms and now_ms - state.hangup_seen_ms >= timing.hangup_grace_ms:
            out.append((track.leg, "hangup"))
        elif now_ms - track.last_chunk_ms >= timing.idle_timeout_ms:
            out.append((track.leg, "idle"))
    return out


def finish_plan(
    state: RecordingState, leg: str, reason: str, book: PolicyBook, sample_rate: int = 8000
) -> FinishPlan:
    track = state.leg(leg) or LegTrack(leg=leg)
    mode = effective_mode(state, book)
    keep = mode == "full" or (mode == "key_press" and state.window_start_ms > 0)
    return FinishPlan(
        call_id=state.call_id,
        leg=leg,
        reason=reason,
        store=keep and track.chunks > 0,
        mode=mode,
        window_start_ms=state.window_start_ms if mode == "key_press" else 0,
        spool_bytes=track.spool_bytes,
        first_offset=track.first_offset,
        last_offset=track.last_offset,
        sample_rate=track.sample_rate or sample_rate,
        retention_ms=_policy(state, book).retention_ms,
        duplicate_chunks=track.duplicate_chunks,
    )


def stored_leg(
    assembled: Assembled,
    *,
    sha256: str,
    key_id: str,
    path: str,
    size_bytes: int,
    fmt: str,
    retention_ms: int,
    now_ms: int,
    dropped_duplicates: int = 0,
) -> StoredLeg:
    """``dropped_duplicates``: repeats the stream already dropped before spooling."""
    return StoredLeg(
        started_ms=assembled.started_ms,
        duration_ms=assembled.duration_ms,
        audio_ms=assembled.audio_ms,
        sample_rate=assembled.sample_rate,
        chunk_count=assembled.chunk_count,
        duplicate_chunks=assembled.duplicate_chunks + dropped_duplicates,
        missing_chunks=assembled.missing_chunks,
        lost_packets=assembled.lost_packets,
        gap_count=len(assembled.gaps),
        gap_duration_ms=assembled.gap_duration_ms,
        gaps=assembled.gaps_json(),
        sha256=sha256,
        key_id=key_id,
        path=path,
        size_bytes=size_bytes,
        format=fmt,
        retention_until_ms=assembled.started_ms + retention_ms,
        stored_ms=now_ms,
    )


def _issue(
    state: RecordingState, decision: RecordingDecision
) -> tuple[RecordingState, list[Output]]:
    if decision.key in state.issued:
        return state, []
    return replace(state, issued=(*state.issued, decision.key)), [decision]


def _completeness(state: RecordingState, track: LegTrack, book: PolicyBook) -> Completeness | None:
    if state.cdr is None or track.stored is None:
        return None
    return completeness(
        track.stored.audio_ms,
        billsec_s=state.cdr.billsec_s,
        answer_ms=state.cdr.answer_ms,
        end_ms=state.cdr.end_ms,
        window_start_ms=state.window_start_ms if state.mode == "key_press" else 0,
        tolerance_ms=int(_policy(state, book).completeness_tolerance_s * 1000),
    )


def _row_outputs(
    state: RecordingState, track: LegTrack, now_ms: int, book: PolicyBook
) -> tuple[RecordingState, list[Output]]:
    """The leg's row (with the CDR comparison when known) and the shortfall decision."""
    if track.stored is None:
        return state, []
    check = _completeness(state, track, book)
    out: list[Output] = [
        RecordingRow(
            call_id=state.call_id,
            leg=track.leg,
            department=state.department,
            mode=effective_mode(state, book),
            origin=state.origin,
            finish_reason=track.finish_reason,
            stored=track.stored,
            completeness=check,
            ts_ms=track.stored.stored_ms if check is None else max(now_ms, track.stored.stored_ms),
        )
    ]
    if check is not None and check.short:
        state, more = _issue(
            state,
            RecordingDecision(
                call_id=state.call_id,
                department=state.department,
                kind=RECORDING_SHORTFALL,
                reason=(
                    f"{track.leg} recording holds {track.stored.audio_ms / 1000:.1f} s of audio, "
                    f"talk time {check.expected_ms / 1000:.1f} s: "
                    f"{check.shortfall_ms / 1000:.1f} s short"
                ),
                at_ms=now_ms,
                leg=track.leg,
                attrs={
                    "severity": "alert",
                    "shortfall_ms": str(check.shortfall_ms),
                    "expected_ms": str(check.expected_ms),
                    "audio_ms": str(track.stored.audio_ms),
                },
            ),
        )
        out += more
    return state, out


def leg_finished(
    state: RecordingState,
    leg: str,
    reason: str,
    stored: StoredLeg | None,
    now_ms: int,
    book: PolicyBook,
) -> tuple[RecordingState, list[Output]]:
    """The stream finished a leg (stored it, or had nothing to store)."""
    track = state.leg(leg) or LegTrack(leg=leg)
    if track.finished:
        return state, []
    track = replace(track, finished_ms=now_ms, finish_reason=reason, stored=stored)
    state = replace(state.with_leg(track), updated_ms=now_ms)
    out: list[Output] = []
    if stored is not None and stored.gap_count:
        state, more = _issue(
            state,
            RecordingDecision(
                call_id=state.call_id,
                department=state.department,
                kind=RECORDING_GAPS,
                reason=(
                    f"{leg} recording has {stored.gap_count} gap(s), "
                    f"{stored.gap_duration_ms / 1000:.1f} s of audio missing "
                    f"({stored.missing_chunks} chunk(s), {stored.lost_packets} packet(s) lost)"
                ),
                at_ms=now_ms,
                leg=leg,
                attrs={
                    "gap_count": str(stored.gap_count),
                    "gap_duration_ms": str(stored.gap_duration_ms),
                },
            ),
        )
        out += more
    state, rows = _row_outputs(state, track, now_ms, book)
    return state, rows + out


def on_cdr(
    state: RecordingState | None, obs: CdrSeen, now_ms: int, book: PolicyBook
) -> tuple[RecordingState, list[Output]]:
    """The CDR: every stored leg's row again, now with the talk-time comparison."""
    if state is None:
        state = RecordingState(call_id=obs.call_id)
    state = replace(
        state,
        cdr=CdrFacts(obs.billsec_s, obs.answer_ms, obs.end_ms, obs.disposition),
        updated_ms=now_ms,
    )
    out: list[Output] = []
    for track in state.legs:
        if track.finished:
            state, more = _row_outputs(state, track, now_ms, book)
            out += more
    return state, out


def late_chunk_report(
    state: RecordingState, leg: str, now_ms: int
) -> tuple[RecordingState, list[Output]]:
    """Chunks that came after the leg was stored are not in the file: say so (once)."""
    track = state.leg(leg)
    if track is None or not track.late_chunks:
        return state, []
    return _issue(
        state,
        RecordingDecision(
            call_id=state.call_id,
            department=state.department,
            kind=LATE_CHUNKS,
            reason=f"{leg} audio arrived after the recording was stored; it is not in the file",
            at_ms=now_ms,
            leg=leg,
        ),
    )


def spools_to_delete(state: RecordingState, now_ms: int, timing: Timing) -> list[str]:
    return [
        t.leg
        for t in state.legs
        if t.finished and not t.spool_deleted and now_ms - t.finished_ms >= timing.spool_keep_ms
    ]


def spool_deleted(state: RecordingState, leg: str) -> RecordingState:
    track = state.leg(leg)
    if track is None:
        return state
    return state.with_leg(replace(track, spool_deleted=True))


def expire(state: RecordingState, now_ms: int, timing: Timing) -> RecordingState | None:
    """Forget a call whose legs are all finished and whose spools are gone, once it has been
    quiet for ``linger_ms`` (late CDRs and chunks are still recognised until then)."""
    done = all(t.finished and t.spool_deleted for t in state.legs)
    if done and now_ms - state.updated_ms >= timing.linger_ms:
        return None
    return state
