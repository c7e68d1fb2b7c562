"""Mapping functions between wire models and the pure core's values."""

from __future__ import annotations

import uuid
from typing import Protocol

from pipelines.core import audio, calls
from schemas.records import (
    AudioChunk,
    AudioLegStats,
    CallEvent,
    CallSummary,
    Decision,
    PbxCommand,
)

_DECISION_NS = uuid.UUID("7b0c9a52-3a4e-4f0e-9b8e-0c6a7f5d2e11")


def call_observation(event: CallEvent) -> calls.CallObservation:
    return calls.CallObservation(
        event_id=event.event_id,
        call_id=event.call_id,
        type=event.type,
        ts_ms=event.ts_ms,
        direction=event.direction,
        department=event.department,
        caller=event.caller,
        callee=event.callee,
        origin=event.origin,
        digit=event.digit,
        leg=event.leg,
        hangup_cause=event.hangup_cause,
    )


def call_summary(ended: calls.CallEnded) -> CallSummary:
    return CallSummary(**ended.__dict__)


class CommandDecision(Protocol):
    """A core decision that carries out a PBX command (its id is deterministic per call)."""

    @property
    def command_id(self) -> str: ...
    @property
    def call_id(self) -> str: ...
    @property
    def at_ms(self) -> int: ...
    @property
    def reason(self) -> str: ...


def play_command(
    made: CommandDecision, stream: str, media: str, target: str, *, wait: bool = False
) -> PbxCommand:
    """Play ``media`` to ``target``; with ``wait`` the PBX reports when playback finished."""
    args = {"media": media, "target": target}
    if wait:
        args["wait"] = "true"
    return _command(made, stream, "play", args)


def hangup_command(made: CommandDecision, stream: str, cause: str) -> PbxCommand:
    return _command(made, stream, "hangup", {"cause": cause})


def _command(made: CommandDecision, stream: str, action: str, args: dict[str, str]) -> PbxCommand:
    return PbxCommand(
        command_id=made.command_id,
        call_id=made.call_id,
        action=action,
        issued_ms=made.at_ms,
        issued_by=stream,
        reason=made.reason,
        args=args,
    )


def decision_id(stream: str, call_id: str, kind: str, ts_ms: int) -> str:
    """Deterministic, so a decision re-made after a crash replaces its first copy downstream."""
    return str(uuid.uuid5(_DECISION_NS, f"{stream}/{call_id}/{kind}/{ts_ms}"))


def anomaly_decision(stream: str, anomaly: calls.Anomaly, now_ms: int) -> Decision:
    return Decision(
        decision_id=decision_id(stream, anomaly.call_id, anomaly.kind, now_ms),
        call_id=anomaly.call_id,
        stream=stream,
        kind=anomaly.kind,
        reason=anomaly.reason,
        ts_ms=now_ms,
    )


def chunk_observation(chunk: AudioChunk) -> audio.ChunkObservation:
    return audio.ChunkObservation(
        call_id=chunk.call_id,
        leg=chunk.leg,
        seq=chunk.seq,
        start_ms=chunk.start_ms,
        duration_ms=chunk.duration_ms,
        lost_packets=chunk.lost_packets,
        final=chunk.final,
        origin=chunk.origin,
    )


def leg_stats(done: audio.LegFinished, now_ms: int) -> AudioLegStats:
    return AudioLegStats(**done.__dict__, ts_ms=now_ms)
