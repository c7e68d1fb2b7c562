"""Thin faust wiring for the masking audit (the rule: ``pipelines.core.masking``).

Reads ``pbx.cdr``; for every outbound CDR whose presented number is not an office number of
the directory it records a decision (stream ``masking``, kind ``personal_number_leaked``) and
logs a WARNING that shows the number masked, never in full.  Stateless; the decision id is
deterministic per call, so a replayed CDR (the connector re-emits a corrected CDR) keeps one row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import faust
from faust.types import StreamT

from connectors.kafka.topics import TopicCatalog
from pipelines.core import masking as core
from pipelines.streaming import Clock, DeadLetters, decoded, guarded, raw_topic, send_record
from schemas.mapping import decision_id
from schemas.records import Cdr, Decision

log = logging.getLogger(__name__)

CONSUMER = "masking"


def finding_for(cdr: Cdr, office_numbers: Iterable[str]) -> core.Finding | None:
    """Outbound CDRs only; a call that failed before it presented anything is not a leak."""
    if cdr.direction != "outbound":
        return None
    if not cdr.presented_caller_id.strip() and cdr.disposition == "FAILED":
        return None
    return core.audit(
        core.OutboundCall(cdr.call_id, cdr.department, cdr.presented_caller_id), office_numbers
    )


def decision(finding: core.Finding, now_ms: int) -> Decision:
    return Decision(
        decision_id=decision_id(core.STREAM, finding.call_id, finding.kind, 0),
        call_id=finding.call_id,
        stream=core.STREAM,
        kind=finding.kind,
        reason=finding.reason,
        ts_ms=now_ms,
        department=finding.department,
        attrs={"presented_masked": finding.masked} if finding.masked else {},
    )


def register(
    app: faust.App,
    catalog: TopicCatalog,
    dead_letters: DeadLetters,
    clock: Clock,
    *,
    office_numbers: Iterable[str],
) -> Any:
    """``office_numbers``: every number the city may present (the directory's office numbers,
    e.g. ``[d.office_number for d in directory.departments.values()]``)."""
    offices = tuple(office_numbers)
    source = raw_topic(app, catalog.cdr, partitions=catalog.partitions)
    decisions = raw_topic(app, catalog.decisions)

    async def on_cdr(cdr: Cdr) -> None:
        finding = finding_for(cdr, offices)
        if finding is None:
            return
        log.warning(
            "masking audit: call %s (department %s): %s (presented %s)",
            finding.call_id,
            finding.department or "?",
            finding.kind,
            finding.masked or "nothing",
        )
        await send_record(decisions, finding.call_id, decision(finding, clock()))

    @app.agent(source, name="callguard.masking")
    async def audit_masking(stream: StreamT) -> None:
        async for event, record in decoded(stream.events(), Cdr, dead_letters, CONSUMER):
            await guarded(event, dead_letters, CONSUMER, on_cdr(record))

    return audit_masking
