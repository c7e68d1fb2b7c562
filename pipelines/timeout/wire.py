"""Mapping between the wire models and the timeout rule's observations and decisions."""

from __future__ import annotations

from pipelines.core import timeout as core
from schemas.mapping import decision_id, hangup_command, play_command
from schemas.records import CallEvent, CommandResult, Decision, Incident, PbxCommand


def call_seen(event: CallEvent) -> core.CallSeen:
    return core.CallSeen(
        event_id=event.event_id,
        call_id=event.call_id,
        type=event.type,
        ts_ms=event.ts_ms,
        department=event.department,
        caller=event.caller,
        callee=event.callee,
        leg=event.leg,
        digit=event.digit,
    )


def result_seen(result: CommandResult) -> core.ResultSeen:
    return core.ResultSeen(
        call_id=result.call_id,
        command_id=result.command_id,
        action=result.action,
        status=result.status,
        ts_ms=result.ts_ms,
        detail=result.detail,
    )


def verdict_seen(incident: Incident) -> core.VerdictSeen | None:
    """Only a verdict that asks for the call to end may arm the rule."""
    if incident.action != "end":
        return None
    return core.VerdictSeen(
        call_id=incident.call_id,
        verdict_id=incident.incident_id,
        category=incident.category,
        ts_ms=incident.ts_ms,
    )


def command(decision: core.TimeoutDecision) -> PbxCommand | None:
    """The PBX command a decision carries out, if any (id deterministic per call and kind)."""
    if isinstance(decision, core.Notice):
        return play_command(decision, core.STREAM, core.NOTICE_MEDIA, "caller")
    if isinstance(decision, core.Terminate):
        return play_command(
            decision, core.STREAM, core.TERMINATION_MEDIA, decision.target, wait=True
        )
    if isinstance(decision, core.Hangup):
        return hangup_command(decision, core.STREAM, core.HANGUP_CAUSE)
    return None


def decision(made: core.TimeoutDecision) -> Decision:
    # once-per-call kinds get an id of their own (a replay replaces the row downstream); a
    # logged key press may happen several times, so its time is part of its id
    at = made.at_ms if isinstance(made, core.KeyBeforeLimit) else 0
    return Decision(
        decision_id=decision_id(core.STREAM, made.call_id, made.kind, at),
        call_id=made.call_id,
        stream=core.STREAM,
        kind=made.kind,
        reason=made.reason,
        ts_ms=made.at_ms,
        department=made.department,
        actor=made.actor,
        command_id=made.command_id,
        attrs=dict(made.attrs),
    )
