"""The call tracker's rule: lifecycle, duplicates, disorder, late events, expiry."""

from __future__ import annotations

from pipelines.core import calls
from pipelines.core.calls import Anomaly, CallEnded, CallObservation, CallState

T0 = 1_795_000_000_000


def obs(event_id: str, type_: str, ts: int, **kw: str) -> CallObservation:
    return CallObservation(
        event_id=event_id,
        call_id="c1",
        type=type_,
        ts_ms=T0 + ts,
        direction="inbound",
        department="traffic",
        caller="010-0000-0001",
        callee="2001",
        origin="simulator",
        **kw,
    )


def run(events: list[CallObservation]) -> tuple[CallState, list[calls.Output]]:
    state: CallState | None = None
    out: list[calls.Output] = []
    for i, event in enumerate(events):
        state, produced = calls.step(state, event, now_ms=T0 + 100_000 + i)
        out += produced
    assert state is not None
    return state, out


def test_full_call_emits_one_summary_with_talk_time() -> None:
    state, out = run(
        [
            obs("e1", "call_started", 0),
            obs("e2", "ringing", 100),
            obs("e3", "answered", 5_000),
            obs("e4", "dtmf", 20_000, digit="*", leg="staff"),
            obs("e5", "dtmf", 20_300, digit="9", leg="staff"),
            obs("e6", "hangup", 65_000, hangup_cause="normal"),
        ]
    )
    (summary,) = out
    assert isinstance(summary, CallEnded)
    assert summary.talk_s == 60.0
    assert summary.dtmf_digits == "*9"
    assert summary.events == 6
    assert summary.started_ms == T0 and summary.ended_ms == T0 + 65_000
    assert state.ended


def test_duplicate_events_are_counted_not_applied() -> None:
    state, out = run(
        [
            obs("e1", "call_started", 0),
            obs("e2", "dtmf", 10, digit="1"),
            obs("e2", "dtmf", 10, digit="1"),
            obs("e3", "hangup", 20),
            obs("e3", "hangup", 20),
        ]
    )
    summaries = [o for o in out if isinstance(o, CallEnded)]
    assert len(summaries) == 1
    assert summaries[0].dtmf_digits == "1"
    assert state.duplicate_events == 2
    assert state.events == 3


def test_out_of_order_answer_keeps_earliest_times() -> None:
    _, out = run(
        [
            obs("e1", "call_started", 0),
            obs("e3", "bridged", 3_000),
            obs("e2", "answered", 2_000),
            obs("e4", "hangup", 12_000),
        ]
    )
    (summary,) = out
    assert isinstance(summary, CallEnded)
    assert summary.answered_ms == T0 + 2_000
    assert summary.out_of_order_events == 1
    assert summary.talk_s == 10.0


def test_unanswered_call_has_no_talk_time() -> None:
    _, out = run([obs("e1", "call_started", 0), obs("e2", "hangup", 30_000)])
    (summary,) = out
    assert isinstance(summary, CallEnded)
    assert summary.answered_ms == 0 and summary.talk_s == 0.0


def test_missed_start_is_reported_and_call_still_tracked() -> None:
    state, out = run([obs("e2", "answered", 0), obs("e3", "hangup", 1_000)])
    assert isinstance(out[0], Anomaly) and out[0].kind == "missed_start"
    assert isinstance(out[1], CallEnded)
    assert state.ended


def test_event_after_hangup_never_resummarises() -> None:
    _, out = run(
        [obs("e1", "call_started", 0), obs("e2", "hangup", 1_000), obs("e3", "dtmf", 2_000)]
    )
    assert [type(o) for o in out] == [CallEnded, Anomaly]
    assert isinstance(out[1], Anomaly) and out[1].kind == "event_after_hangup"


def test_expire_closes_stale_call_once_then_forgets_it() -> None:
    state, _ = run([obs("e1", "call_started", 0), obs("e2", "answered", 1_000)])
    limit = 60_000
    same, nothing = calls.expire(state, state.updated_ms + limit - 1, limit)
    assert same == state and nothing == []
    closed, out = calls.expire(state, state.updated_ms + limit, limit)
    assert closed is not None and closed.hangup_cause == "stale"
    assert [type(o) for o in out] == [Anomaly, CallEnded]
    again, out2 = calls.expire(closed, closed.updated_ms + 1, limit)
    assert again == closed and out2 == []
    gone, out3 = calls.expire(closed, closed.updated_ms + limit, limit)
    assert gone is None and out3 == []


def test_state_round_trips_through_dict() -> None:
    state, _ = run([obs("e1", "call_started", 0), obs("e2", "dtmf", 5, digit="#")])
    assert CallState.from_dict(state.to_dict()) == state
