"""The abuse response rule: warn once, then end the call (the government guideline).

Each caller utterance arrives already transcribed and scored (text classifier + voice cues).
A *detection* is an utterance whose combined score reaches the department's threshold in an
abusive category.  The first detection plays the warning announcement to the caller and alerts
the staff member and the supervisor; a second detection within ``warn_window_s`` of the warning
plays the termination announcement and, once the PBX reports that it finished, hangs up.  Staff
can dismiss a false alarm with a key sequence (default ``*7``): the last detection is marked
dismissed and no longer counts.  Utterances below the threshold but above ``log_threshold`` are
logged as incidents with action ``log`` (evidence and training data); shouting alone is never
enough to act on, however loud.

Pure: standard library only, time is passed in.  Command and incident ids are derived from the
call id and what they are for, so a replay after a crash repeats the same ids (the PBX
connector applies a command id once; ClickHouse keeps one row per id).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from pipelines.core import policies
from pipelines.core.deadlines import is_idle, wake_time

STREAM = "abuse"
ABUSE_CATEGORIES = ("profanity", "insult", "threat", "sexual_harassment")
SEEN_IDS_KEPT = 128
WARNING_MEDIA = "abuse-warning"
TERMINATION_MEDIA = "abuse-termination"
HANGUP_CAUSE = "abuse"
TERMINAL_STATUSES = ("applied", "duplicate", "failed", "rejected")
_NS = uuid.UUID("8c5e2f0a-1d3b-4e6f-9a7c-5b2d4e6f8a1c")


@dataclass(frozen=True)
class Policy:
    """One department's response policy (durations in seconds so tests can shrink them)."""

    enabled: bool = True
    threshold: float = 0.6  # combined score at which an utterance is a detection
    log_threshold: float = 0.35  # below threshold but above this: logged as evidence only
    shouting_bonus: float = 0.1  # added to a text score that is already >= log_threshold
    warn_window_s: float = 600.0  # a second detection within this after the warning ends it
    categories: tuple[str, ...] = ABUSE_CATEGORIES
    legs: tuple[str, ...] = ("caller",)  # whose speech is judged (abuse aimed at staff)
    dismiss_key: str = "*7"
    key_window_s: float = 3.0
    termination_target: str = "call"
    hangup_safety_s: float = 30.0  # hang up anyway if the announcement's result never comes

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0 or not 0.0 <= self.log_threshold <= self.threshold:
            raise ValueError("abuse policy: need 0 <= log_threshold <= threshold <= 1")
        if self.warn_window_s <= 0 or self.hangup_safety_s <= 0:
            raise ValueError("abuse policy: durations must be positive")
        unknown = set(self.categories) - set(ABUSE_CATEGORIES)
        if unknown:
            raise ValueError(f"abuse policy: unknown categories {sorted(unknown)}")
        if self.termination_target not in ("call", "caller"):
            raise ValueError("abuse policy: termination_target must be call or caller")
        if not self.dismiss_key:
            raise ValueError("abuse policy: dismiss_key must be set")

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["categories"] = list(self.categories)
        data["legs"] = list(self.legs)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        values = dict(data)
        for name in ("categories", "legs"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


PolicyBook = policies.PolicyBook[Policy]


# ---------------------------------------------------------------------------------------------
# observations


@dataclass(frozen=True)
class CallSeen:
    event_id: str
    call_id: str
    type: str
    ts_ms: int
    department: str = ""
    leg: str = ""
    digit: str = ""


@dataclass(frozen=True)
class UtteranceSeen:
    """One transcribed, scored utterance (``calls.transcripts``)."""

    utterance_id: str
    call_id: str
    leg: str
    start_ms: int
    end_ms: int
    category: str  # the classifier's category ("clean" if none)
    score: float  # the classifier's score for that category
    excerpt: str  # masked transcript text (evidence)
    model_version: str
    shouting: bool = False
    excess_db: float = 0.0


@dataclass(frozen=True)
class ResultSeen:
    call_id: str
    command_id: str
    action: str
    status: str
    ts_ms: int


Observation = CallSeen | UtteranceSeen | ResultSeen


# ---------------------------------------------------------------------------------------------
# decisions


@dataclass(frozen=True)
class AbuseDecision:
    call_id: str
    department: str
    reason: str
    at_ms: int
    actor: str = "system"
    attrs: Mapping[str, str] = field(default_factory=dict)
    kind = ""

    @property
    def command_id(self) -> str:
        return ""


@dataclass(frozen=True)
class IncidentFound:
    """An utterance worth keeping as evidence; ``action`` says what was done about it."""

    incident_id: str
    call_id: str
    department: str
    leg: str
    category: str
    score: float
    action: str  # log | warn | end
    evidence: str
    model_version: str
    start_ms: int
    end_ms: int
    at_ms: int
    text_score: float = 0.0
    shouting: bool = False
    utterance_id: str = ""


@dataclass(frozen=True)
class Warn(AbuseDecision):
    """Play the warning announcement to the caller; alert staff and supervisor."""

    number: int = 1
    kind = "warn"

    @property
    def command_id(self) -> str:
        return command_id(self.call_id, f"warn-{self.number}")


@dataclass(frozen=True)
class Alert(AbuseDecision):
    """Tell the staff member and the supervisor (dashboards, the staff app)."""

    incident_id: str = ""
    kind = "alert"


@dataclass(frozen=True)
class Terminate(AbuseDecision):
    target: str = "call"
    kind = "terminate"

    @property
    def command_id(self) -> str:
        return command_id(self.call_id, self.kind)


@dataclass(frozen=True)
class Hangup(AbuseDecision):
    kind = "hangup"

    @property
    def command_id(self) -> str:
        return command_id(self.call_id, self.kind)


@dataclass(frozen=True)
class Dismissed(AbuseDecision):
    """Staff dismissed the last detection as a false alarm."""

    incident_id: str = ""
    kind = "dismissed"


def command_id(call_id: str, what: str) -> str:
    return str(uuid.uuid5(_NS, f"{STREAM}/{call_id}/{what}"))


def incident_id(call_id: str, utterance_id: str) -> str:
    return str(uuid.uuid5(_NS, f"{STREAM}/{call_id}/incident/{utterance_id}"))


Output = AbuseDecision | IncidentFound


# ---------------------------------------------------------------------------------------------
# state


@dataclass(frozen=True)
class AbuseState:
    call_id: str
    department: str = ""
    policy: Policy = field(default_factory=Policy)
    warnings: int = 0
    warned_ms: int = 0  # when the current warning was issued (0 = no warning in force)
    last_incident: str = ""  # the detection staff may dismiss
    last_incident_warned: bool = False
    dismissed: int = 0
    terminate_ms: int = 0
    hangup_ms: int = 0
    ended_ms: int = 0
    keys: str = ""
    keys_last_ms: int = 0
    updated_ms: int = 0
    seen_ids: tuple[str, ...] = ()

    @property
    def live(self) -> bool:
        return not (self.ended_ms or self.hangup_ms) and self.policy.enabled

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["policy"] = self.policy.to_dict()
        data["seen_ids"] = list(self.seen_ids)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AbuseState:
        return cls(
            **{
                **data,
                "policy": Policy.from_dict(data.get("policy", {})),
                "seen_ids": tuple(data.get("seen_ids", ())),
            }
        )


def combined_score(policy: Policy, obs: UtteranceSeen) -> float:
    """Text score, raised a little by shouting, but only when the words already count."""
    if obs.category not in policy.categories:
        return 0.0
    score = obs.score
    if obs.shouting and score >= policy.log_threshold:
        score = min(1.0, score + policy.shouting_bonus)
    return score


def _seen(state: AbuseState, event_id: str, now_ms: int) -> AbuseState | None:
    if event_id in state.seen_ids:
        return None
    return replace(state, seen_ids=(*state.seen_ids, event_id)[-SEEN_IDS_KEPT:], updated_ms=now_ms)


def _attrs(obs: UtteranceSeen, score: float) -> dict[str, str]:
    return {
        "category": obs.category,
        "score": f"{score:.3f}",
        "text_score": f"{obs.score:.3f}",
        "shouting": "true" if obs.shouting else "false",
        "leg": obs.leg,
        "model_version": obs.model_version,
    }


def _on_utterance(
    state: AbuseState, obs: UtteranceSeen, now_ms: int
) -> tuple[AbuseState, list[Output]]:
    policy = state.policy
    if not policy.enabled or obs.leg not in policy.legs:
        return state, []
    score = combined_score(policy, obs)
    shouting_only = obs.shouting and score < policy.log_threshold
    if score < policy.log_threshold and not shouting_only:
        return state, []

    def incident(action: str, category: str, value: float) -> IncidentFound:
        return IncidentFound(
            incident_id=incident_id(state.call_id, obs.utterance_id),
            call_id=state.call_id,
            department=state.department,
            leg=obs.leg,
            category=category,
            score=round(value, 4),
            action=action,
            evidence=obs.excerpt,
            model_version=obs.model_version,
            start_ms=obs.start_ms,
            end_ms=obs.end_ms,
            at_ms=now_ms,
            text_score=obs.score,
            shouting=obs.shouting,
            utterance_id=obs.utterance_id,
        )

    if score < policy.threshold or state.terminate_ms or not state.live:
        # evidence only: below threshold, shouting without abusive words, already ending, or
        # transcribed after the hangup (the words were still said to the staff member)
        if shouting_only:
            return state, [incident("log", "shouting", min(1.0, obs.excess_db / 30.0))]
        return state, [incident("log", obs.category, score)]

    found_id = incident_id(state.call_id, obs.utterance_id)
    base: dict[str, Any] = {
        "call_id": state.call_id,
        "department": state.department,
        "at_ms": now_ms,
    }
    window_ms = int(policy.warn_window_s * 1000)
    if state.warned_ms and now_ms - state.warned_ms <= window_ms:
        state = replace(
            state, terminate_ms=now_ms, last_incident=found_id, last_incident_warned=False
        )
        why = f"second detection ({obs.category} {score:.2f}) within the warning window"
        return state, [
            incident("end", obs.category, score),
            Terminate(
                reason=why, target=policy.termination_target, attrs=_attrs(obs, score), **base
            ),
            Alert(
                reason=f"call being ended: {why}",
                incident_id=found_id,
                attrs=_attrs(obs, score),
                **base,
            ),
        ]
    number = state.warnings + 1
    state = replace(
        state, warnings=number, warned_ms=now_ms, last_incident=found_id, last_incident_warned=True
    )
    why = f"{obs.category} detected (score {score:.2f}); warning {number}"
    return state, [
        incident("warn", obs.category, score),
        Warn(reason=why, number=number, attrs=_attrs(obs, score), **base),
        Alert(
            reason=why,
            incident_id=found_id,
            attrs={**_attrs(obs, score), "notify": "staff,supervisor"},
            **base,
        ),
    ]


def _on_key(state: AbuseState, obs: CallSeen, now_ms: int) -> tuple[AbuseState, list[Output]]:
    policy = state.policy
    gap = obs.ts_ms - state.keys_last_ms
    keys = state.keys if state.keys and 0 <= gap <= policy.key_window_s * 1000 else ""
    keys = (keys + obs.digit)[-16:]
    state = replace(state, keys=keys, keys_last_ms=max(obs.ts_ms, state.keys_last_ms))
    if not keys.endswith(policy.dismiss_key):
        return state, []
    state = replace(state, keys="")
    if not state.last_incident or state.terminate_ms:
        return state, []  # nothing to dismiss, or too late (the call is being ended)
    dismissed = state.last_incident
    # the dismissed detection no longer counts: a warning it caused is withdrawn
    state = replace(
        state,
        last_incident="",
        dismissed=state.dismissed + 1,
        warned_ms=0 if state.last_incident_warned else state.warned_ms,
        last_incident_warned=False,
    )
    return state, [
        Dismissed(
            call_id=state.call_id,
            department=state.department,
            reason=f"staff dismissed the detection as a false alarm ({policy.dismiss_key})",
            at_ms=now_ms,
            actor="staff",
            incident_id=dismissed,
            attrs={"incident_id": dismissed, "key": policy.dismiss_key},
        )
    ]


def step(
    state: AbuseState | None, obs: Observation, now_ms: int, book: PolicyBook
) -> tuple[AbuseState | None, list[Output]]:
    """Fold one observation into the call's state; ``None`` = no call known."""
    if isinstance(obs, ResultSeen):
        if state is None or obs.status not in TERMINAL_STATUSES:
            return state, []
        if obs.command_id != command_id(state.call_id, Terminate.kind) or state.hangup_ms:
            return state, []
        if state.ended_ms:
            return state, []
        how = "finished" if obs.status in ("applied", "duplicate") else obs.status
        state = replace(state, hangup_ms=now_ms, updated_ms=now_ms)
        return state, [
            Hangup(
                call_id=state.call_id,
                department=state.department,
                reason=f"termination announcement {how}",
                at_ms=now_ms,
            )
        ]
    if state is None:
        department = obs.department if isinstance(obs, CallSeen) else ""
        state = AbuseState(
            call_id=obs.call_id, department=department, policy=book.for_department(department)
        )
    if isinstance(obs, UtteranceSeen):
        fresh = _seen(state, obs.utterance_id, now_ms)
        return (state, []) if fresh is None else _on_utterance(fresh, obs, now_ms)
    fresh = _seen(state, obs.event_id, now_ms)
    if fresh is None:
        return state, []
    state = fresh
    if not state.department and obs.department:
        # the first event seen may have been an utterance: adopt the department's policy now
        state = replace(
            state, department=obs.department, policy=book.for_department(obs.department)
        )
    if obs.type == "hangup":
        return (state if state.ended_ms else replace(state, ended_ms=max(obs.ts_ms, 1))), []
    if obs.type == "dtmf" and obs.leg == "staff" and len(obs.digit) == 1 and state.live:
        return _on_key(state, obs, now_ms)
    return state, []


def due(state: AbuseState, now_ms: int) -> tuple[AbuseState, list[Output]]:
    """The one timer: hang up if the termination announcement's result never comes."""
    deadline = next_deadline(state)
    if deadline is None or now_ms < deadline:
        return state, []
    state = replace(state, hangup_ms=now_ms, updated_ms=now_ms)
    safety = state.policy.hangup_safety_s
    return state, [
        Hangup(
            call_id=state.call_id,
            department=state.department,
            reason=f"termination announcement unconfirmed after {safety:g} s",
            at_ms=now_ms,
        )
    ]


def next_deadline(state: AbuseState) -> int | None:
    if state.terminate_ms and not state.hangup_ms and not state.ended_ms:
        return state.terminate_ms + int(state.policy.hangup_safety_s * 1000)
    return None


def expire(state: AbuseState, now_ms: int, idle_limit_ms: int) -> AbuseState | None:
    idle = is_idle(next_deadline(state), state.updated_ms, now_ms, idle_limit_ms)
    return None if idle else state


def wake_at(state: AbuseState, idle_limit_ms: int) -> int:
    return wake_time(next_deadline(state), state.updated_ms, idle_limit_ms)
