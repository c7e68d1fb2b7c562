"""Small shared vocabulary of the connector: hangup causes, dispositions, what a call was.

Asterisk reports why a channel ended as a Q.850 cause code; CallGuard's events and CDRs carry
a word instead (``normal``, ``busy``, ``no_answer`` …) so that streams and reports need not
know telephony codes.  One table here keeps the ARI events and the AMI CDRs consistent.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

ORIGIN = "asterisk"

#: Q.850 cause code → CallGuard hangup cause (unknown codes become ``cause_<n>``)
CAUSES: dict[int, str] = {
    0: "normal",  # "not defined": Asterisk uses it for channels it simply tears down
    1: "unallocated",
    3: "unallocated",  # no route to destination
    16: "normal",
    17: "busy",
    18: "no_answer",  # no user responding
    19: "no_answer",
    20: "unavailable",  # subscriber absent (phone not registered)
    21: "rejected",
    26: "answered_elsewhere",
    27: "failure",  # destination out of order
    28: "unallocated",  # invalid number format
    31: "normal",  # normal, unspecified
    34: "congestion",
    38: "failure",
    41: "failure",
    42: "congestion",
    58: "failure",
    127: "failure",
}

#: CallGuard hangup cause → ARI ``DELETE /channels/{id}?reason=`` value
ARI_REASONS: dict[str, str] = {
    "normal": "normal",
    "busy": "busy",
    "congestion": "congestion",
    "no_answer": "no_answer",
    "rejected": "rejected",
    "unallocated": "unallocated",
    "failure": "failure",
}


def hangup_cause(code: object) -> str:
    """CallGuard cause for an ARI/AMI cause code (int or numeric string); ``normal`` if absent."""
    if code is None or code == "":
        return "normal"
    try:
        number = int(str(code).strip())
    except ValueError:
        return "normal"
    return CAUSES.get(number, f"cause_{number}")


def ari_reason(cause: str) -> str:
    """The ARI hangup ``reason`` closest to a CallGuard cause (``normal`` for our own words)."""
    return ARI_REASONS.get(cause, "normal")


def disposition_for(answered: bool, cause: str) -> str:
    """CDR disposition (schemas.vocabulary.CDR_DISPOSITIONS) from what the call flow saw.

    Asterisk's own disposition says ANSWERED as soon as the connector answers the caller to
    play the notice, which is not what a report means by "answered": only a staff pickup is.
    """
    if answered:
        return "ANSWERED"
    if cause in ("busy", "rejected"):
        return "BUSY"
    if cause == "congestion":
        return "CONGESTION"
    if cause in ("unallocated", "failure", "unavailable") or cause.startswith("cause_"):
        return "FAILED"
    return "NO ANSWER"


@dataclass(frozen=True)
class CallFacts:
    """What the call flow knows about a finished call; completes the PBX's CDR (ms precision)."""

    call_id: str
    direction: str
    department: str
    caller: str
    callee: str
    presented_caller_id: str
    started_ms: int
    answered_ms: int  # staff and citizen connected (bridged); 0 when never
    ended_ms: int
    hangup_cause: str
    disposition: str


def wall_ms() -> int:
    """Epoch milliseconds (UTC); the one place the connector reads the wall clock by default."""
    return time.time_ns() // 1_000_000


def new_call_id() -> str:
    return f"call-{uuid.uuid4().hex}"


def new_event_id() -> str:
    return uuid.uuid4().hex
