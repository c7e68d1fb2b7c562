"""The 20-minute rule for malicious calls (Seoul), with the advance notice other offices add.

A call's clock starts when staff answer (``answered`` / ``bridged``, at the event's own
timestamp).  At ``notice_after_s`` the caller may hear an advance notice; at ``limit_s`` the
rule is *armed*: from then on the staff key sequence (default ``*9``), or an abuse verdict when
the department's policy allows it, plays the termination announcement to the call and, once the
PBX reports that the playback finished, hangs up.  A staff "justified" code (default ``*0``)
disarms the rule for the call; a key pressed before the limit is logged and does nothing else.

Pure: standard library only, time is passed in.  ``step`` folds one observation (a call event,
a command result, an abuse verdict) into the call's state; ``due`` fires the timers;
``next_deadline`` says when ``due`` next has work, which the stream keeps in a
:class:`~pipelines.core.deadlines.DeadlineIndex` so a clock tick costs O(due calls · log n),
not a scan of every open call.

Safety properties (unit-tested): duplicate and out-of-order events change nothing twice; each
kind of command is issued at most once per call, with an id derived from the call id and the
kind, so even a replay after a crash yields the same id and the PBX connector applies it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from pipelines.core import policies
from pipelines.core.deadlines import is_idle, wake_time

STREAM = "timeout"
#: how many recent event ids a call remembers to drop duplicates
SEEN_IDS_KEPT = 64
_COMMAND_NS = uuid.UUID("3f1d6a8e-5b7c-4c2a-9e4d-2a6b8c0d1e7f")

NOTICE_MEDIA = "timeout-notice"
TERMINATION_MEDIA = "timeout-termination"
HANGUP_CAUSE = "time_limit"
TERMINAL_STATUSES = ("applied", "duplicate", "failed", "rejected")


# ---------------------------------------------------------------------------------------------
# policy


@dataclass(frozen=True)
class Policy:
    """One department's rule; every duration in seconds so tests can shrink them."""

    enabled: bool = True
    notice_after_s: float = 900.0
    limit_s: float = 1200.0
    staff_key: str = "*9"
    justified_key: str = "*0"
    key_window_s: float = 3.0  # single-digit DTMF events further apart start a new sequence
    exempt_lines: tuple[str, ...] = ()
    abuse_verdict_arms: bool = False
    announce_notice: bool = True
    termination_target: str = "call"  # call (both parties) | caller | staff
    hangup_safety_s: float = 60.0  # hang up anyway if the announcement's result never comes

    def __post_init__(self) -> None:
        if self.limit_s <= 0 or self.notice_after_s < 0 or self.hangup_safety_s <= 0:
            raise ValueError("timeout policy: durations must be positive")
        if not self.staff_key or not self.justified_key:
            raise ValueError("timeout policy: staff_key and justified_key must be set")
        if self.staff_key == self.justified_key:
            raise ValueError("timeout policy: staff_key and justified_key must differ")
        if self.termination_target not in ("call", "caller", "staff"):
            raise ValueError("timeout policy: termination_target must be call, caller or staff")

    @property
    def notice_ms(self) -> int:
        return int(self.notice_after_s * 1000)

    @property
    def limit_ms(self) -> int:
        return int(self.limit_s * 1000)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["exempt_lines"] = list(self.exempt_lines)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        return cls(**{**data, "exempt_lines": tuple(data.get("exempt_lines", ()))})


PolicyBook = policies.PolicyBook[Policy]


# ---------------------------------------------------------------------------------------------
# observations


@dataclass(frozen=True)
class CallSeen:
    """The parts of a call event the rule needs."""

    event_id: str
    call_id: str
    type: str
    ts_ms: int
    department: str = ""
    caller: str = ""
    callee: str = ""
    leg: str = ""
    digit: str = ""


@dataclass(frozen=True)
class ResultSeen:
    """A PBX command result (``pbx.command-results``)."""

    call_id: str
    command_id: str
    action: str
    status: str
    ts_ms: int
    detail: str = ""


@dataclass(frozen=True)
class VerdictSeen:
    """The abuse detector asked for this call to end (``calls.incidents`` action ``end``)."""

    call_id: str
    verdict_id: str
    category: str
    ts_ms: int


Observation = CallSeen | ResultSeen | VerdictSeen


# ---------------------------------------------------------------------------------------------
# decisions


@dataclass(frozen=True)
class TimeoutDecision:
    call_id: str
    department: str
    reason: str
    at_ms: int  # the worker time the decision was taken
    actor: str = "system"  # system | staff
    attrs: Mapping[str, str] = field(default_factory=dict)

    kind = ""  # overridden per subclass (a plain class attribute, not a field)

    @property
    def command_id(self) -> str:
        return ""


@dataclass(frozen=True)
class Notice(TimeoutDecision):
    """Play the advance notice to the caller (nobody waits for it)."""

    kind = "notice"

    @property
    def command_id(self) -> str:
        return command_id(self.call_id, self.kind)


@dataclass(frozen=True)
class Armed(TimeoutDecision):
    """The limit is reached: the staff key (or a verdict) now ends the call."""

    kind = "armed"


@dataclass(frozen=True)
class KeyBeforeLimit(TimeoutDecision):
    """A staff key sequence before the limit, or after the rule was disarmed: logged only."""

    kind = "key_before_limit"


@dataclass(frozen=True)
class Disarmed(TimeoutDecision):
    """Staff marked the call as justified: no notice, no termination for it."""

    kind = "disarmed"


@dataclass(frozen=True)
class Terminate(TimeoutDecision):
    """Play the termination announcement; the PBX answers when it has finished."""

    target: str = "call"
    kind = "terminate"

    @property
    def command_id(self) -> str:
        return command_id(self.call_id, self.kind)


@dataclass(frozen=True)
class Hangup(TimeoutDecision):
    """End the call (after the termination announcement, or its safety timeout)."""

    kind = "hangup"

    @property
    def command_id(self) -> str:
        return command_id(self.call_id, self.kind)


def command_id(call_id: str, kind: str) -> str:
    """Deterministic: a command re-issued after a crash has the id the PBX already knows."""
    return str(uuid.uuid5(_COMMAND_NS, f"{STREAM}/{call_id}/{kind}"))


# ---------------------------------------------------------------------------------------------
# state


@dataclass(frozen=True)
class TimeoutState:
    call_id: str
    department: str = ""
    policy: Policy = field(default_factory=Policy)
    exempt: str = ""  # why the rule does not apply to this call ("" = it applies)
    answered_ts_ms: int = 0  # the earliest answered/bridged event, PBX clock
    started_ms: int = 0  # the same moment on the worker's clock: timers count from here
    ended_ms: int = 0
    keys: str = ""  # staff digits of the sequence being typed
    keys_last_ms: int = 0
    flagged: str = ""  # abuse verdict category, when a verdict may arm the rule
    notice_ms: int = 0  # when each decision was issued (worker time); 0 = not yet
    armed_ms: int = 0
    disarmed_ms: int = 0
    terminate_ms: int = 0
    hangup_ms: int = 0
    updated_ms: int = 0  # worker time of the last change, for expiry
    seen_ids: tuple[str, ...] = ()

    @property
    def ended(self) -> bool:
        return self.ended_ms > 0

    @property
    def live(self) -> bool:
        """The rule still has work to do for this call."""
        return not (self.exempt or self.ended or self.disarmed_ms or self.hangup_ms)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["policy"] = self.policy.to_dict()
        data["seen_ids"] = list(self.seen_ids)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimeoutState:
        return cls(
            **{
                **data,
                "policy": Policy.from_dict(data.get("policy", {})),
                "seen_ids": tuple(data.get("seen_ids", ())),
            }
        )


def _elapsed_s(state: TimeoutState, now_ms: int) -> str:
    return f"{max(now_ms - state.started_ms, 0) / 1000:.1f}"


def _base(state: TimeoutState, now_ms: int, **attrs: str) -> dict[str, Any]:
    return {
        "call_id": state.call_id,
        "department": state.department,
        "at_ms": now_ms,
        "attrs": {"limit_s": f"{state.policy.limit_s:g}", **attrs},
    }


def _terminate(
    state: TimeoutState, now_ms: int, actor: str, why: str, **attrs: str
) -> tuple[TimeoutState, list[TimeoutDecision]]:
    """Issue the termination announcement once (Armed first if the tick has not yet)."""
    if state.terminate_ms or not state.live:
        return state, []
    out: list[TimeoutDecision] = []
    if not state.armed_ms:
        state = replace(state, armed_ms=now_ms)
        out.append(
            Armed(reason=f"{state.policy.limit_s:g} s limit reached", **_base(state, now_ms))
        )
    state = replace(state, terminate_ms=now_ms, updated_ms=now_ms)
    out.append(
        Terminate(
            reason=why,
            actor=actor,
            target=state.policy.termination_target,
            **_base(state, now_ms, elapsed_s=_elapsed_s(state, now_ms), **attrs),
        )
    )
    return state, out


def _hangup(
    state: TimeoutState, now_ms: int, why: str
) -> tuple[TimeoutState, list[TimeoutDecision]]:
    if state.hangup_ms or not state.terminate_ms or state.ended:
        return state, []
    state = replace(state, hangup_ms=now_ms, updated_ms=now_ms)
    return state, [Hangup(reason=why, **_base(state, now_ms))]


def _new_state(obs: CallSeen, book: PolicyBook) -> TimeoutState:
    policy = book.for_department(obs.department)
    exempt = ""
    if not policy.enabled:
        exempt = f"department {obs.department or '(none)'} exempt"
    else:
        line = next((n for n in (obs.callee, obs.caller) if n and n in policy.exempt_lines), "")
        if line:
            exempt = f"line {line} exempt"
    return TimeoutState(
        call_id=obs.call_id, department=obs.department, policy=policy, exempt=exempt
    )


def _on_key(
    state: TimeoutState, obs: CallSeen, now_ms: int
) -> tuple[TimeoutState, list[TimeoutDecision]]:
    policy = state.policy
    gap = obs.ts_ms - state.keys_last_ms
    keys = state.keys if state.keys and 0 <= gap <= policy.key_window_s * 1000 else ""
    keys = (keys + obs.digit)[-16:]
    state = replace(state, keys=keys, keys_last_ms=max(obs.ts_ms, state.keys_last_ms))
    if keys.endswith(policy.justified_key):
        state = replace(state, keys="")
        if state.disarmed_ms or state.terminate_ms or not state.live:
            return state, []  # too late (announcement under way) or nothing to disarm
        state = replace(state, disarmed_ms=now_ms)
        return state, [
            Disarmed(
                reason=f"staff marked the call justified ({policy.justified_key})",
                actor="staff",
                **_base(state, now_ms, key=policy.justified_key),
            )
        ]
    if not keys.endswith(policy.staff_key):
        return state, []
    state = replace(state, keys="")
    if state.terminate_ms or state.hangup_ms:
        return state, []  # already ending: a repeated key changes nothing
    key_attrs = {"key": policy.staff_key}
    if state.disarmed_ms:
        why = "staff key after the call was marked justified: ignored"
        return state, [
            KeyBeforeLimit(reason=why, actor="staff", **_base(state, now_ms, **key_attrs))
        ]
    # "After the limit": armed by the tick, or judged on the PBX's own clock (the key's and the
    # answer's timestamps, so skew cancels out and a late tick cannot make a timely key early).
    pbx_elapsed_ms = obs.ts_ms - state.answered_ts_ms
    if not state.started_ms or (not state.armed_ms and pbx_elapsed_ms < policy.limit_ms):
        elapsed = max(pbx_elapsed_ms, 0) / 1000 if state.started_ms else 0.0
        why = (
            f"staff key at {elapsed:.0f} s, before the {policy.limit_s:g} s limit: logged only"
            if state.started_ms
            else "staff key before the call was answered: logged only"
        )
        return state, [
            KeyBeforeLimit(reason=why, actor="staff", **_base(state, now_ms, **key_attrs))
        ]
    return _terminate(
        state,
        now_ms,
        "staff",
        f"staff key {policy.staff_key} after the {policy.limit_s:g} s limit",
        **key_attrs,
    )


def step(
    state: TimeoutState | None, obs: Observation, now_ms: int, book: PolicyBook
) -> tuple[TimeoutState | None, list[TimeoutDecision]]:
    """Apply one observation.  ``None`` state in and out means "no call known/kept"."""
    if isinstance(obs, ResultSeen):
        if state is None or obs.status not in TERMINAL_STATUSES:
            return state, []
        if obs.command_id == command_id(state.call_id, Terminate.kind):
            how = "finished" if obs.status in ("applied", "duplicate") else obs.status
            return _hangup(state, now_ms, f"termination announcement {how}")
        return state, []
    if isinstance(obs, VerdictSeen):
        if state is None or state.flagged or not state.policy.abuse_verdict_arms:
            return state, []
        state = replace(state, flagged=obs.category or "abuse", updated_ms=now_ms)
        if state.armed_ms and state.started_ms:
            return _terminate(
                state, now_ms, "system", f"abuse verdict ({state.flagged}) after the limit"
            )
        return state, []  # the limit tick will end it

    if state is None:
        state = _new_state(obs, book)
    if obs.event_id in state.seen_ids:
        return state, []
    seen = (*state.seen_ids, obs.event_id)[-SEEN_IDS_KEPT:]
    state = replace(state, seen_ids=seen, updated_ms=now_ms)
    if obs.type == "hangup":
        return (state, []) if state.ended else (replace(state, ended_ms=max(obs.ts_ms, 1)), [])
    if state.exempt or state.ended:
        return state, []  # exempt, or a late event after the hangup
    if obs.type in ("answered", "bridged"):
        if state.armed_ms or (state.answered_ts_ms and obs.ts_ms >= state.answered_ts_ms):
            return state, []  # the clock runs already (from an earlier or the same moment)
        # Timers run on the worker's clock from the answer's own timestamp, which a PBX
        # clock ahead of ours cannot push into our future.
        started = min(obs.ts_ms, now_ms) if obs.ts_ms > 0 else now_ms
        if state.started_ms:
            started = min(started, state.started_ms)
        return replace(state, answered_ts_ms=obs.ts_ms, started_ms=started), []
    if obs.type == "dtmf" and obs.leg == "staff" and len(obs.digit) == 1:
        return _on_key(state, obs, now_ms)
    return state, []


def due(state: TimeoutState, now_ms: int) -> tuple[TimeoutState, list[TimeoutDecision]]:
    """Fire whatever timers have come due (notice, limit, hangup safety)."""
    if not state.live or not state.started_ms:
        return state, []
    policy = state.policy
    out: list[TimeoutDecision] = []
    if state.terminate_ms:
        if now_ms >= state.terminate_ms + int(policy.hangup_safety_s * 1000):
            return _hangup(
                state,
                now_ms,
                f"termination announcement unconfirmed after {policy.hangup_safety_s:g} s",
            )
        return state, []
    limit_at = state.started_ms + policy.limit_ms
    if (
        policy.announce_notice
        and not state.notice_ms
        and policy.notice_ms < policy.limit_ms
        and state.started_ms + policy.notice_ms <= now_ms < limit_at
    ):
        state = replace(state, notice_ms=now_ms, updated_ms=now_ms)
        out.append(
            Notice(
                reason=f"call reached {policy.notice_after_s:g} s (limit {policy.limit_s:g} s)",
                **_base(state, now_ms, elapsed_s=_elapsed_s(state, now_ms)),
            )
        )
    if not state.armed_ms and now_ms >= limit_at:
        state = replace(state, armed_ms=now_ms, updated_ms=now_ms)
        how = (
            "abuse verdict ends the call"
            if state.flagged
            else f"awaiting staff key {policy.staff_key}"
        )
        out.append(
            Armed(
                reason=f"{policy.limit_s:g} s limit reached; {how}",
                **_base(state, now_ms, elapsed_s=_elapsed_s(state, now_ms)),
            )
        )
        if state.flagged:
            state, more = _terminate(
                state, now_ms, "system", f"abuse verdict ({state.flagged}) after the limit"
            )
            out += more
    return state, out


def next_deadline(state: TimeoutState) -> int | None:
    """When ``due`` next has work for this call (worker time), or None for never."""
    if not state.live or not state.started_ms:
        return None
    policy = state.policy
    if state.terminate_ms:
        return state.terminate_ms + int(policy.hangup_safety_s * 1000)
    limit_at = state.started_ms + policy.limit_ms
    notice_pending = policy.announce_notice and not state.notice_ms and not state.armed_ms
    if notice_pending and policy.notice_ms < policy.limit_ms:
        return state.started_ms + policy.notice_ms
    if not state.armed_ms:
        return limit_at
    return None  # armed: waiting for the staff key (an event, not a timer)


def expire(state: TimeoutState, now_ms: int, idle_limit_ms: int) -> TimeoutState | None:
    """Forget a call with no timer left once it has been quiet for ``idle_limit_ms`` (ended,
    exempt, disarmed, or armed but its hangup was lost); until then late duplicates are known."""
    idle = is_idle(next_deadline(state), state.updated_ms, now_ms, idle_limit_ms)
    return None if idle else state


def wake_at(state: TimeoutState, idle_limit_ms: int) -> int:
    """The next time a tick must look at this call: its next timer, else its expiry."""
    return wake_time(next_deadline(state), state.updated_ms, idle_limit_ms)
