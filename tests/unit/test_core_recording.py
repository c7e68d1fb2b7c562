"""Recording assembly (pure core): ordering, duplicates, gaps reported and filled, the
key-press window, completeness against the CDR, and the per-call tracking state."""

from __future__ import annotations

import json
import struct

import pytest

from pipelines.core import consent
from pipelines.core import recording as core
from tests.samples import T0

RATE = 8000
MS = 200  # chunk length
BOOK = consent.PolicyBook(
    default=consent.RecordingPolicy(),
    departments={
        "traffic": consent.RecordingPolicy(mode="full", retention_days=30),
        "welfare": consent.RecordingPolicy(mode="key_press"),
        "tax": consent.RecordingPolicy(mode="off"),
    }
)
TIMING = core.Timing(idle_timeout_ms=60_000, hangup_grace_ms=5_000, spool_keep_ms=30_000)


def pcm(seq: int, ms: int = MS) -> bytes:
    """A chunk whose every sample is its sequence number + 1 (so order is visible)."""
    return struct.pack(f"<{ms * RATE // 1000}h", *([seq + 1] * (ms * RATE // 1000)))


def piece(seq: int, *, start: int | None = None, lost: int = 0, ms: int = MS) -> core.Piece:
    return core.Piece(seq, T0 + seq * MS if start is None else start, ms, lost, pcm(seq, ms))


def samples(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 2}h", data))


def test_in_order_chunks_assemble_byte_exact_without_gaps() -> None:
    out = core.assemble(piece(i) for i in range(10))
    assert out.pcm == b"".join(pcm(i) for i in range(10))
    assert (out.duration_ms, out.started_ms, out.chunk_count) == (2000, T0, 10)
    assert out.gaps == () and out.gap_duration_ms == 0 and out.audio_ms == 2000


def test_out_of_order_and_duplicated_chunks_are_sorted_and_dropped() -> None:
    order = [0, 2, 1, 1, 3, 0, 4, 4, 4]
    out = core.assemble(piece(i) for i in order)
    assert out.pcm == b"".join(pcm(i) for i in range(5))
    assert out.duplicate_chunks == 4 and out.chunk_count == 5 and out.gaps == ()


def test_missing_chunks_are_filled_with_silence_and_reported() -> None:
    out = core.assemble(piece(i) for i in (0, 1, 4, 5, 9))
    per = MS * RATE // 1000
    values = samples(out.pcm)
    assert len(values) == 10 * per  # wall-clock length kept
    assert values[2 * per : 4 * per] == [0] * (2 * per)  # seq 2, 3: silence, not papered over
    assert values[4 * per] == 5  # seq 4 where it belongs
    assert [g.as_list() for g in out.gaps] == [
        [400, 400, 400, "missing", 2],
        [1200, 600, 600, "missing", 3],
    ]
    assert (out.missing_chunks, out.gap_duration_ms, out.audio_ms) == (5, 1000, 1000)
    assert json.loads(out.gaps_json()) == [g.as_list() for g in out.gaps]


def test_lost_packets_inside_a_chunk_are_reported_where_they_are() -> None:
    out = core.assemble([piece(0), piece(1, lost=3), piece(2)])
    (gap,) = out.gaps
    assert (gap.kind, gap.offset_ms, gap.span_ms, gap.missing_ms, gap.count) == (
        "lost",
        200,
        200,
        60,
        3,
    )
    assert out.lost_packets == 3 and out.duration_ms == 600 and out.audio_ms == 540


def test_a_timeline_jump_is_kept_as_reported_silence() -> None:
    # the connector restarts its timeline after RTP paused: seq is contiguous, time jumped
    out = core.assemble([piece(0), piece(1), piece(2, start=T0 + 400 + 1_500)])
    (gap,) = out.gaps
    assert (gap.kind, gap.offset_ms, gap.missing_ms) == ("timeline", 400, 1_500)
    assert out.duration_ms == 600 + 1_500
    # small jitter is not a gap
    assert core.assemble([piece(0), piece(1, start=T0 + MS + 30)]).gaps == ()


def test_leading_chunks_missing_in_full_mode() -> None:
    out = core.assemble(piece(i) for i in (3, 4))
    (gap,) = out.gaps
    assert (gap.kind, gap.offset_ms, gap.span_ms, gap.count) == ("missing", 0, 600, 3)
    assert out.started_ms == T0 and out.duration_ms == 1000


def test_key_press_window_keeps_audio_from_the_key_on() -> None:
    window = T0 + 500  # in the middle of chunk 2
    out = core.assemble((piece(i) for i in range(6)), window_start_ms=window)
    per_ms = RATE // 1000
    assert out.started_ms == window and out.duration_ms == 700
    values = samples(out.pcm)
    assert values[: 100 * per_ms] == [3] * (100 * per_ms)  # the rest of chunk 2
    assert out.gaps == () and out.chunk_count == 4
    assert core.assemble((piece(i) for i in range(3)), window_start_ms=T0 + 10_000).pcm == b""


def test_nothing_to_assemble() -> None:
    out = core.assemble([])
    assert out.pcm == b"" and out.duration_ms == 0 and out.gaps == ()


def test_completeness_against_the_cdr() -> None:
    ok = core.completeness(59_500, billsec_s=60.0, answer_ms=T0, end_ms=T0 + 60_000)
    assert (ok.expected_ms, ok.shortfall_ms, ok.short) == (60_000, 500, False)
    short = core.completeness(50_000, billsec_s=60.0, answer_ms=T0, end_ms=T0 + 60_000)
    assert (short.shortfall_ms, short.short) == (10_000, True)
    longer = core.completeness(61_000, billsec_s=60.0, answer_ms=T0, end_ms=T0 + 60_000)
    assert longer.shortfall_ms == 0 and not longer.short
    keyed = core.completeness(
        20_000, billsec_s=60.0, answer_ms=T0, end_ms=T0 + 60_000, window_start_ms=T0 + 40_000
    )
    assert (keyed.expected_ms, keyed.short) == (20_000, False)


# --- tracking ----------------------------------------------------------------------------------


def chunk(seq: int, leg: str = "caller", final: bool = False, offset: int = -1) -> core.ChunkSeen:
    return core.ChunkSeen("c-1", leg, seq, T0 + seq * MS, MS, 0, final, offset, "simulator")


def feed(
    state: core.RecordingState | None, c: core.ChunkSeen, now: int
) -> tuple[core.RecordingState, str]:
    state, verdict = core.on_chunk(state, c, now)
    if verdict == core.APPEND:
        track = state.leg(c.leg)
        assert track is not None
        state, _ = core.appended(state, c, track.spool_bytes + 100)
    return state, verdict


def test_chunk_verdicts_offsets_and_spool_length() -> None:
    state, verdicts = None, []
    for c in [chunk(0, offset=10), chunk(1, offset=12), chunk(1, offset=13), chunk(3, offset=15)]:
        state, verdict = feed(state, c, T0)
        verdicts.append(verdict)
    state, late_fill = feed(state, chunk(2, offset=17), T0)
    assert verdicts == ["append", "append", "duplicate", "append"] and late_fill == "append"
    assert state is not None
    track = state.leg("caller")
    assert track is not None
    assert (track.chunks, track.duplicate_chunks, track.spool_bytes) == (4, 1, 400)
    assert (track.first_offset, track.last_offset, track.holes) == (10, 17, ())


def test_first_audio_is_signalled_once() -> None:
    state, _ = core.on_chunk(None, chunk(0), T0)
    state, first = core.appended(state, chunk(0), 100)
    state, _ = core.on_chunk(state, chunk(1), T0)
    state, again = core.appended(state, chunk(1), 200)
    assert first and not again


def test_legs_finish_on_final_chunk_hangup_grace_or_idle() -> None:
    state = core.on_call(
        None, core.CallSeen("c-1", "call_started", T0, "traffic", "inbound"), T0, BOOK
    )
    state, _ = feed(state, chunk(0, "caller"), T0)
    state, _ = feed(state, chunk(1, "caller", final=True), T0 + 1)
    state, _ = feed(state, chunk(0, "staff"), T0 + 2)
    assert core.ready(state, T0 + 3, TIMING) == [("caller", "final_chunk")]
    hung = core.on_call(state, core.CallSeen("c-1", "hangup", T0 + 10, "traffic"), T0 + 10, BOOK)
    assert core.ready(hung, T0 + 10 + 4_999, TIMING) == [("caller", "final_chunk")]
    assert core.ready(hung, T0 + 10 + 5_000, TIMING) == [
        ("caller", "final_chunk"),
        ("staff", "hangup"),
    ]
    assert ("staff", "idle") in core.ready(state, T0 + 2 + 60_000, TIMING)


def test_finish_plan_by_mode() -> None:
    def plan(department: str, window: int = 0) -> core.FinishPlan:
        state = core.on_call(
            None, core.CallSeen("c-1", "call_started", T0, department, "inbound"), T0, BOOK
        )
        state, _ = feed(state, chunk(0), T0)
        if window:
            state = core.on_window(state, core.WindowSeen("c-1", window), T0)
        return core.finish_plan(state, "caller", "final_chunk", BOOK)

    full = plan("traffic")
    assert full.store and full.mode == "full" and full.window_start_ms == 0
    assert full.retention_ms == 30 * 86_400_000
    assert not plan("welfare").store  # key press never pressed: nothing is kept
    keyed = plan("welfare", window=T0 + 100)
    assert keyed.store and keyed.window_start_ms == T0 + 100
    # a department that records nothing: chunks are not even spooled
    off = core.on_call(None, core.CallSeen("c-1", "call_started", T0, "tax", "inbound"), T0, BOOK)
    off, verdict = core.on_chunk(off, chunk(0), T0)
    assert verdict == "skip" and not core.finish_plan(off, "caller", "idle", BOOK).store
    # no call event yet: the default (off here) decides
    unknown, _ = feed(None, chunk(0), T0)
    assert not core.finish_plan(unknown, "caller", "idle", BOOK).store


def stored(audio_ms: int = 9_800, gaps: int = 0) -> core.StoredLeg:
    return core.StoredLeg(
        started_ms=T0,
        duration_ms=10_000,
        audio_ms=audio_ms,
        sample_rate=RATE,
        chunk_count=50,
        duplicate_chunks=0,
        missing_chunks=1 if gaps else 0,
        lost_packets=0,
        gap_count=gaps,
        gap_duration_ms=10_000 - audio_ms if gaps else 0,
        gaps="[]",
        sha256="ab" * 32,
        key_id="k-1",
        path="file:///x",
        size_bytes=160_100,
        format="wav",
        retention_until_ms=T0 + 86_400_000,
        stored_ms=T0 + 20_000,
    )


def test_rows_before_and_after_the_cdr_and_the_shortfall_alert() -> None:
    state = core.on_call(
        None, core.CallSeen("c-1", "call_started", T0, "traffic", "inbound"), T0, BOOK
    )
    state, _ = feed(state, chunk(0), T0)
    state, out = core.leg_finished(state, "caller", "final_chunk", stored(), T0 + 20_000, BOOK)
    (row,) = out
    assert isinstance(row, core.RecordingRow) and row.completeness is None
    assert row.ts_ms == T0 + 20_000 and row.mode == "full"
    cdr = core.CdrSeen(
        "c-1", billsec_s=10.0, answer_ms=T0, end_ms=T0 + 10_000, disposition="ANSWERED"
    )
    state, out = core.on_cdr(state, cdr, T0 + 25_000, BOOK)
    (row,) = out
    assert isinstance(row, core.RecordingRow) and row.completeness is not None
    assert (row.completeness.shortfall_ms, row.completeness.short) == (200, False)
    assert row.ts_ms == T0 + 25_000  # a later version replaces the first downstream

    short = core.on_cdr(None, cdr, T0, BOOK)[0]
    short = core.on_call(
        short, core.CallSeen("c-1", "call_started", T0, "traffic", "inbound"), T0, BOOK
    )
    short, _ = feed(short, chunk(0), T0)
    short, out = core.leg_finished(short, "caller", "hangup", stored(6_000, gaps=2), T0 + 1, BOOK)
    kinds = [o.kind if isinstance(o, core.RecordingDecision) else "row" for o in out]
    assert kinds == ["row", "recording_shortfall", "recording_gaps"]
    alert = out[1]
    assert isinstance(alert, core.RecordingDecision) and alert.attrs["shortfall_ms"] == "4000"
    # repeated (a replay, a corrected CDR): rows again, decisions not
    short, out = core.on_cdr(short, cdr, T0 + 2, BOOK)
    assert [type(o).__name__ for o in out] == ["RecordingRow"]


def test_late_chunks_after_finishing_are_reported_once_and_duplicates_are_not() -> None:
    state, _ = feed(None, chunk(0), T0)
    state, _ = feed(state, chunk(1, final=True), T0)
    state, _ = core.leg_finished(state, "caller", "final_chunk", stored(), T0, BOOK)
    state, verdict = core.on_chunk(state, chunk(1, final=True), T0 + 1)
    assert verdict == "duplicate"
    state, verdict = core.on_chunk(state, chunk(2), T0 + 2)
    assert verdict == "late"
    state, out = core.late_chunk_report(state, "caller", T0 + 2)
    assert [o.kind for o in out if isinstance(o, core.RecordingDecision)] == [
        "recording_late_chunks"
    ]
    state, _ = core.on_chunk(state, chunk(3), T0 + 3)
    assert core.late_chunk_report(state, "caller", T0 + 3)[1] == []


def test_spools_are_deleted_after_the_keep_time_then_the_state_expires() -> None:
    state, _ = feed(None, chunk(0, final=True), T0)
    state, _ = core.leg_finished(state, "caller", "final_chunk", None, T0, BOOK)
    assert core.spools_to_delete(state, T0 + 29_999, TIMING) == []
    assert core.spools_to_delete(state, T0 + 30_000, TIMING) == ["caller"]
    state = core.spool_deleted(state, "caller")
    assert core.expire(state, T0 + 60_000, TIMING) is state
    assert core.expire(state, T0 + TIMING.linger_ms, TIMING) is None


def test_state_round_trip_and_unchanged_call_events_write_nothing() -> None:
    state = core.on_call(
        None, core.CallSeen("c-1", "call_started", T0, "traffic", "inbound"), T0, BOOK
    )
    state, _ = feed(state, chunk(0), T0)
    state, _ = feed(state, chunk(2), T0)
    state, _ = core.leg_finished(state, "caller", "final_chunk", stored(), T0, BOOK)
    state = core.on_window(state, core.WindowSeen("c-1", T0 + 5), T0)
    state = core.on_cdr(state, core.CdrSeen("c-1", 1.0, T0, T0 + 1000, "ANSWERED"), T0, BOOK)[0]
    assert core.RecordingState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    same = core.on_call(state, core.CallSeen("c-1", "dtmf", T0 + 9, "traffic"), T0 + 9, BOOK)
    assert same is state


def test_recording_ids_are_deterministic_per_call_and_leg() -> None:
    assert core.recording_id("c-1", "caller") == core.recording_id("c-1", "caller")
    assert core.recording_id("c-1", "caller") != core.recording_id("c-1", "staff")


def test_a_sample_rate_change_within_a_leg_is_refused() -> None:
    state, _ = feed(None, chunk(0), T0)
    with pytest.raises(ValueError, match="sample rate"):
        core.on_chunk(state, chunk(1), T0, sample_rate=16000)
