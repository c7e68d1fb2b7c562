"""The timeout rule (pipelines.core.timeout) with a fake clock: no faust, no Kafka."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from pipelines.core import timeout as core
from pipelines.core.deadlines import DeadlineIndex
from pipelines.core.timeout import (
    Armed,
    CallSeen,
    Disarmed,
    Hangup,
    KeyBeforeLimit,
    Notice,
    Policy,
    PolicyBook,
    ResultSeen,
    Terminate,
    TimeoutDecision,
    TimeoutState,
    VerdictSeen,
)
from pipelines.timeout.policy import DEFAULT_FILE, load_policy_book, policy_book

T0 = 1_795_000_000_000
S = 1000
POLICY = Policy(notice_after_s=900, limit_s=1200, hangup_safety_s=60)
BOOK = PolicyBook(default=POLICY)
CALL = "c-1"


class Run:
    """One call driven through the rule: events, ticks, results; decisions collected."""

    def __init__(self, book: PolicyBook = BOOK, call_id: str = CALL) -> None:
        self.book = book
        self.call_id = call_id
        self.state: TimeoutState | None = None
        self.decisions: list[TimeoutDecision] = []
        self.n = 0

    def event(
        self, type_: str, ts_ms: int, now_ms: int | None = None, event_id: str = "", **kw: str
    ) -> list[TimeoutDecision]:
        self.n += 1
        obs = CallSeen(
            event_id=event_id or f"e{self.n}",
            call_id=self.call_id,
            type=type_,
            ts_ms=ts_ms,
            department=kw.pop("department", "traffic"),
            caller=kw.pop("caller", "010-0000-1234"),
            callee=kw.pop("callee", "1100"),
            **kw,
        )
        return self._apply(
            core.step(self.state, obs, ts_ms if now_ms is None else now_ms, self.book)
        )

    def keys(self, keys: str, ts_ms: int, now_ms: int | None = None, leg: str = "staff") -> list:
        out: list[TimeoutDecision] = []
        for i, digit in enumerate(keys):
            at = ts_ms + i * 300
            out += self.event(
                "dtmf", at, None if now_ms is None else now_ms + i * 300, leg=leg, digit=digit
            )
        return out

    def tick(self, now_ms: int) -> list[TimeoutDecision]:
        assert self.state is not None
        return self._apply(core.due(self.state, now_ms))

    def result(self, kind: str, status: str, now_ms: int) -> list[TimeoutDecision]:
        cid = core.command_id(self.call_id, kind)
        obs = ResultSeen(self.call_id, cid, "play", status, now_ms)
        return self._apply(core.step(self.state, obs, now_ms, self.book))

    def _apply(self, result: tuple[TimeoutState | None, list[TimeoutDecision]]) -> list:
        self.state, out = result
        self.decisions += out
        return out

    def kinds(self) -> list[str]:
        return [d.kind for d in self.decisions]

    def answered(self, at: int = T0) -> Run:
        self.event("call_started", at - 5 * S)
        self.event("answered", at)
        self.event("bridged", at + 200)
        return self


def ticks(run: Run, start: int, end: int, every: int = 5 * S) -> None:
    for now in range(start, end + 1, every):
        run.tick(now)


# --- the normal flows ----------------------------------------------------------------------


def test_notice_then_armed_then_staff_key_then_announcement_then_hangup() -> None:
    run = Run().answered()
    ticks(run, T0, T0 + 899 * S, every=S)
    assert run.kinds() == []
    (notice,) = run.tick(T0 + 900 * S)
    assert isinstance(notice, Notice) and notice.actor == "system"
    assert run.tick(T0 + 1100 * S) == []
    (armed,) = run.tick(T0 + 1200 * S)
    assert isinstance(armed, Armed) and "awaiting staff key *9" in armed.reason
    ticks(run, T0 + 1201 * S, T0 + 1400 * S)
    assert run.kinds() == ["notice", "armed"]  # armed waits for the key: no auto-termination
    (terminate,) = run.keys("*9", T0 + 1410 * S)
    assert isinstance(terminate, Terminate)
    assert terminate.actor == "staff" and terminate.attrs["key"] == "*9"
    assert terminate.command_id == core.command_id(CALL, "terminate")
    assert run.tick(T0 + 1415 * S) == []  # no hangup before the announcement has finished
    (hangup,) = run.result("terminate", "applied", T0 + 1418 * S)
    assert isinstance(hangup, Hangup) and "finished" in hangup.reason
    assert run.kinds() == ["notice", "armed", "terminate", "hangup"]
    assert all(d.department == "traffic" and d.call_id == CALL for d in run.decisions)
    run.event("hangup", T0 + 1419 * S)
    assert core.next_deadline(run.state) is None  # type: ignore[arg-type]


def test_notice_is_optional_per_policy() -> None:
    run = Run(PolicyBook(default=replace(POLICY, announce_notice=False))).answered()
    ticks(run, T0, T0 + 1200 * S)
    assert run.kinds() == ["armed"]


def test_clock_starts_at_the_answer_not_the_call_start() -> None:
    run = Run()
    run.event("call_started", T0)
    run.event("ringing", T0 + S)
    assert core.next_deadline(run.state) is None  # type: ignore[arg-type]
    run.event("answered", T0 + 60 * S)
    assert core.next_deadline(run.state) == T0 + 960 * S  # type: ignore[arg-type]
    ticks(run, T0, T0 + 1259 * S)
    assert run.kinds() == ["notice"]
    run.tick(T0 + 1260 * S)
    assert run.kinds() == ["notice", "armed"]


def test_unanswered_call_never_gets_anything() -> None:
    run = Run()
    run.event("call_started", T0)
    run.event("ringing", T0 + S)
    ticks(run, T0, T0 + 3000 * S, every=60 * S)
    assert run.kinds() == []


# --- the issue's edge cases ----------------------------------------------------------------


def test_key_before_the_limit_is_logged_and_does_nothing_else() -> None:
    run = Run().answered()
    (logged,) = run.keys("*9", T0 + 600 * S)
    assert isinstance(logged, KeyBeforeLimit) and logged.actor == "staff"
    assert "before the 1200 s limit" in logged.reason
    ticks(run, T0, T0 + 1300 * S)
    # the early key did not pre-arm anything: at the limit the rule only arms
    assert run.kinds() == ["key_before_limit", "notice", "armed"]
    run.keys("*9", T0 + 1305 * S)
    assert run.kinds()[-1] == "terminate"


def test_key_before_answer_is_logged() -> None:
    run = Run()
    run.event("call_started", T0)
    (logged,) = run.keys("*9", T0 + S)
    assert isinstance(logged, KeyBeforeLimit) and "before the call was answered" in logged.reason


def test_justified_code_disarms_the_call() -> None:
    run = Run().answered()
    (disarmed,) = run.keys("*0", T0 + 100 * S)
    assert isinstance(disarmed, Disarmed) and disarmed.actor == "staff"
    ticks(run, T0, T0 + 3000 * S, every=10 * S)
    (ignored,) = run.keys("*9", T0 + 3001 * S)  # after justification the key is only logged
    assert isinstance(ignored, KeyBeforeLimit) and "justified" in ignored.reason
    assert run.kinds() == ["disarmed", "key_before_limit"]
    assert run.keys("*0", T0 + 3010 * S) == []  # disarming twice says nothing new


def test_justified_after_the_limit_still_disarms_but_not_once_terminating() -> None:
    run = Run().answered()
    ticks(run, T0, T0 + 1200 * S)
    run.keys("*0", T0 + 1250 * S)
    assert run.kinds() == ["notice", "armed", "disarmed"]
    assert run.keys("*9", T0 + 1260 * S)[0].kind == "key_before_limit"

    late = Run(call_id="c-2").answered()
    ticks(late, T0, T0 + 1200 * S)
    late.keys("*9", T0 + 1250 * S)
    assert late.keys("*0", T0 + 1252 * S) == []  # the announcement is already playing
    assert late.result("terminate", "applied", T0 + 1258 * S)[0].kind == "hangup"


def test_call_ending_before_the_limit_cancels_every_timer() -> None:
    run = Run().answered()
    ticks(run, T0, T0 + 950 * S)
    run.event("hangup", T0 + 1000 * S)
    assert core.next_deadline(run.state) is None  # type: ignore[arg-type]
    ticks(run, T0 + 1000 * S, T0 + 3000 * S)
    assert run.keys("*9", T0 + 1500 * S) == []  # late events after the hangup change nothing
    assert run.kinds() == ["notice"]


def test_duplicate_events_change_nothing_twice() -> None:
    run = Run().answered()
    ticks(run, T0, T0 + 1200 * S)
    run.event("dtmf", T0 + 1300 * S, event_id="k1", leg="staff", digit="*")
    run.event("dtmf", T0 + 1300 * S + 200, event_id="k2", leg="staff", digit="9")
    before = run.state
    for _ in range(3):  # the PBX feed repeats them
        run.event("dtmf", T0 + 1300 * S, event_id="k1", leg="staff", digit="*")
        run.event("dtmf", T0 + 1300 * S + 200, event_id="k2", leg="staff", digit="9")
        run.event("answered", T0, event_id="e2")
    assert run.state == before
    for status in ("applied", "duplicate", "applied"):  # the result arrives more than once
        run.result("terminate", status, T0 + 1310 * S)
    ticks(run, T0 + 1310 * S, T0 + 1500 * S)
    assert run.kinds() == ["notice", "armed", "terminate", "hangup"]


def test_out_of_order_answer_moves_the_clock_to_the_earliest_answer() -> None:
    run = Run()
    run.event("call_started", T0 - 5 * S)
    run.event("bridged", T0 + 2 * S)  # the bridge is seen before the answer
    run.event("answered", T0)
    assert run.state is not None and run.state.started_ms == T0
    ticks(run, T0, T0 + 1199 * S)
    assert run.kinds() == ["notice"]
    run.tick(T0 + 1200 * S)
    assert run.kinds() == ["notice", "armed"]


def test_out_of_order_hangup_before_dtmf_means_no_termination() -> None:
    run = Run().answered()
    ticks(run, T0, T0 + 1200 * S)
    run.event("hangup", T0 + 1302 * S)
    run.keys("*9", T0 + 1300 * S)  # delivered late, after the hangup
    assert run.kinds() == ["notice", "armed"]


def test_key_after_the_limit_counts_even_before_the_tick_arms() -> None:
    # the tick for the limit is late (or the worker lags): the PBX's own clock decides
    run = Run().answered()
    out = run.keys("*9", T0 + 1201 * S, now_ms=T0 + 1201 * S)
    assert [d.kind for d in out] == ["armed", "terminate"]


def test_clock_skew_pbx_ahead_does_not_delay_or_hasten_the_rule() -> None:
    skew = 300 * S  # the PBX clock runs 5 minutes ahead of the worker's
    run = Run()
    run.event("call_started", T0 - 5 * S + skew, now_ms=T0 - 5 * S)
    run.event("answered", T0 + skew, now_ms=T0)
    assert run.state is not None and run.state.started_ms == T0  # clamped to our "now"
    ticks(run, T0, T0 + 1199 * S)
    assert run.kinds() == ["notice"]
    # a key at 1000 s (worker time) carries PBX time 1300 s: still before the limit
    assert run.keys("*9", T0 + 1000 * S + skew, now_ms=T0 + 1000 * S)[0].kind == (
        "key_before_limit"
    )
    run.tick(T0 + 1200 * S)
    assert run.kinds()[-1] == "armed"


def test_clock_skew_pbx_behind_keys_judged_on_pbx_time() -> None:
    skew = -120 * S  # the PBX is 2 minutes behind
    run = Run()
    run.event("answered", T0 + skew, now_ms=T0)
    out = run.keys("*9", T0 + 1199 * S + skew, now_ms=T0 + 1199 * S)
    assert [d.kind for d in out] == ["key_before_limit"]
    out = run.keys("*9", T0 + 1201 * S + skew, now_ms=T0 + 1201 * S)
    assert [d.kind for d in out] == ["armed", "terminate"]


def test_never_two_hangups_for_one_call() -> None:
    run = Run().answered()
    ticks(run, T0, T0 + 1200 * S)
    run.keys("*9", T0 + 1300 * S)
    run.keys("*9", T0 + 1302 * S)  # staff press again while it plays
    run.result("terminate", "applied", T0 + 1306 * S)
    run.result("terminate", "applied", T0 + 1306 * S)
    ticks(run, T0 + 1300 * S, T0 + 1600 * S)  # the safety timeout must not fire as well
    run.result("hangup", "applied", T0 + 1307 * S)
    assert run.kinds().count("hangup") == 1
    assert run.kinds().count("terminate") == 1


def test_hangup_safety_timeout_when_the_result_never_arrives() -> None:
    run = Run().answered()
    ticks(run, T0, T0 + 1200 * S)
    run.keys("*9", T0 + 1300 * S)
    assert core.next_deadline(run.state) == T0 + 1360 * S + 300  # type: ignore[arg-type]
    ticks(run, T0 + 1300 * S, T0 + 1359 * S, every=S)
    assert run.kinds()[-1] == "terminate"
    (hangup,) = run.tick(T0 + 1361 * S)
    assert isinstance(hangup, Hangup) and "unconfirmed" in hangup.reason
    run.result("terminate", "applied", T0 + 1400 * S)  # arrives after all: nothing more
    assert run.kinds().count("hangup") == 1


def test_failed_announcement_still_hangs_up_once() -> None:
    run = Run().answered()
    ticks(run, T0, T0 + 1200 * S)
    run.keys("*9", T0 + 1300 * S)
    (hangup,) = run.result("terminate", "failed", T0 + 1301 * S)
    assert "failed" in hangup.reason


def test_other_command_results_are_ignored() -> None:
    run = Run().answered()
    ticks(run, T0, T0 + 900 * S)
    assert run.result("notice", "applied", T0 + 905 * S) == []
    unknown = core.step(None, ResultSeen("nobody", "x", "play", "applied", T0), T0, BOOK)
    assert unknown == (None, [])


def test_exempt_lines_and_departments_never_get_anything() -> None:
    book = PolicyBook(
        default=replace(POLICY, exempt_lines=("1499",)),
        departments={"welfare": replace(POLICY, enabled=False)},
    )
    for kw in ({"callee": "1499"}, {"caller": "1499"}, {"department": "welfare"}):
        run = Run(book)
        run.event("call_started", T0 - S, **kw)
        run.event("answered", T0, **kw)
        ticks(run, T0, T0 + 3000 * S, every=30 * S)
        run.keys("*9", T0 + 2000 * S)
        run.keys("*0", T0 + 2010 * S)
        assert run.kinds() == [], kw
        assert run.state is not None and run.state.exempt
        assert core.next_deadline(run.state) is None


def test_key_sequence_window_and_legs() -> None:
    run = Run().answered()
    ticks(run, T0, T0 + 1200 * S)
    run.event("dtmf", T0 + 1300 * S, leg="staff", digit="*")
    run.event("dtmf", T0 + 1310 * S, leg="staff", digit="9")  # 10 s later: a new sequence
    run.keys("*9", T0 + 1320 * S, leg="caller")  # the caller cannot end the call
    run.keys("19", T0 + 1330 * S)
    assert run.kinds() == ["notice", "armed"]
    run.keys("5*9", T0 + 1340 * S)  # the key at the end of a longer sequence counts
    assert run.kinds()[-1] == "terminate"


def test_abuse_verdict_arms_only_when_the_policy_says_so() -> None:
    verdict = VerdictSeen(CALL, "i-1", "insult", T0 + 100 * S)
    run = Run().answered()
    run._apply(core.step(run.state, verdict, T0 + 100 * S, BOOK))
    ticks(run, T0, T0 + 1300 * S)
    assert run.kinds() == ["notice", "armed"]

    book = PolicyBook(default=replace(POLICY, abuse_verdict_arms=True))
    flagged = Run(book).answered()
    flagged._apply(core.step(flagged.state, verdict, T0 + 100 * S, book))
    ticks(flagged, T0, T0 + 1250 * S)  # (the hangup waits for the announcement's result)
    assert flagged.kinds() == ["notice", "armed", "terminate"]
    assert flagged.decisions[-1].actor == "system" and "insult" in flagged.decisions[-1].reason

    late = Run(book, call_id="c-3").answered()  # a verdict after the limit ends it at once
    ticks(late, T0, T0 + 1200 * S)
    out = late._apply(core.step(late.state, verdict, T0 + 1250 * S, book))
    assert [d.kind for d in out] == ["terminate"]


def test_a_late_worker_skips_the_notice_past_the_limit() -> None:
    run = Run().answered()
    (armed,) = run.tick(T0 + 1500 * S)  # the first tick after a long outage
    assert isinstance(armed, Armed)
    assert core.next_deadline(run.state) is None  # type: ignore[arg-type]


def test_command_ids_are_deterministic_and_distinct() -> None:
    ids = {core.command_id("c-1", k) for k in ("notice", "terminate", "hangup")}
    assert len(ids) == 3
    assert core.command_id("c-1", "hangup") == core.command_id("c-1", "hangup")
    assert core.command_id("c-2", "hangup") not in ids


def test_state_round_trips_through_its_dict() -> None:
    run = Run().answered()
    ticks(run, T0, T0 + 1200 * S)
    run.keys("*9", T0 + 1300 * S)
    assert run.state is not None
    assert TimeoutState.from_dict(run.state.to_dict()) == run.state


def test_expire_forgets_quiet_calls_without_timers() -> None:
    run = Run().answered()
    run.event("hangup", T0 + 10 * S)
    assert run.state is not None
    idle = 3600 * S
    assert core.expire(run.state, T0 + 20 * S, idle) is run.state
    assert core.wake_at(run.state, idle) == T0 + 10 * S + idle
    assert core.expire(run.state, T0 + 10 * S + idle, idle) is None
    open_call = Run(call_id="c-2").answered()
    assert open_call.state is not None
    assert core.expire(open_call.state, T0 + 10 * idle, idle) is open_call.state  # timer left


def test_random_interleavings_never_issue_a_command_twice() -> None:
    rng = random.Random(7)
    for trial in range(300):
        run = Run(call_id=f"r-{trial}").answered()
        actions = (
            [("tick", T0 + s * S) for s in range(0, 1600, 50)]
            + [("keys", T0 + rng.randrange(0, 1600) * S) for _ in range(4)]
            + [("result", T0 + rng.randrange(1200, 1700) * S) for _ in range(3)]
            + [("justified", T0 + rng.randrange(0, 1600) * S)] * rng.randrange(2)
        )
        rng.shuffle(actions)
        for kind, at in actions:
            if kind == "tick":
                run.tick(at)
            elif kind == "keys":
                run.keys("*9", at)
            elif kind == "justified":
                run.keys("*0", at)
            else:
                run.result("terminate", "applied", at)
        kinds = run.kinds()
        for once in ("notice", "armed", "terminate", "hangup", "disarmed"):
            assert kinds.count(once) <= 1, kinds
        if "hangup" in kinds:
            assert kinds.index("terminate") < kinds.index("hangup")
        if "disarmed" in kinds:
            assert "terminate" not in kinds[kinds.index("disarmed") :]


# --- the deadline index --------------------------------------------------------------------


def test_deadline_index_pops_only_due_keys_of_the_partition() -> None:
    index = DeadlineIndex()
    index.set(0, "a", 30)
    index.set(0, "b", 10)
    index.set(1, "c", 5)
    index.set(0, "a", 20)  # moved: the old entry is stale
    assert index.pop_due(0, 15) == ["b"]
    assert index.pop_due(0, 25) == ["a"]
    assert index.pop_due(0, 100) == []  # the stale (30, a) entry is skipped
    assert index.pop_due(1, 100) == ["c"]
    index.set(0, "d", 50)
    index.discard("d")
    assert index.pop_due(0, 100) == [] and len(index) == 0


def test_deadline_index_rebuild_and_compaction() -> None:
    index = DeadlineIndex()
    index.rebuild([(0, f"k{i}", 1000 - i) for i in range(100)] + [(1, "none", None)])
    assert len(index) == 100
    for _ in range(10):  # many moves of one key leave stale entries that get compacted
        for i in range(100):
            index.set(0, "k0", 5000 + i)
    assert len(index._heaps[0]) < 500
    due = index.pop_due(0, 950)
    assert sorted(due) == sorted(f"k{i}" for i in range(50, 100)) and len(index) == 50


# --- the policy file -----------------------------------------------------------------------


def test_the_shipped_policy_file_has_the_rule_defaults() -> None:
    book = load_policy_book(DEFAULT_FILE)
    traffic = book.for_department("traffic")
    assert (traffic.notice_after_s, traffic.limit_s) == (900, 1200)
    assert (traffic.staff_key, traffic.justified_key) == ("*9", "*0")
    assert traffic.abuse_verdict_arms is False and traffic.announce_notice is True
    assert book.for_department("welfare").announce_notice is False
    assert book.for_department("tax").exempt_lines == ("1499",)
    assert book.for_department("unknown") == book.default


def test_policy_file_errors_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown key"):
        policy_book({"defaults": {"limit": 3}})
    with pytest.raises(ValueError, match="must differ"):
        policy_book({"departments": {"x": {"staff_key": "*0"}}})
    with pytest.raises(ValueError, match="positive"):
        policy_book({"defaults": {"limit_s": 0}})
    path = tmp_path / "t.toml"
    path.write_text('[defaults]\nlimit_s = 4\nnotice_after_s = 2\nstaff_key = "*9"\n')
    assert load_policy_book(path).default.limit_s == 4
