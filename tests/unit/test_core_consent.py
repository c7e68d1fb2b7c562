"""The recording-consent check (pure core): notice before bridge, recording from the start,
key-press recording, and nothing for departments that do not record."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.core import consent as core
from pipelines.recording.policy import load_recording_book, policy_book, rollout_warnings
from tests.samples import T0

S = 1000
BOOK = core.PolicyBook(
    default=core.RecordingPolicy(),
    departments={
        "traffic": core.RecordingPolicy(mode="full"),
        "welfare": core.RecordingPolicy(mode="key_press", record_key="*1"),
        "tax": core.RecordingPolicy(mode="off"),
    },
)


class Call:
    """Feeds one call's observations through ``step`` like the stream does."""

    def __init__(self, department: str = "traffic", direction: str = "inbound") -> None:
        self.department = department
        self.direction = direction
        self.state: core.ConsentState | None = None
        self.n = 0
        self.decisions: list[core.ConsentDecision] = []

    def event(self, type_: str, at: int, now: int | None = None, **kw: Any) -> Call:
        self.n += 1
        obs = core.CallSeen(
            event_id=kw.pop("event_id", f"e{self.n}"),
            call_id="c-1",
            type=type_,
            ts_ms=at,
            department=self.department,
            direction=self.direction,
            **kw,
        )
        self.state, out = core.step(self.state, obs, at if now is None else now, BOOK)
        self.decisions += out
        return self

    def audio(self, leg: str, start: int, now: int | None = None) -> Call:
        obs = core.AudioSeen("c-1", leg, start)
        self.state, out = core.step(self.state, obs, start if now is None else now, BOOK)
        self.decisions += out
        return self

    def tick(self, now: int) -> Call:
        assert self.state is not None
        self.state, out = core.due(self.state, now)
        self.decisions += out
        return self

    def notice(self, start: int, end: int, media: str = "consent-notice", **kw: Any) -> Call:
        self.event("notice_started", start, notice=media)
        return self.event("notice_finished", end, notice=media, **kw)

    @property
    def kinds(self) -> list[str]:
        return [d.key for d in self.decisions]


def test_notice_before_bridge_and_prompt_audio_is_compliant() -> None:
    call = Call().event("call_started", T0).notice(T0 + 100, T0 + 6_900)
    call.event("ringing", T0 + 6_950).event("answered", T0 + 9 * S).event("bridged", T0 + 9 * S)
    call.audio("caller", T0 + 9 * S + 300).audio("staff", T0 + 9 * S + 320)
    call.tick(T0 + 60 * S).event("hangup", T0 + 70 * S).tick(T0 + 80 * S)
    assert call.decisions == []


def test_bridged_without_the_notice_is_a_violation_with_an_alert() -> None:
    call = Call().event("call_started", T0).event("answered", T0 + S).event("bridged", T0 + S)
    (decision,) = call.decisions
    assert decision.kind == "consent_missing" and decision.violation
    assert decision.attrs["severity"] == "alert" and decision.department == "traffic"
    assert "without the consent notice" in decision.reason
    call.event("bridged", T0 + 2 * S)  # a second bridge event (e.g. re-bridged) repeats nothing
    assert len(call.decisions) == 1


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda c: c.event("notice_started", T0 + 100, notice="consent-notice"), "still playing"),
        (lambda c: c.notice(T0 + 100, T0 + 200, status="failed"), "did not play to the end"),
        (lambda c: c.notice(T0 + 100, T0 + 200, media="timeout-notice"), "without the consent"),
    ],
    ids=["unfinished", "failed", "other notice"],
)
def test_only_a_completed_consent_notice_counts(setup: Any, expected: str) -> None:
    call = Call().event("call_started", T0)
    setup(call)
    call.event("bridged", T0 + 5 * S)
    assert call.kinds == ["consent_missing"] and expected in call.decisions[0].reason


def test_notice_finishing_after_the_bridge_is_a_violation() -> None:
    call = Call().event("call_started", T0).event("notice_started", T0 + 1, notice="consent-notice")
    call.event("bridged", T0 + 2 * S)
    call.event("notice_finished", T0 + 3 * S, notice="consent-notice")
    assert call.kinds == ["consent_missing"]


def test_late_recording_per_leg_whichever_arrives_first() -> None:
    call = Call().event("call_started", T0).notice(T0, T0 + 5 * S).event("bridged", T0 + 6 * S)
    call.audio("caller", T0 + 6 * S + 1_900)  # within 2 s
    call.audio("staff", T0 + 6 * S + 4_500)  # late
    assert call.kinds == ["recording_late/staff"]
    assert call.decisions[0].attrs["late_ms"] == "4500"
    # audio seen before the bridge event (topics interleave): judged when the bridge arrives
    early = Call().event("call_started", T0).notice(T0, T0 + 5 * S)
    early.audio("caller", T0 + 10 * S)
    assert early.decisions == []
    early.event("bridged", T0 + 6 * S)
    assert early.kinds == ["recording_late/caller"]


def test_missing_audio_is_reported_after_the_deadline_or_the_hangup() -> None:
    call = Call().event("call_started", T0).notice(T0, T0 + 5 * S).event("bridged", T0 + 6 * S)
    call.audio("caller", T0 + 6_200)
    call.tick(T0 + 35 * S)  # 29 s after the bridge: not yet
    assert call.decisions == []
    call.tick(T0 + 36 * S)
    assert call.kinds == ["recording_missing/staff"]
    call.tick(T0 + 90 * S)
    assert call.kinds == ["recording_missing/staff"]  # once
    short = Call().event("call_started", T0).notice(T0, T0 + 5 * S).event("bridged", T0 + 6 * S)
    short.event("hangup", T0 + 8 * S).tick(T0 + 12 * S)
    assert short.decisions == []  # final chunks may still come
    short.tick(T0 + 13 * S)
    assert sorted(short.kinds) == ["recording_missing/caller", "recording_missing/staff"]


def test_key_press_department_starts_recording_on_the_staff_key() -> None:
    call = Call("welfare").event("call_started", T0).event("bridged", T0 + 5 * S)
    call.event("dtmf", T0 + 30 * S, leg="caller", digit="*")  # the caller's keys do nothing
    call.event("dtmf", T0 + 30 * S + 100, leg="caller", digit="1")
    call.event("dtmf", T0 + 40 * S, leg="staff", digit="*")
    call.event("dtmf", T0 + 45 * S, leg="staff", digit="1")  # too slow: a new sequence
    assert call.decisions == []
    call.event("dtmf", T0 + 50 * S, leg="staff", digit="*")
    call.event("dtmf", T0 + 50 * S + 400, leg="staff", digit="1", now=T0 + 51 * S)
    (start,) = call.decisions
    assert start.kind == "start_recording" and start.actor == "staff" and not start.violation
    assert start.window_start_ms == T0 + 50 * S + 400  # the key's own time, not the worker's
    call.event("dtmf", T0 + 60 * S, leg="staff", digit="*")
    call.event("dtmf", T0 + 60 * S + 200, leg="staff", digit="1")
    assert len(call.decisions) == 1
    # no notice, no audio checks in key-press mode
    call.tick(T0 + 600 * S)
    assert len(call.decisions) == 1


def test_off_departments_and_outbound_calls_keep_no_state() -> None:
    call = Call("tax").event("call_started", T0).event("bridged", T0 + S)
    assert call.state is None and call.decisions == []
    outbound = Call("traffic", direction="outbound").event("call_started", T0)
    outbound.event("bridged", T0 + S)
    assert outbound.state is None and outbound.decisions == []


def test_duplicate_events_and_state_round_trip() -> None:
    call = Call().event("call_started", T0, event_id="a").notice(T0, T0 + S)
    call.event("bridged", T0 + 2 * S, event_id="b").event("bridged", T0 + 2 * S, event_id="b")
    assert call.state is not None
    data = call.state.to_dict()
    assert core.ConsentState.from_dict(data) == call.state
    broken = Call().event("call_started", T0, event_id="x").event("bridged", T0, event_id="y")
    broken.event("bridged", T0, event_id="y")
    assert broken.kinds == ["consent_missing"]


def test_expiry() -> None:
    call = Call().event("call_started", T0).event("hangup", T0 + S)
    assert call.state is not None
    assert core.expire(call.state, T0 + 5 * S, 4 * 3600 * S) is call.state
    assert core.expire(call.state, T0 + 70 * S, 4 * 3600 * S) is None
    quiet = Call().event("call_started", T0)
    assert (
        quiet.state is not None
        and core.expire(quiet.state, T0 + 4 * 3600 * S, 4 * 3600 * S) is None
    )


def test_policy_file_defaults_overrides_and_errors() -> None:
    book = load_recording_book()
    assert book.for_department("traffic").mode == "full"
    assert book.for_department("welfare").mode == "key_press"
    assert book.for_department("nowhere").mode == "off"
    assert book.for_department("traffic").consent_notice == "consent-notice"
    with pytest.raises(ValueError, match="unknown key"):
        policy_book({"departments": {"traffic": {"mod": "full"}}})
    with pytest.raises(ValueError, match="mode must be"):
        policy_book({"defaults": {"mode": "sometimes"}})
    with pytest.raises(ValueError, match="retention_days"):
        policy_book({"defaults": {"retention_days": 0}})


def test_shipped_rollout_matches_the_department_directory() -> None:
    """Every ``full`` department's PBX notices include its consent notice."""
    from pipelines.departments import load_directory

    directory = load_directory()
    assert rollout_warnings(load_recording_book(None, directory), directory) == []
    wrong = policy_book({"departments": {"welfare": {"mode": "full"}}}, directory)
    (warning,) = rollout_warnings(wrong, directory)
    assert "welfare" in warning
    with pytest.raises(ValueError, match="unknown department"):
        policy_book({"departments": {"parks": {"mode": "full"}}}, directory)
