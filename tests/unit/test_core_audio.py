"""The audio sequence tracker: gaps, duplicates, late fills, final and expiry."""

from __future__ import annotations

from pipelines.core import audio
from pipelines.core.audio import ChunkObservation, LegFinished, LegState

T0 = 1_795_000_000_000


def chunk(seq: int, final: bool = False, lost: int = 0) -> ChunkObservation:
    return ChunkObservation(
        call_id="c1",
        leg="caller",
        seq=seq,
        start_ms=T0 + seq * 200,
        duration_ms=200,
        lost_packets=lost,
        final=final,
        origin="simulator",
    )


def feed(seqs: list[int], final_seq: int | None = None) -> tuple[LegState, list[LegFinished]]:
    state: LegState | None = None
    out: list[LegFinished] = []
    for i, seq in enumerate(seqs):
        state, produced = audio.step(state, chunk(seq, final=seq == final_seq), T0 + i)
        out += produced
    assert state is not None
    return state, out


def test_contiguous_leg_has_no_missing_chunks() -> None:
    state, out = feed([0, 1, 2, 3], final_seq=3)
    (done,) = out
    assert (done.chunks, done.missing_chunks, done.duplicate_chunks) == (4, 0, 0)
    assert done.audio_duration_ms == 800
    assert done.first_ms == T0 and done.last_ms == T0 + 800
    assert state.finished


def test_gap_is_reported_as_missing() -> None:
    _, out = feed([0, 1, 4, 5], final_seq=5)
    assert out[0].missing_chunks == 2


def test_late_chunk_fills_its_hole() -> None:
    state, out = feed([0, 2, 3, 1, 4], final_seq=4)
    assert out[0].missing_chunks == 0
    assert state.holes == ()


def test_partial_fill_splits_the_hole() -> None:
    state, _ = feed([0, 6, 3])
    assert state.holes == ((1, 3), (4, 6))
    assert state.missing_chunks == 4


def test_duplicates_are_counted_and_not_added() -> None:
    state, out = feed([0, 1, 1, 0, 2, 2], final_seq=2)
    (done,) = out  # the first seq 2 is final: reported then, with the duplicates so far
    assert done.chunks == 3 and done.duplicate_chunks == 2
    assert state.duplicate_chunks == 3 and state.chunks == 3


def test_final_is_reported_once() -> None:
    state, out = feed([0, 1], final_seq=1)
    state, again = audio.step(state, chunk(1, final=True), T0 + 10)
    assert len(out) == 1 and again == []


def test_packet_loss_is_summed() -> None:
    state: LegState | None = None
    for seq, lost in ((0, 1), (1, 0), (2, 3)):
        state, _ = audio.step(state, chunk(seq, lost=lost), T0)
    assert state is not None and state.lost_packets == 4


def test_expire_reports_unfinished_leg_then_forgets() -> None:
    state, _ = feed([0, 1, 3])
    done, out = audio.expire(state, state.updated_ms + 1000, 1000)
    assert done is not None and out[0].missing_chunks == 1
    gone, nothing = audio.expire(done, done.updated_ms + 1000, 1000)
    assert gone is None and nothing == []


def test_state_round_trips_through_dict() -> None:
    state, _ = feed([0, 3, 5])
    assert LegState.from_dict(state.to_dict()) == state
