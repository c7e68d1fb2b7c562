"""Recording consent (Seoul): covered departments record every inbound call in full, from the
start, and the caller hears that the call is recorded before it connects.

Per department a :class:`RecordingPolicy` says the mode:

* ``full`` — the consent notice (``consent_notice``, a PBX sound name) must have *finished*
  playing to the caller before the staff leg is bridged; each leg's recording must start within
  ``start_tolerance_s`` of the bridge (its first audio chunk), and a leg with no audio at all is
  reported ``missing_after_s`` after the bridge or shortly after the hangup.
* ``key_press`` — the older mode: recording starts when staff press ``record_key`` (e.g. ``*1``);
  the decision ``start_recording`` opens the recording window at the key's own timestamp.
* ``off`` — nothing is recorded and nothing is checked.

Only the directions in ``directions`` (default inbound) follow the department's mode; other
calls count as ``off``.

What the PBX connector really emits (``connectors/asterisk/session.py``): ``call_started``,
``notice_started`` / ``notice_finished`` (``attrs.notice`` = the sound name, ``attrs.status`` set
when it did not play to the end), ``ringing``, ``answered``, ``bridged``, ``dtmf``, ``hangup``;
audio of both legs is captured from the bridge onwards (snoop + externalMedia), so the recording
of a ``full`` call starts with the conversation.  Nothing here trusts the configuration: the
check looks at what happened on the call.

Pure: standard library only; time is passed in.  ``step`` folds one observation into a call's
state and returns decisions; ``due`` fires the missing-audio timers.  Every decision kind is
issued at most once per call (and leg), so duplicates and replays change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from pipelines.core import policies

STREAM = "consent"
MODES = ("full", "key_press", "off")
LEGS = ("caller", "staff")
SEEN_IDS_KEPT = 64
#: after a hangup, a leg that never sent audio is reported this much later (final chunks
#: follow the hangup event on another topic)
HANGUP_GRACE_MS = 5_000

# decision kinds
CONSENT_MISSING = "consent_missing"
RECORDING_LATE = "recording_late"
RECORDING_MISSING = "recording_missing"
START_RECORDING = "start_recording"
VIOLATIONS = (CONSENT_MISSING, RECORDING_LATE, RECORDING_MISSING)


# ---------------------------------------------------------------------------------------------
# policy


@dataclass(frozen=True)
class RecordingPolicy:
    """One department's recording rule; durations in seconds so tests can shrink them."""

    mode: str = "off"
    consent_notice: str = "consent-notice"
    retention_days: float = 90.0
    start_tolerance_s: float = 2.0
    missing_after_s: float = 30.0
    record_key: str = "*1"
    key_window_s: float = 3.0
    directions: tuple[str, ...] = ("inbound",)
    completeness_tolerance_s: float = 2.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"recording policy: mode must be one of {', '.join(MODES)}")
        if self.retention_days <= 0:
            raise ValueError("recording policy: retention_days must be positive")
        if self.start_tolerance_s < 0 or self.missing_after_s <= 0:
            raise ValueError("recording policy: tolerances must be positive")
        if self.completeness_tolerance_s < 0 or self.key_window_s <= 0:
            raise ValueError("recording policy: tolerances must be positive")
        if self.mode == "full" and not self.consent_notice:
            raise ValueError("recording policy: full mode needs a consent_notice")
        if self.mode == "key_press" and not self.record_key:
            raise ValueError("recording policy: key_press mode needs a record_key")

    def mode_for(self, direction: str) -> str:
        return self.mode if direction in self.directions else "off"

    @property
    def retention_ms(self) -> int:
        return int(self.retention_days * 86_400_000)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["directions"] = list(self.directions)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordingPolicy:
        return cls(**{**data, "directions": tuple(data.get("directions", ("inbound",)))})


PolicyBook = policies.PolicyBook[RecordingPolicy]


# ---------------------------------------------------------------------------------------------
# observations


@dataclass(frozen=True)
class CallSeen:
    """The parts of a call event the check needs."""

    event_id: str
    call_id: str
    type: str
    ts_ms: int
    department: str = ""
    direction: str = ""
    leg: str = ""
    digit: str = ""
    notice: str = ""  # attrs.notice of notice_started / notice_finished
    status: str = ""  # attrs.status: "" when the notice played to the end


@dataclass(frozen=True)
class AudioSeen:
    """A leg's first chunk with audio in it (from the recording stream)."""

    call_id: str
    leg: str
    start_ms: int


Observation = CallSeen | AudioSeen


# ---------------------------------------------------------------------------------------------
# decisions


@dataclass(frozen=True)
class ConsentDecision:
    call_id: str
    department: str
    kind: str
    reason: str
    at_ms: int  # worker time the decision was taken
    leg: str = ""
    actor: str = "system"
    window_start_ms: int = 0  # start_recording: the recording starts here (PBX clock)
    attrs: Mapping[str, str] = field(default_factory=dict)

    @property
    def violation(self) -> bool:
        return self.kind in VIOLATIONS

    @property
    def key(self) -> str:
        """Unique per call: what makes a decision once-only (and its id deterministic)."""
        return f"{self.kind}/{self.leg}" if self.leg else self.kind


# ---------------------------------------------------------------------------------------------
# state


@dataclass(frozen=True)
class ConsentState:
    call_id: str
    department: str = ""  # "" until a call event said which
    direction: str = ""
    policy: RecordingPolicy = field(default_factory=RecordingPolicy)
    mode: str = ""  # full | key_press | off; "" until the department is known
    notice_started_ts: int = 0  # the consent notice (PBX clock)
    notice_finished_ts: int = 0
    notice_status: str = ""
    bridged_ts: int = 0  # PBX clock
    bridged_seen_ms: int = 0  # worker clock: the missing-audio timer counts from here
    hangup_seen_ms: int = 0  # worker clock
    first_audio: tuple[tuple[str, int], ...] = ()  # (leg, start_ms of its first audio)
    window_start_ms: int = 0  # key_press: the staff key's timestamp
    keys: str = ""
    keys_last_ms: int = 0
    issued: tuple[str, ...] = ()  # decision keys already issued
    seen_ids: tuple[str, ...] = ()
    updated_ms: int = 0

    def audio_start(self, leg: str) -> int:
        return next((ms for name, ms in self.first_audio if name == leg), 0)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["policy"] = self.policy.to_dict()
        data["first_audio"] = [list(p) for p in self.first_audio]
        data["issued"] = list(self.issued)
        data["seen_ids"] = list(self.seen_ids)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConsentState:
        return cls(
            **{
                **data,
                "policy": RecordingPolicy.from_dict(data.get("policy", {})),
                "first_audio": tuple((str(a), int(b)) for a, b in data.get("first_audio", ())),
                "issued": tuple(data.get("issued", ())),
                "seen_ids": tuple(data.get("seen_ids", ())),
            }
        )


def _issue(
    state: ConsentState, decision: ConsentDecision
) -> tuple[ConsentState, list[ConsentDecision]]:
    if decision.key in state.issued:
        return state, []
    return replace(state, issued=(*state.issued, decision.key)), [decision]


def _decision(
    state: ConsentState, kind: str, reason: str, now_ms: int, **kw: Any
) -> ConsentDecision:
    attrs = {"mode": state.mode, **kw.pop("attrs", {})}
    if kind in VIOLATIONS:
        attrs["severity"] = "alert"
    return ConsentDecision(
        call_id=state.call_id,
        department=state.department,
        kind=kind,
        reason=reason,
        at_ms=now_ms,
        attrs=attrs,
        **kw,
    )


def _with_department(state: ConsentState, obs: CallSeen, book: PolicyBook) -> ConsentState:
    if state.department or not obs.department:
        return state
    policy = book.for_department(obs.department)
    direction = obs.direction or state.direction
    return replace(
        state,
        department=obs.department,
        direction=direction,
        policy=policy,
        mode=policy.mode_for(direction),
    )


def _check_late(
    state: ConsentState, leg: str, now_ms: int
) -> tuple[ConsentState, list[ConsentDecision]]:
    """Full mode: the leg's first audio must start within the tolerance of the bridge."""
    start = state.audio_start(leg)
    if state.mode != "full" or not state.bridged_ts or not start:
        return state, []
    late_ms = start - state.bridged_ts
    if late_ms <= state.policy.start_tolerance_s * 1000:
        return state, []
    return _issue(
        state,
        _decision(
            state,
            RECORDING_LATE,
            f"{leg} recording started {late_ms / 1000:.1f} s after the call connected "
            f"(tolerance {state.policy.start_tolerance_s:g} s)",
            now_ms,
            leg=leg,
            attrs={"late_ms": str(late_ms)},
        ),
    )


def _on_bridged(
    state: ConsentState, obs: CallSeen, now_ms: int
) -> tuple[ConsentState, list[ConsentDecision]]:
    if state.bridged_ts:
        return state, []
    state = replace(state, bridged_ts=obs.ts_ms or now_ms, bridged_seen_ms=now_ms)
    out: list[ConsentDecision] = []
    if state.mode == "full":
        notice = state.policy.consent_notice
        why = ""
        if state.notice_finished_ts and state.notice_status:
            why = f"consent notice {notice} did not play to the end ({state.notice_status})"
        elif state.notice_finished_ts > state.bridged_ts:
            why = f"consent notice {notice} finished only after the call connected"
        elif not state.notice_finished_ts and state.notice_started_ts:
            why = f"call connected while the consent notice {notice} was still playing"
        elif not state.notice_finished_ts:
            why = f"call connected without the consent notice {notice}"
        if why:
            state, out = _issue(state, _decision(state, CONSENT_MISSING, why, now_ms))
    for leg, _ in state.first_audio:
        state, more = _check_late(state, leg, now_ms)
        out += more
    return state, out


def _on_key(
    state: ConsentState, obs: CallSeen, now_ms: int
) -> tuple[ConsentState, list[ConsentDecision]]:
    policy = state.policy
    gap = obs.ts_ms - state.keys_last_ms
    keys = state.keys if state.keys and 0 <= gap <= policy.key_window_s * 1000 else ""
    keys = (keys + obs.digit)[-16:]
    state = replace(state, keys=keys, keys_last_ms=max(obs.ts_ms, state.keys_last_ms))
    if not keys.endswith(policy.record_key) or state.mode != "key_press":
        return state, []
    state = replace(state, keys="")
    if state.window_start_ms:
        return state, []  # already recording: a repeated key changes nothing
    state = replace(state, window_start_ms=obs.ts_ms or now_ms)
    return _issue(
        state,
        _decision(
            state,
            START_RECORDING,
            f"staff key {policy.record_key}: recording from here on",
            now_ms,
            actor="staff",
            window_start_ms=state.window_start_ms,
            attrs={"key": policy.record_key},
        ),
    )


def step(
    state: ConsentState | None, obs: Observation, now_ms: int, book: PolicyBook
) -> tuple[ConsentState | None, list[ConsentDecision]]:
    """Apply one observation.  ``None`` out means nothing to keep (an ``off`` call)."""
    if state is None:
        state = ConsentState(call_id=obs.call_id, policy=book.default)
    if isinstance(obs, AudioSeen):
        if state.audio_start(obs.leg) or obs.leg not in LEGS:
            return state, []
        state = replace(
            state, first_audio=(*state.first_audio, (obs.leg, obs.start_ms)), updated_ms=now_ms
        )
        if state.mode == "off":
            return None, []
        return _check_late(state, obs.leg, now_ms)

    if obs.event_id in state.seen_ids:
        return state, []
    state = replace(
        _with_department(state, obs, book),
        seen_ids=(*state.seen_ids, obs.event_id)[-SEEN_IDS_KEPT:],
        updated_ms=now_ms,
    )
    if state.mode == "off":
        return None, []
    if not state.direction and obs.direction:
        state = replace(state, direction=obs.direction)
    consent = obs.notice == state.policy.consent_notice
    if obs.type == "notice_started" and consent and not state.notice_started_ts:
        return replace(state, notice_started_ts=obs.ts_ms), []
    if obs.type == "notice_finished" and consent and not state.notice_finished_ts:
        return replace(state, notice_finished_ts=obs.ts_ms, notice_status=obs.status), []
    if obs.type == "bridged":
        return _on_bridged(state, obs, now_ms)
    if obs.type == "dtmf" and obs.leg == "staff" and len(obs.digit) == 1:
        return _on_key(state, obs, now_ms)
    if obs.type == "hangup" and not state.hangup_seen_ms:
        return replace(state, hangup_seen_ms=now_ms), []
    return state, []


def due(state: ConsentState, now_ms: int) -> tuple[ConsentState, list[ConsentDecision]]:
    """Full mode: report each leg with no audio once its time is up."""
    if state.mode != "full" or not state.bridged_seen_ms:
        return state, []
    deadline = state.bridged_seen_ms + int(state.policy.missing_after_s * 1000)
    if state.hangup_seen_ms:
        deadline = min(deadline, state.hangup_seen_ms + HANGUP_GRACE_MS)
    if now_ms < deadline:
        return state, []
    out: list[ConsentDecision] = []
    for leg in LEGS:
        if not state.audio_start(leg):
            state, more = _issue(
                state,
                _decision(
                    state,
                    RECORDING_MISSING,
                    f"no {leg} audio recorded {max(now_ms - state.bridged_seen_ms, 0) / 1000:.0f}"
                    " s after the call connected",
                    now_ms,
                    leg=leg,
                ),
            )
            out += more
    return state, out


def expire(state: ConsentState, now_ms: int, idle_limit_ms: int) -> ConsentState | None:
    """Forget a call quiet for ``idle_limit_ms`` (after its hangup: once its timers are done)."""
    if state.hangup_seen_ms and now_ms - state.hangup_seen_ms >= max(
        HANGUP_GRACE_MS * 2, min(idle_limit_ms, 60_000)
    ):
        return None
    if now_ms - state.updated_ms >= idle_limit_ms:
        return None
    return state
