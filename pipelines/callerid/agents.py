"""Thin faust wiring for outbound caller-ID branding (the plan: ``pipelines.core.callerid``).

On an outbound ``call_started`` event: look the department up, ask the platform lookup about
the callee, send a branded-call display request to the branded-call connector and, for iOS or
unknown callees, a KakaoTalk AlimTalk request to the AlimTalk connector; then record one
decision (stream ``callerid``, kind = the branding mode, attrs = what each connector said) so
answer rates can be compared by mode.  Request and decision ids are deterministic per call,
so a replayed event repeats the same ``Idempotency-Key`` and keeps one decision row.

The PBX side (presenting the office number and department name in SIP From /
P-Asserted-Identity) is the Asterisk connector's: see ``connectors/asterisk/session.py``.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import StreamT

from connectors.kafka.topics import TopicCatalog
from connectors.notify import requests
from connectors.notify.http import Notifier, SendResult
from pipelines.callerid.config import BrandingConfig
from pipelines.core import callerid as core
from pipelines.streaming import Clock, DeadLetters, decoded, guarded, raw_topic, send_record
from schemas.mapping import decision_id
from schemas.records import CallEvent, Decision

CONSUMER = "callerid"


async def brand(
    record: CallEvent,
    config: BrandingConfig,
    display: Notifier,
    kakao: Notifier,
    now_ms: int,
) -> Decision | None:
    """Send what an outbound call needs; the decision to record (None: not for us)."""
    if record.type != "call_started" or record.direction != "outbound":
        return None
    dept = config.departments.get(record.department)
    if dept is None:
        return None
    callee = record.callee
    platform = config.platforms(callee)
    made = core.plan(platform)
    office = record.presented_caller_id or dept.office_number
    attrs = {"platform": platform}
    results: dict[str, SendResult] = {}
    try:
        if made.branded_display:
            body = requests.branded_call(
                request_id=f"brand-{record.call_id}",
                call_id=record.call_id,
                requested_ms=now_ms,
                callee_number=callee,
                caller_number=office,
                display_name=core.display_name(config.org_prefix, dept.name),
                info_text=dept.info,
                department=dept.code,
                valid_for_s=config.valid_for_s,
            )
            results["display"] = await display.send(body)
        if made.kakao:
            body = requests.alimtalk(
                request_id=f"kakao-{record.call_id}",
                call_id=record.call_id,
                requested_ms=now_ms,
                recipient_number=callee,
                department=core.display_name(config.org_prefix, dept.name),
                purpose=dept.purpose,
                callback_number=dept.office_number,
                platform="ios" if platform == "ios" else "unknown",
                template_code=config.template_code,
            )
            results["kakao"] = await kakao.send(body)
    except requests.InvalidRequest as exc:
        # e.g. a callee "number" with no digits: nothing can be sent for this call
        results.setdefault("display", SendResult("rejected", str(exc)))
    for name, result in results.items():
        attrs[name] = result.status
        if result.detail and not result.ok:
            attrs[f"{name}_detail"] = result.detail
    return Decision(
        decision_id=decision_id(core.STREAM, record.call_id, "branding", 0),
        call_id=record.call_id,
        stream=core.STREAM,
        kind=made.mode,
        reason=made.reason,
        ts_ms=now_ms,
        department=dept.code,
        attrs=attrs,
    )


def register(
    app: faust.App,
    catalog: TopicCatalog,
    dead_letters: DeadLetters,
    clock: Clock,
    *,
    config: BrandingConfig,
    display: Notifier,
    kakao: Notifier,
) -> Any:
    """``display`` / ``kakao``: the two connectors (``connectors.notify.http.notifier``);
    whoever creates them closes them when the worker stops."""
    source = raw_topic(app, catalog.call_events, partitions=catalog.partitions)
    decisions = raw_topic(app, catalog.decisions)

    async def on_event(record: CallEvent) -> None:
        decision = await brand(record, config, display, kakao, clock())
        if decision is not None:
            await send_record(decisions, record.call_id, decision)

    @app.agent(source, name="callguard.callerid")
    async def brand_outbound(stream: StreamT) -> None:
        async for event, record in decoded(stream.events(), CallEvent, dead_letters, CONSUMER):
            await guarded(event, dead_letters, CONSUMER, on_event(record))

    return brand_outbound
