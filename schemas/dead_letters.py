"""Building the dead-letter record for a message a consumer could not use."""

from __future__ import annotations

import base64
import hashlib

from schemas.codec import MalformedMessage
from schemas.records import DeadLetter


def dead_letter_id(topic: str, partition: int, offset: int, consumer: str) -> str:
    """Stable id: the same rejection replayed after a crash gets the same id (idempotent sink)."""
    return hashlib.sha256(f"{topic}/{partition}/{offset}/{consumer}".encode()).hexdigest()[:32]


def make_dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    consumer: str,
    error: MalformedMessage,
    now_ms: int,
) -> DeadLetter:
    value = value or b""
    return DeadLetter(
        dead_letter_id=dead_letter_id(topic, partition, offset, consumer),
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        consumer=consumer,
        reason=error.reason,
        error_type=error.error_type,
        ts_ms=now_ms,
        key_b64=base64.b64encode(key or b"").decode(),
        payload_b64=base64.b64encode(value).decode(),
        payload_bytes=len(value),
    )


def payload_sha256(record: DeadLetter) -> str:
    return hashlib.sha256(base64.b64decode(record.payload_b64)).hexdigest()
