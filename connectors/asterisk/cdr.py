"""AMI ``Cdr`` events → :class:`Cdr` records, joined to the call flow's CallGuard call id.

**How a CDR finds its call.**  When a call starts, the call flow writes a tag into
``CDR(userfield)`` of the channel that entered the dialplan first (the CDR's *Party A*: the
citizen's channel inbound, the staff phone's channel outbound).  The tag is
``cg1:`` + URL-encoded ``call_id``, direction, department and the numbers CallGuard uses.  The
userfield was chosen over ``accountcode`` because Asterisk truncates account codes to 19
characters (``AST_MAX_ACCOUNT_CODE`` 20) and a call id is 37; the userfield holds 255.  When
both parties carry a userfield Asterisk joins them with ``;``, so the parser looks at each part.
CDRs without a tag (snoop and externalMedia helper channels, calls CallGuard did not handle)
map to ``None``.

**Times.**  ``cdr_manager`` prints whole seconds in the PBX's local time zone; pass ``tz`` when
that is not this process's zone.

**Which numbers win.**  Asterisk's disposition says ANSWERED once the connector answers the
caller to play the consent notice.  :func:`enrich_cdr` therefore replaces disposition, answer
time and talk time with what the call flow saw (:class:`~connectors.asterisk.model.CallFacts`,
millisecond precision) whenever it still knows the call; a CDR arriving after a connector
restart keeps the PBX's values.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from urllib.parse import parse_qs, urlencode

from connectors.asterisk.model import ORIGIN, CallFacts, hangup_cause
from schemas.records import Cdr
from schemas.vocabulary import CDR_DISPOSITIONS, DIRECTIONS

TAG_PREFIX = "cg1:"
#: a CDR start further than this from the call flow's start is not trusted (time zone error)
PBX_CLOCK_TOLERANCE_MS = 60_000
USERFIELD_MAX = 255

_DISPOSITION_ALIASES = {
    "ANSWER": "ANSWERED",
    "NOANSWER": "NO ANSWER",
    "NO_ANSWER": "NO ANSWER",
    "CANCEL": "NO ANSWER",
    "CHANUNAVAIL": "FAILED",
    "CONGESTED": "CONGESTION",
}
#: when two CDRs of one call disagree, the stronger disposition wins
_DISPOSITION_RANK = {"ANSWERED": 4, "BUSY": 3, "CONGESTION": 2, "FAILED": 1, "NO ANSWER": 0}


@dataclass(frozen=True)
class CdrTag:
    """What the call flow stores in ``CDR(userfield)``."""

    call_id: str
    direction: str
    department: str = ""
    caller: str = ""
    callee: str = ""
    presented_caller_id: str = ""

    def encode(self) -> str:
        fields = {
            "call_id": self.call_id,
            "dir": self.direction,
            "dept": self.department,
            "caller": self.caller,
            "callee": self.callee,
            "pcid": self.presented_caller_id,
        }
        text = TAG_PREFIX + urlencode(fields)
        if len(text) > USERFIELD_MAX:  # never lose the call id to truncation
            text = TAG_PREFIX + urlencode({k: fields[k] for k in ("call_id", "dir", "dept")})
        return text


def parse_cdr_tag(userfield: str) -> CdrTag | None:
    for part in (userfield or "").split(";"):
        part = part.strip()
        if not part.startswith(TAG_PREFIX):
            continue
        values = {
            k: v[0] for k, v in parse_qs(part[len(TAG_PREFIX) :], keep_blank_values=True).items()
        }
        call_id, direction = values.get("call_id", ""), values.get("dir", "")
        if call_id and direction in DIRECTIONS:
            return CdrTag(
                call_id=call_id,
                direction=direction,
                department=values.get("dept", ""),
                caller=values.get("caller", ""),
                callee=values.get("callee", ""),
                presented_caller_id=values.get("pcid", ""),
            )
    return None


def normalise_disposition(raw: str) -> str:
    """Asterisk's disposition text → one of ``CDR_DISPOSITIONS`` (unknown → FAILED)."""
    value = " ".join((raw or "").upper().split())
    value = _DISPOSITION_ALIASES.get(value, value)
    return value if value in CDR_DISPOSITIONS else "FAILED"


def parse_cdr_time(value: str, tz: tzinfo | None = None) -> int:
    """``2026-11-03 10:15:02`` (optionally ``.ffffff``) → epoch ms; empty → 0.

    ``tz`` None means this machine's local time zone, which is what ``cdr_manager`` uses
    when the PBX runs on the same host.
    """
    value = (value or "").strip()
    if not value:
        return 0
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f"):
        try:
            moment = datetime.strptime(value, fmt)
        except ValueError:
            continue
        if tz is not None:
            moment = moment.replace(tzinfo=tz)
        return max(int(moment.timestamp() * 1000), 0)
    raise ValueError("unrecognised CDR time format")


def _seconds(value: str | None) -> float:
    try:
        return max(float(value or 0), 0.0)
    except ValueError:
        return 0.0


def cdr_to_record(
    event: Mapping[str, str], origin: str = ORIGIN, tz: tzinfo | None = None
) -> Cdr | None:
    """Map one AMI ``Cdr`` event; None for other events, untagged CDRs or unreadable times."""
    if event.get("Event", "").lower() != "cdr":
        return None
    tag = parse_cdr_tag(event.get("UserField", ""))
    if tag is None:
        return None
    try:
        start_ms = parse_cdr_time(event.get("StartTime", ""), tz)
        answer_ms = parse_cdr_time(event.get("AnswerTime", ""), tz)
        end_ms = parse_cdr_time(event.get("EndTime", ""), tz)
    except ValueError:
        return None
    if not start_ms and not end_ms:
        return None
    start_ms = start_ms or end_ms
    end_ms = max(end_ms, start_ms)
    disposition = normalise_disposition(event.get("Disposition", ""))
    billsec = _seconds(event.get("BillableSeconds"))
    if disposition != "ANSWERED":
        answer_ms, billsec = 0, 0.0
    cause = event.get("HangupCause", "")  # only with a cdr_manager.conf [mappings] entry
    return Cdr(
        call_id=tag.call_id,
        direction=tag.direction,
        department=tag.department,
        caller=tag.caller or event.get("Source", ""),
        callee=tag.callee or event.get("Destination", ""),
        presented_caller_id=tag.presented_caller_id,
        start_ms=start_ms,
        answer_ms=answer_ms,
        end_ms=end_ms,
        duration_s=_seconds(event.get("Duration")),
        billsec_s=billsec,
        disposition=disposition,
        hangup_cause=hangup_cause(cause) if cause else "",
        origin=origin,
    )


def _copy(cdr: Cdr, **changes: object) -> Cdr:
    data = cdr.asdict()
    data.update(changes)
    return Cdr(**data)


def merge_cdrs(a: Cdr, b: Cdr) -> Cdr:
    """One record for a call Asterisk split into several CDRs (e.g. a channel re-bridged)."""
    answers = [ms for ms in (a.answer_ms, b.answer_ms) if ms]
    start, end = min(a.start_ms, b.start_ms), max(a.end_ms, b.end_ms)
    disposition = max(a.disposition, b.disposition, key=lambda d: _DISPOSITION_RANK.get(d, 0))
    return _copy(
        a,
        start_ms=start,
        end_ms=end,
        answer_ms=min(answers) if answers else 0,
        duration_s=max(a.duration_s, b.duration_s, (end - start) / 1000),
        billsec_s=max(a.billsec_s, b.billsec_s),
        disposition=disposition,
        hangup_cause=b.hangup_cause or a.hangup_cause,
    )


def enrich_cdr(cdr: Cdr, facts: CallFacts | None) -> Cdr:
    """The PBX's CDR completed with the call flow's view (see module doc)."""
    if facts is None:
        return cdr
    start = cdr.start_ms
    if facts.started_ms:
        # The PBX's start (channel creation) precedes StasisStart by milliseconds; one far off
        # means the CDR time zone is misconfigured, and then the call flow's clock wins.
        near = abs(cdr.start_ms - facts.started_ms) <= PBX_CLOCK_TOLERANCE_MS
        start = min(cdr.start_ms, facts.started_ms) if near else facts.started_ms
    end = facts.ended_ms or cdr.end_ms
    answer = facts.answered_ms if facts.answered_ms else 0
    return _copy(
        cdr,
        direction=facts.direction,
        department=facts.department,
        caller=facts.caller,
        callee=facts.callee,
        presented_caller_id=facts.presented_caller_id,
        start_ms=start,
        answer_ms=answer,
        end_ms=max(end, start),
        duration_s=max(end - start, 0) / 1000,
        billsec_s=max(end - answer, 0) / 1000 if answer else 0.0,
        disposition=facts.disposition,
        hangup_cause=facts.hangup_cause or cdr.hangup_cause,
    )


class CdrCollector:
    """Holds each call's CDRs for ``grace_ms`` after the last one, then emits one record.

    Asterisk may write several CDRs for one call, shortly after one another; the table keeps
    one row per call id, so they are merged here.  A straggler arriving after the record went
    out is merged with it and the corrected record is emitted again (the sink replaces it).
    """

    def __init__(self, grace_ms: int = 2000, remembered: int = 10_000) -> None:
        self.grace_ms = grace_ms
        self.remembered = remembered
        self._pending: dict[str, tuple[Cdr, int]] = {}
        self._emitted: OrderedDict[str, Cdr] = OrderedDict()

    def add(self, cdr: Cdr, now_ms: int) -> None:
        held = self._pending.get(cdr.call_id)
        if held is not None:
            cdr = merge_cdrs(held[0], cdr)
        elif cdr.call_id in self._emitted:
            cdr = merge_cdrs(self._emitted[cdr.call_id], cdr)
        self._pending[cdr.call_id] = (cdr, now_ms)

    def due(self, now_ms: int, facts_of: Callable[[str], CallFacts | None]) -> list[Cdr]:
        ready = [cid for cid, (_, t) in self._pending.items() if now_ms - t >= self.grace_ms]
        return [self._release(cid, facts_of) for cid in ready]

    def drain(self, facts_of: Callable[[str], CallFacts | None]) -> list[Cdr]:
        return [self._release(cid, facts_of) for cid in list(self._pending)]

    def _release(self, call_id: str, facts_of: Callable[[str], CallFacts | None]) -> Cdr:
        cdr, _ = self._pending.pop(call_id)
        self._emitted[call_id] = cdr
        self._emitted.move_to_end(call_id)
        while len(self._emitted) > self.remembered:
            self._emitted.popitem(last=False)
        return enrich_cdr(cdr, facts_of(call_id))

    def __len__(self) -> int:
        return len(self._pending)
