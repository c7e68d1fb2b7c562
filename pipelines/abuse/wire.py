"""Mapping between the wire models and the abuse rule's observations and decisions."""

from __future__ import annotations

from pipelines.core import abuse as core
from schemas.mapping import decision_id, hangup_command, play_command
from schemas.records import CallEvent, CommandResult, Decision, Incident, PbxCommand, Transcript


def call_seen(event: CallEvent) -> core.CallSeen:
    return core.CallSeen(
        event_id=event.event_id,
        call_id=event.call_id,
        type=event.type,
        ts_ms=event.ts_ms,
        department=event.department,
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
    )


def utterance_seen(transcript: Transcript) -> core.UtteranceSeen:
    return core.UtteranceSeen(
        utterance_id=transcript.utterance_id,
        call_id=transcript.call_id,
        leg=transcript.leg,
        start_ms=transcript.start_ms,
        end_ms=transcript.end_ms,
        category=transcript.category,
        score=transcript.score,
        excerpt=transcript.text[:300],
        model_version=transcript.classifier_version,
        shouting=transcript.shouting,
        excess_db=max(transcript.loudness_dbfs - transcript.baseline_dbfs, 0.0),
    )


def incident(found: core.IncidentFound) -> Incident:
    return Incident(
        incident_id=found.incident_id,
        call_id=found.call_id,
        department=found.department,
        leg=found.leg,
        category=found.category,
        score=found.score,
        action=found.action,
        evidence=found.evidence,
        model_version=found.model_version,
        utterance_start_ms=found.start_ms,
        utterance_end_ms=found.end_ms,
        ts_ms=found.at_ms,
        utterance_id=found.utterance_id,
        text_score=found.text_score,
        shouting=found.shouting,
    )


def command(made: core.AbuseDecision) -> PbxCommand | None:
    """The PBX command a decision carries out, if any (ids deterministic per call and purpose)."""
    if isinstance(made, core.Warn):
        return play_command(made, core.STREAM, core.WARNING_MEDIA, "caller")
    if isinstance(made, core.Terminate):
        return play_command(made, core.STREAM, core.TERMINATION_MEDIA, made.target, wait=True)
    if isinstance(made, core.Hangup):
        return hangup_command(made, core.STREAM, core.HANGUP_CAUSE)
    return None


def decision(made: core.AbuseDecision) -> Decision:
    # ids derive from what the decision is about, never from the time, so a replay after a
    # crash collapses onto the same row downstream
    what = made.kind
    if isinstance(made, core.Warn):
        what = f"{made.kind}-{made.number}"
    elif isinstance(made, core.Alert | core.Dismissed):
        what = f"{made.kind}-{made.incident_id}"
    return Decision(
        decision_id=decision_id(core.STREAM, made.call_id, what, 0),
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
