"""Masking audit: an outbound call must present an office number, never a personal one.

Pure: numbers are compared as digits only (``02-120-1100`` == ``021201100`` ==
``+82 2-120-1100``), and what goes to logs is masked (:func:`mask_number`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

STREAM = "masking"
LEAKED = "personal_number_leaked"
MISSING = "no_presented_number"


def digits(number: str) -> str:
    """Digits of a number, Korean national form: ``+82 10-1234-5678`` → ``01012345678``."""
    only = "".join(ch for ch in number if ch.isdigit())
    if number.strip().startswith("+82") or only.startswith("0082"):
        only = only[2:] if only.startswith("82") else only[4:]
        only = "0" + only
    return only


def mask_number(number: str) -> str:
    """Keep the first 3 and last 2 digits: ``010-1234-5678`` → ``010******78``."""
    only = digits(number)
    if len(only) <= 5:
        return "*" * len(only)
    return only[:3] + "*" * (len(only) - 5) + only[-2:]


def is_mobile(number: str) -> bool:
    return digits(number).startswith(("010", "011", "016", "017", "018", "019"))


@dataclass(frozen=True)
class OutboundCall:
    call_id: str
    department: str
    presented: str


@dataclass(frozen=True)
class Finding:
    call_id: str
    department: str
    kind: str
    reason: str
    masked: str


def audit(call: OutboundCall, office_numbers: Iterable[str]) -> Finding | None:
    """A finding when the presented number is not one of the office numbers."""
    offices = {digits(n) for n in office_numbers if digits(n)}
    presented = digits(call.presented)
    if not presented:
        return Finding(
            call.call_id, call.department, MISSING, "outbound call presented no number", ""
        )
    if presented in offices:
        return None
    what = "a mobile number" if is_mobile(call.presented) else "a number"
    return Finding(
        call.call_id,
        call.department,
        LEAKED,
        f"outbound call presented {what} that is not an office number",
        mask_number(call.presented),
    )
