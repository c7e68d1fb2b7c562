"""Closed vocabularies of the wire models (the ``enum`` of each JSON Schema field).

Plain strings so the pure core, the wire and ClickHouse (``LowCardinality(String)``) share them.
"""

from __future__ import annotations

ORIGINS = ("asterisk", "simulator")
DIRECTIONS = ("inbound", "outbound", "internal")
LEGS = ("caller", "staff")
CALL_EVENT_TYPES = (
    "call_started",  # the PBX accepted a new call (inbound: caller dialled in)
    "ringing",  # the staff endpoint rings; ringback / notice chosen
    "notice_started",  # a notice (e.g. recording consent) started playing to the caller
    "notice_finished",
    "answered",  # staff picked up
    "bridged",  # caller and staff legs joined
    "dtmf",  # a key pressed on ``leg``; ``digit`` holds it
    "playback_started",  # an announcement started (command-driven)
    "playback_finished",
    "recording_started",
    "recording_stopped",
    "hold",
    "unhold",
    "hangup",  # the call ended; ``hangup_cause`` says why
)
AUDIO_ENCODINGS = ("pcm_s16le", "ulaw", "alaw")
CDR_DISPOSITIONS = ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION")
COMMAND_ACTIONS = (
    "play",  # args: media (sound name), target (call|caller|staff)
    "hangup",  # args: cause
    "set_ringback",  # args: moh_class or tone
    "start_recording",
    "stop_recording",
    "originate",  # args: endpoint, caller_id_number, caller_id_name
)
COMMAND_STATUSES = ("applied", "duplicate", "failed", "rejected")
INCIDENT_CATEGORIES = ("profanity", "insult", "threat", "sexual_harassment", "shouting")
INCIDENT_ACTIONS = ("log", "warn", "end")
FEEDBACK_LABELS = ("confirmed", "rejected", "missed")
PROMOTION_ACTIONS = ("promote", "rollback")
#: what the text classifier says about one utterance
TEXT_CATEGORIES = ("clean", "profanity", "insult", "threat", "sexual_harassment")
# recordings (issue 5): per-leg files; "mixed" is reserved for a both-legs file
RECORDING_LEGS = (*LEGS, "mixed")
RECORDING_MODES = ("full", "key_press")  # "off" departments store nothing
RECORDING_FINISH_REASONS = ("final_chunk", "hangup", "idle")
AUDIT_ACTIONS = ("access", "delete")
AUDIT_RESULTS = ("granted", "refused", "failed", "deleted")

#: model name → field → allowed values
ENUMS: dict[str, dict[str, tuple[str, ...]]] = {
    "call_event": {
        "type": CALL_EVENT_TYPES,
        "leg": ("", *LEGS),
        "direction": DIRECTIONS,
        "origin": ORIGINS,
    },
    "cdr": {"direction": DIRECTIONS, "disposition": CDR_DISPOSITIONS, "origin": ORIGINS},
    "audio_chunk": {"leg": LEGS, "encoding": AUDIO_ENCODINGS, "origin": ORIGINS},
    "pbx_command": {"action": COMMAND_ACTIONS},
    "command_result": {"action": COMMAND_ACTIONS, "status": COMMAND_STATUSES},
    "call_summary": {"direction": DIRECTIONS, "origin": ORIGINS},
    "audio_leg_stats": {"leg": LEGS, "origin": ORIGINS},
    "incident": {"leg": LEGS, "category": INCIDENT_CATEGORIES, "action": INCIDENT_ACTIONS},
    "transcript": {"leg": LEGS, "category": TEXT_CATEGORIES, "origin": ORIGINS},
    "feedback": {"label": FEEDBACK_LABELS, "category": TEXT_CATEGORIES},
    "model_promotion": {"action": PROMOTION_ACTIONS},
    "recording": {
        "leg": RECORDING_LEGS,
        "mode": RECORDING_MODES,
        "finish_reason": RECORDING_FINISH_REASONS,
        "origin": ORIGINS,
    },
    "recording_audit": {
        "leg": ("", *RECORDING_LEGS),
        "action": AUDIT_ACTIONS,
        "result": AUDIT_RESULTS,
    },
}

#: fields that must be non-empty identifiers wherever they appear
ID_FIELDS = frozenset(
    {
        "event_id",
        "call_id",
        "command_id",
        "decision_id",
        "incident_id",
        "dead_letter_id",
        "recording_id",
        "audit_id",
    }
)
