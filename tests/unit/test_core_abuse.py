"""The abuse response rule: warn once, then end; evidence; staff dismissal; exactly-once ids."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.abuse.policy import DEFAULT_FILE, load_policy_book, policy_book
from pipelines.core import abuse as core

BOOK = core.PolicyBook(
    default=core.Policy(warn_window_s=60.0, hangup_safety_s=10.0),
    departments={"welfare": core.Policy(threshold=0.8), "off": core.Policy(enabled=False)},
)
T0 = 1_700_000_000_000


def event(n: int, type_: str, at: int = T0, **kw: Any) -> core.CallSeen:
    return core.CallSeen(
        event_id=f"e{n}",
        call_id="c1",
        type=type_,
        ts_ms=at,
        department=kw.pop("dept", "traffic"),
        **kw,
    )


def said(n: int, category: str = "profanity", score: float = 0.9, **kw: Any) -> core.UtteranceSeen:
    values: dict[str, Any] = {
        "utterance_id": f"u{n}",
        "call_id": "c1",
        "leg": "caller",
        "start_ms": T0 + n * 1000,
        "end_ms": T0 + n * 1000 + 800,
        "category": category,
        "score": score,
        "excerpt": "[masked]",
        "model_version": "m1",
    }
    values.update(kw)
    return core.UtteranceSeen(**values)


def run(
    observations: list[tuple[core.Observation, int]],
    state: core.AbuseState | None = None,
    book: core.PolicyBook = BOOK,
) -> tuple[core.AbuseState | None, list[core.Output]]:
    out: list[core.Output] = []
    for obs, now in observations:
        state, more = core.step(state, obs, now, book)
        out += more
    return state, out


def kinds(out: list[core.Output]) -> list[str]:
    return [o.action if isinstance(o, core.IncidentFound) else o.kind for o in out]


def started() -> list[tuple[core.Observation, int]]:
    return [(event(1, "call_started"), T0), (event(2, "answered"), T0 + 1000)]


def test_first_detection_warns_and_alerts_second_within_window_ends() -> None:
    state, out = run([*started(), (said(1), T0 + 5000)])
    assert kinds(out) == ["warn", "warn", "alert"]
    warn = next(o for o in out if isinstance(o, core.Warn))
    assert warn.command_id == core.command_id("c1", "warn-1")
    incident = out[0]
    assert isinstance(incident, core.IncidentFound) and incident.category == "profanity"
    assert incident.department == "traffic" and incident.evidence == "[masked]"
    state, out = run([(said(2, "threat", 0.95), T0 + 30_000)], state)
    assert kinds(out) == ["end", "terminate", "alert"]
    assert state is not None and state.terminate_ms == T0 + 30_000


def test_second_detection_after_the_window_is_a_new_warning() -> None:
    state, _ = run([*started(), (said(1), T0 + 5000)])
    state, out = run([(said(2), T0 + 5000 + 61_000)], state)
    assert kinds(out) == ["warn", "warn", "alert"]
    warn = next(o for o in out if isinstance(o, core.Warn))
    assert warn.number == 2 and warn.command_id == core.command_id("c1", "warn-2")


def test_below_threshold_is_logged_as_evidence_and_clean_is_ignored() -> None:
    _, out = run([*started(), (said(1, score=0.5), T0 + 5000), (said(2, "clean", 0.99), T0 + 6000)])
    assert kinds(out) == ["log"]
    _, out = run([*started(), (said(1, score=0.2), T0 + 5000)])
    assert out == []


def test_shouting_alone_never_acts_but_raises_a_text_score_that_counts() -> None:
    _, out = run([*started(), (said(1, "clean", 0.1, shouting=True, excess_db=15.0), T0 + 5000)])
    assert kinds(out) == ["log"]
    assert isinstance(out[0], core.IncidentFound) and out[0].category == "shouting"
    # 0.55 alone is below 0.6; shouting adds 0.1 → a detection
    _, out = run([*started(), (said(1, score=0.55, shouting=True), T0 + 5000)])
    assert kinds(out)[:2] == ["warn", "warn"]
    incident = out[0]
    assert isinstance(incident, core.IncidentFound)
    assert incident.score == pytest.approx(0.65) and incident.text_score == 0.55


def test_staff_speech_is_not_judged_by_default() -> None:
    _, out = run([*started(), (said(1, leg="staff"), T0 + 5000)])
    assert out == []


def test_department_threshold_applies() -> None:
    obs = [(event(1, "call_started", dept="welfare"), T0), (said(1, score=0.75), T0 + 5000)]
    assert kinds(run(obs)[1]) == ["log"]
    obs = [(event(1, "call_started", dept="off"), T0), (said(1, score=0.99), T0 + 5000)]
    assert run(obs)[1] == []


def test_department_learned_after_an_early_utterance() -> None:
    state, out = run([(said(1, score=0.75), T0), (event(1, "call_started", dept="welfare"), T0)])
    assert state is not None and state.department == "welfare" and state.policy.threshold == 0.8
    # until the department is known the default policy (threshold 0.6) applied
    assert kinds(out) == ["warn", "warn", "alert"]


def test_staff_dismissal_withdraws_the_warning() -> None:
    state, _ = run([*started(), (said(1), T0 + 5000)])
    state, out = run(
        [
            (event(3, "dtmf", T0 + 6000, leg="staff", digit="*"), T0 + 6000),
            (event(4, "dtmf", T0 + 6500, leg="staff", digit="7"), T0 + 6500),
        ],
        state,
    )
    assert kinds(out) == ["dismissed"]
    dismissed = out[0]
    assert isinstance(dismissed, core.Dismissed) and dismissed.actor == "staff"
    assert dismissed.incident_id == core.incident_id("c1", "u1")
    # the next detection is a (second) warning, not the end of the call
    state, out = run([(said(2), T0 + 10_000)], state)
    assert kinds(out) == ["warn", "warn", "alert"]


def test_caller_keys_and_slow_keys_do_not_dismiss() -> None:
    state, _ = run([*started(), (said(1), T0 + 5000)])
    _, out = run(
        [
            (event(3, "dtmf", T0 + 6000, leg="caller", digit="*"), T0 + 6000),
            (event(4, "dtmf", T0 + 6100, leg="caller", digit="7"), T0 + 6100),
            (event(5, "dtmf", T0 + 7000, leg="staff", digit="*"), T0 + 7000),
            (event(6, "dtmf", T0 + 17_000, leg="staff", digit="7"), T0 + 17_000),
        ],
        state,
    )
    assert out == []


def test_duplicate_utterances_and_events_change_nothing() -> None:
    state, out1 = run([*started(), (said(1), T0 + 5000)])
    state, out2 = run([(said(1), T0 + 6000), (event(2, "answered"), T0 + 6000)], state)
    assert kinds(out1) == ["warn", "warn", "alert"] and out2 == []


def test_hangup_after_the_announcement_finished_once() -> None:
    state, _ = run([*started(), (said(1), T0 + 5000), (said(2), T0 + 8000)])
    terminate_id = core.command_id("c1", "terminate")
    result = core.ResultSeen("c1", terminate_id, "play", "applied", T0 + 12_000)
    state, out = run([(result, T0 + 12_000), (result, T0 + 12_500)], state)
    assert kinds(out) == ["hangup"]
    assert isinstance(out[0], core.AbuseDecision)
    assert out[0].command_id == core.command_id("c1", "hangup")
    # the safety timer has nothing left to do
    assert state is not None and core.due(state, T0 + 100_000)[1] == []


def test_safety_timer_hangs_up_when_the_result_never_comes() -> None:
    state, _ = run([*started(), (said(1), T0 + 5000), (said(2), T0 + 8000)])
    assert state is not None
    assert core.next_deadline(state) == T0 + 8000 + 10_000
    assert core.due(state, T0 + 17_000)[1] == []
    state, out = core.due(state, T0 + 18_000)
    assert kinds(out) == ["hangup"]
    assert core.next_deadline(state) is None


def test_detections_while_ending_and_after_hangup_are_only_evidence() -> None:
    state, _ = run([*started(), (said(1), T0 + 5000), (said(2), T0 + 8000)])
    state, out = run([(said(3), T0 + 9000)], state)
    assert kinds(out) == ["log"]
    state, out = run([(event(9, "hangup", T0 + 9500), T0 + 9500), (said(4), T0 + 9600)], state)
    assert kinds(out) == ["log"]  # transcribed after the hangup: evidence, no action
    assert state is not None and core.expire(state, T0 + 9600 + 3600_000, 3600_000) is None


def test_replay_yields_the_same_ids() -> None:
    _, first = run([*started(), (said(1), T0 + 5000), (said(2), T0 + 8000)])
    _, again = run([*started(), (said(1), T0 + 5100), (said(2), T0 + 8100)])
    ids = [(o.incident_id if isinstance(o, core.IncidentFound) else o.command_id) for o in first]
    ids2 = [(o.incident_id if isinstance(o, core.IncidentFound) else o.command_id) for o in again]
    assert ids == ids2


def test_state_round_trips_through_dicts() -> None:
    state, _ = run([*started(), (said(1), T0 + 5000)])
    assert state is not None
    assert core.AbuseState.from_dict(state.to_dict()) == state


def test_policy_file_loads_and_rejects_mistakes() -> None:
    book = load_policy_book(DEFAULT_FILE)
    assert book.for_department("welfare").threshold == 0.7
    assert book.for_department("nowhere") == book.default
    with pytest.raises(ValueError, match="unknown key"):
        policy_book({"defaults": {"treshold": 0.5}})
    with pytest.raises(ValueError, match="categories"):
        policy_book({"defaults": {"categories": ["rudeness"]}})
    with pytest.raises(ValueError, match="log_threshold"):
        policy_book({"departments": {"x": {"threshold": 0.3, "log_threshold": 0.5}}})
