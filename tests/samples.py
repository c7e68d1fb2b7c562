"""One valid instance of every wire model, shared by unit, agent and integration tests."""

from __future__ import annotations

import base64

from schemas.records import (
    AudioChunk,
    AudioLegStats,
    CallEvent,
    CallSummary,
    Cdr,
    CommandResult,
    DeadLetter,
    Decision,
    Incident,
    PbxCommand,
    WireRecord,
)

T0 = 1_795_000_000_000


def call_event(
    call_id: str = "c-1",
    event_id: str = "e-1",
    type_: str = "call_started",
    ts_ms: int = T0,
    **kw: object,
) -> CallEvent:
    return CallEvent(
        event_id=event_id,
        call_id=call_id,
        type=type_,
        ts_ms=ts_ms,
        direction="inbound",
        department="traffic",
        caller="010-0000-1234",
        callee="2001",
        origin="simulator",
        **kw,
    )


def audio_chunk(
    call_id: str = "c-1", seq: int = 0, final: bool = False, leg: str = "caller"
) -> AudioChunk:
    return AudioChunk(
        call_id=call_id,
        leg=leg,
        seq=seq,
        start_ms=T0 + seq * 200,
        duration_ms=200,
        sample_rate=8000,
        encoding="pcm_s16le",
        channels=1,
        payload_b64=base64.b64encode(b"\x00\x01" * 1600).decode(),
        final=final,
        origin="simulator",
    )


SAMPLES: dict[str, WireRecord] = {
    "call_event": call_event(attrs={"channel": "PJSIP/caller-0001"}),
    "cdr": Cdr(
        call_id="c-1",
        direction="inbound",
        department="traffic",
        caller="010-0000-1234",
        callee="2001",
        presented_caller_id="02-120",
        start_ms=T0,
        answer_ms=T0 + 5000,
        end_ms=T0 + 65000,
        duration_s=65.0,
        billsec_s=60.0,
        disposition="ANSWERED",
        hangup_cause="normal",
        origin="simulator",
    ),
    "audio_chunk": audio_chunk(),
    "pbx_command": PbxCommand(
        command_id="cmd-1",
        call_id="c-1",
        action="play",
        issued_ms=T0,
        issued_by="timeout",
        reason="20-minute limit",
        args={"media": "sound:cg-timeout-notice"},
    ),
    "command_result": CommandResult(
        command_id="cmd-1", call_id="c-1", action="play", status="applied", ts_ms=T0 + 40
    ),
    "decision": Decision(
        decision_id="d-1",
        call_id="c-1",
        stream="timeout",
        kind="armed",
        reason="malicious",
        ts_ms=T0,
        department="traffic",
        attrs={"limit_s": "1200"},
    ),
    "call_summary": CallSummary(
        call_id="c-1",
        direction="inbound",
        department="traffic",
        caller="010-0000-1234",
        callee="2001",
        started_ms=T0,
        answered_ms=T0 + 5000,
        ended_ms=T0 + 65000,
        talk_s=60.0,
        events=7,
        duplicate_events=0,
        out_of_order_events=0,
        dtmf_digits="*9",
        hangup_cause="normal",
        origin="simulator",
    ),
    "audio_leg_stats": AudioLegStats(
        call_id="c-1",
        leg="caller",
        chunks=300,
        duplicate_chunks=1,
        missing_chunks=2,
        lost_packets=3,
        audio_duration_ms=60000,
        first_ms=T0,
        last_ms=T0 + 60000,
        ts_ms=T0 + 61000,
        origin="simulator",
    ),
    "incident": Incident(
        incident_id="i-1",
        call_id="c-1",
        department="traffic",
        leg="caller",
        category="insult",
        score=0.93,
        action="warn",
        evidence="[masked]",
        model_version="v1",
        utterance_start_ms=T0 + 9000,
        utterance_end_ms=T0 + 11000,
        ts_ms=T0 + 11500,
    ),
    "dead_letter": DeadLetter(
        dead_letter_id="dl-1",
        source_topic="pbx.call-events",
        source_partition=0,
        source_offset=42,
        consumer="calls",
        reason="call_event: not JSON",
        error_type="json",
        ts_ms=T0,
        key_b64="YzE=",
        payload_b64="e30=",
        payload_bytes=2,
    ),
}
