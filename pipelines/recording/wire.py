"""Mapping between the wire models and the consent check's and recording assembly's values."""

from __future__ import annotations

from typing import Any

from pipelines.core import consent
from pipelines.core import recording as rec
from schemas.mapping import decision_id
from schemas.records import AudioChunk, CallEvent, Cdr, Decision, Recording


def consent_seen(event: CallEvent) -> consent.CallSeen:
    return consent.CallSeen(
        event_id=event.event_id,
        call_id=event.call_id,
        type=event.type,
        ts_ms=event.ts_ms,
        department=event.department,
        direction=event.direction,
        leg=event.leg,
        digit=event.digit,
        notice=event.attrs.get("notice", ""),
        status=event.attrs.get("status", ""),
    )


def call_seen(event: CallEvent) -> rec.CallSeen:
    return rec.CallSeen(
        call_id=event.call_id,
        type=event.type,
        ts_ms=event.ts_ms,
        department=event.department,
        direction=event.direction,
    )


def chunk_seen(chunk: AudioChunk, offset: int) -> rec.ChunkSeen:
    return rec.ChunkSeen(
        call_id=chunk.call_id,
        leg=chunk.leg,
        seq=chunk.seq,
        start_ms=chunk.start_ms,
        duration_ms=chunk.duration_ms,
        lost_packets=chunk.lost_packets,
        final=chunk.final,
        offset=offset,
        origin=chunk.origin,
    )


def cdr_seen(cdr: Cdr) -> rec.CdrSeen:
    return rec.CdrSeen(
        call_id=cdr.call_id,
        billsec_s=cdr.billsec_s,
        answer_ms=cdr.answer_ms,
        end_ms=cdr.end_ms,
        disposition=cdr.disposition,
    )


def consent_decision(made: consent.ConsentDecision) -> Decision:
    attrs = dict(made.attrs)
    if made.leg:
        attrs["leg"] = made.leg
    if made.window_start_ms:
        attrs["window_start_ms"] = str(made.window_start_ms)
    return Decision(
        decision_id=decision_id(consent.STREAM, made.call_id, made.key, 0),
        call_id=made.call_id,
        stream=consent.STREAM,
        kind=made.kind,
        reason=made.reason,
        ts_ms=made.at_ms,
        department=made.department,
        actor=made.actor,
        attrs=attrs,
    )


def recording_decision(made: rec.RecordingDecision) -> Decision:
    attrs = dict(made.attrs)
    if made.leg:
        attrs["leg"] = made.leg
    return Decision(
        decision_id=decision_id(rec.STREAM, made.call_id, made.key, 0),
        call_id=made.call_id,
        stream=rec.STREAM,
        kind=made.kind,
        reason=made.reason,
        ts_ms=made.at_ms,
        department=made.department,
        attrs=attrs,
    )


def row_fields(row: rec.RecordingRow) -> dict[str, Any]:
    """The leg's :class:`Recording` fields (also written into the sealed file's header)."""
    stored = row.stored
    check = row.completeness
    return {
        "recording_id": rec.recording_id(row.call_id, row.leg),
        "call_id": row.call_id,
        "leg": row.leg,
        "department": row.department,
        "mode": row.mode,
        "started_ms": stored.started_ms,
        "duration_ms": stored.duration_ms,
        "sample_rate": stored.sample_rate,
        "chunk_count": stored.chunk_count,
        "duplicate_chunks": stored.duplicate_chunks,
        "missing_chunks": stored.missing_chunks,
        "lost_packets": stored.lost_packets,
        "gap_count": stored.gap_count,
        "gap_duration_ms": stored.gap_duration_ms,
        "gaps": stored.gaps,
        "finish_reason": row.finish_reason,
        "sha256": stored.sha256,
        "key_id": stored.key_id,
        "path": stored.path,
        "size_bytes": stored.size_bytes,
        "format": stored.format,
        "retention_until_ms": stored.retention_until_ms,
        "ts_ms": row.ts_ms,
        "cdr_seen": check is not None,
        "cdr_billsec_s": check.cdr_billsec_s if check else 0.0,
        "expected_duration_ms": check.expected_ms if check else 0,
        "shortfall_duration_ms": check.shortfall_ms if check else 0,
        "shortfall": bool(check and check.short),
        "origin": row.origin or "asterisk",
    }


def recording(row: rec.RecordingRow) -> Recording:
    return Recording(**row_fields(row))
