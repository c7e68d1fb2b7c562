"""Call tracker: folds a call's events into its state and emits one summary when it ends.

It tolerates what real PBX feeds do: duplicate events (same ``event_id``), events out of order,
events for a call it never saw start, and late events after the hangup.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

#: how many recent event ids a call remembers to drop duplicates
SEEN_IDS_KEPT = 64


@dataclass(frozen=True)
class CallObservation:
    """The parts of a call event the tracker needs."""

    event_id: str
    call_id: str
    type: str
    ts_ms: int
    direction: str
    department: str
    caller: str
    callee: str
    origin: str
    digit: str = ""
    leg: str = ""
    hangup_cause: str = ""


@dataclass(frozen=True)
class CallState:
    call_id: str
    direction: str = ""
    department: str = ""
    caller: str = ""
    callee: str = ""
    origin: str = ""
    started_ms: int = 0
    answered_ms: int = 0
    ended_ms: int = 0
    last_event_ms: int = 0
    updated_ms: int = 0  # wall time of the last change, for expiry
    events: int = 0
    duplicate_events: int = 0
    out_of_order_events: int = 0
    dtmf_digits: str = ""
    hangup_cause: str = ""
    seen_event_ids: tuple[str, ...] = field(default=())

    @property
    def ended(self) -> bool:
        return self.ended_ms > 0

    def to_dict(self) -> dict[str, Any]:
        # shallow on purpose: asdict() deep-copies, and this runs for every event
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["seen_event_ids"] = list(self.seen_event_ids)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallState:
        return cls(**{**data, "seen_event_ids": tuple(data.get("seen_event_ids", ()))})


@dataclass(frozen=True)
class CallEnded:
    """Emitted once per call, when its hangup is seen or it goes stale."""

    call_id: str
    direction: str
    department: str
    caller: str
    callee: str
    started_ms: int
    answered_ms: int
    ended_ms: int
    talk_s: float
    events: int
    duplicate_events: int
    out_of_order_events: int
    dtmf_digits: str
    hangup_cause: str
    origin: str


@dataclass(frozen=True)
class Anomaly:
    """Something about the feed worth recording (not an error of the call itself)."""

    call_id: str
    kind: str
    reason: str


Output = CallEnded | Anomaly


def _summary(state: CallState) -> CallEnded:
    talk_ms = state.ended_ms - state.answered_ms if state.answered_ms else 0
    return CallEnded(
        call_id=state.call_id,
        direction=state.direction,
        department=state.department,
        caller=state.caller,
        callee=state.callee,
        started_ms=state.started_ms,
        answered_ms=state.answered_ms,
        ended_ms=state.ended_ms,
        talk_s=max(talk_ms, 0) / 1000.0,
        events=state.events,
        duplicate_events=state.duplicate_events,
        out_of_order_events=state.out_of_order_events,
        dtmf_digits=state.dtmf_digits,
        hangup_cause=state.hangup_cause,
        origin=state.origin,
    )


def _earliest(current: int, candidate: int) -> int:
    return candidate if current == 0 else min(current, candidate)


def step(
    state: CallState | None, obs: CallObservation, now_ms: int
) -> tuple[CallState, list[Output]]:
    """Apply one event. Returns the new state and what to emit (summary, anomalies)."""
    if state is None:
        state = CallState(call_id=obs.call_id)
    if obs.event_id in state.seen_event_ids:
        return replace(state, duplicate_events=state.duplicate_events + 1, updated_ms=now_ms), []

    outputs: list[Output] = []
    seen = (*state.seen_event_ids, obs.event_id)[-SEEN_IDS_KEPT:]
    out_of_order = state.last_event_ms > 0 and obs.ts_ms < state.last_event_ms
    if state.ended:
        # The summary is already out; record the late event but never summarise twice.
        outputs.append(
            Anomaly(obs.call_id, "event_after_hangup", f"{obs.type} arrived after the hangup")
        )
        return replace(state, seen_event_ids=seen, updated_ms=now_ms), outputs
    if state.events == 0 and obs.type != "call_started":
        outputs.append(
            Anomaly(
                obs.call_id, "missed_start", f"first event seen was {obs.type}, not call_started"
            )
        )

    new = replace(
        state,
        direction=state.direction or obs.direction,
        department=state.department or obs.department,
        caller=state.caller or obs.caller,
        callee=state.callee or obs.callee,
        origin=state.origin or obs.origin,
        started_ms=_earliest(state.started_ms, obs.ts_ms),
        last_event_ms=max(state.last_event_ms, obs.ts_ms),
        updated_ms=now_ms,
        events=state.events + 1,
        out_of_order_events=state.out_of_order_events + int(out_of_order),
        seen_event_ids=seen,
    )
    if obs.type in ("answered", "bridged"):
        new = replace(new, answered_ms=_earliest(state.answered_ms, obs.ts_ms))
    elif obs.type == "dtmf" and obs.digit:
        new = replace(new, dtmf_digits=(state.dtmf_digits + obs.digit)[-32:])
    elif obs.type == "hangup":
        new = replace(new, ended_ms=max(obs.ts_ms, 1), hangup_cause=obs.hangup_cause or "normal")
        outputs.append(_summary(new))
    return new, outputs


def expire(
    state: CallState, now_ms: int, idle_limit_ms: int
) -> tuple[CallState | None, list[Output]]:
    """Housekeeping for one call, run periodically.

    A live call idle longer than ``idle_limit_ms`` (its hangup was lost) is closed as ``stale``
    and summarised; an ended call is forgotten once it has been quiet that long, which also
    bounds how long late duplicates are recognised.  Returns ``None`` for "forget this call".
    """
    if now_ms - state.updated_ms < idle_limit_ms:
        return state, []
    if state.ended:
        return None, []
    closed = replace(
        state,
        ended_ms=max(state.last_event_ms, state.started_ms, 1),
        hangup_cause="stale",
        updated_ms=now_ms,
    )
    anomaly = Anomaly(
        state.call_id, "stale_call", f"no event for {idle_limit_ms // 1000} s; closed"
    )
    return closed, [anomaly, _summary(closed)]
