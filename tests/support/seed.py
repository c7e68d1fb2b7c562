"""Seeded, realistic months of CallGuard rows in ClickHouse, for dashboards, reports, notebooks.

Deterministic (one seeded RNG per call), written through the real migrations and the same
wire → Arrow row mapping the sink uses (``schemas.rows``), so the tables look as if the
pipeline had filled them.  What a month holds:

* every department of ``pipelines/config/departments.toml``, more calls on working days,
  calls at lunch, after hours, at weekends and on Korean public holidays (the ringback
  decision's ``situation`` comes from the real calendar, ``pipelines.ringback.calendar``);
* inbound and outbound calls, unanswered ones, recorded calls with the consent notice in the
  departments that play it, a few recorded without a finished notice (consent violations);
* long calls under the 20-minute rule: notice, armed, staff ``*9`` → terminate + hangup
  (cause ``time_limit``), ``*0`` → disarmed, a key before the limit;
* abuse incidents by category (log / warn / end; an ``end`` hangs up with cause ``abuse``)
  with Korean evidence, tied to staff endpoints (``ringing`` events) for exposure reports;
* PBX commands and their results (some failed), audio leg completeness, caller-ID branding and
  masking-audit decisions, dead letters;
* the consent stream's decisions (``consent_missing`` when a ``full`` department's caller was
  connected before the notice finished, ``recording_late`` / ``recording_missing`` per leg,
  ``start_recording`` when staff press the record key in ``key_press`` departments), modes
  from ``pipelines/config/recording.toml``;
* recordings per leg (V003) with the recording stream's shortfall / gap decisions, purged 30
  days after the call (seeded offices keep recordings 30 days) with an audit row, and a few
  accesses (granted / refused);
* transcripts (V002) of the flagged utterances and some clean ones around them.

Tables that arrived with other work (V002 ``transcripts``, V003 ``recordings`` and
``recording_audit``, V004 ``feedback`` and ``model_promotions``) are written from plain dicts
by column name (:data:`TABLE_SEEDERS`): each only when its table exists, and only the columns
the table has, so this module also seeds a database migrated before them, and a table added
later needs one more entry there.  Every row is ``origin = 'simulator'`` where the table has
that column.

    python -m tests.support.seed DIR [--database callguard] [--months 2026-02,2026-03]

seeds a chDB directory from a separate process (chDB allows one engine per process, so a
test that hands the directory to a notebook kernel seeds it this way).
"""

from __future__ import annotations

import argparse
import calendar as month_calendar
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client

from connectors.clickhouse.client import connect
from connectors.clickhouse.migrations import MIGRATIONS_DIR, migrate
from pipelines.departments import Directory, load_directory
from pipelines.ringback.calendar import RingbackPolicy, load_policy
from schemas.records import (
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
from schemas.rows import STORED_TABLES

SEED = 8
MONTHS = ("2026-02", "2026-03")
#: the month reports and tests look at (the one before it is there to be left out)
REPORT_MONTH = "2026-03"
DATABASE = "callguard"
TZ = ZoneInfo("Asia/Seoul")
ORIGIN = "simulator"
CONSENT_NOTICE = "consent-notice"
RETENTION_MS = 30 * 86_400_000  # seeded recordings are purged 30 days after the call
MODEL_VERSION = {"2026-02": "abuse-kcelectra-2026.01", "2026-03": "abuse-kcelectra-2026.02"}

CATEGORIES = ("profanity", "insult", "threat", "sexual_harassment", "shouting")
#: what the text classifier can say (shouting is a voice cue, its text is "clean")
TEXT_CATEGORIES = ("clean", "profanity", "insult", "threat", "sexual_harassment")
CATEGORY_WEIGHTS = (0.35, 0.28, 0.12, 0.08, 0.17)
#: masked, as the abuse stream stores evidence (never the full utterance)
EVIDENCE = {
    "profanity": ("이 ○○ 같은 공무원아", "○○, 일 똑바로 안 해?", "아 진짜 ○○ 짜증나네"),
    "insult": (
        "머리가 나쁜 거야?", "세금 받아 먹고 하는 게 뭐야", "당신 같은 사람이 무슨 공무원이야"
    ),
    "threat": ("찾아가서 가만 안 둔다", "집 주소 알아낼 거야", "두고 보자, 밤길 조심해"),
    "sexual_harassment": ("목소리 예쁜데 몇 살이야?", "이따 따로 만나자"),
    "shouting": ("[고성] 빨리 처리하라고!", "[고성] 책임자 바꿔!"),
}
CLEAN_TEXT = (
    "네, 확인해 드리겠습니다.",
    "주차 위반 과태료 문의드립니다.",
    "서류는 언제까지 내면 되나요?",
    "담당자 연결 부탁드립니다.",
    "잠시만 기다려 주세요.",
)
DEAD_LETTER_KINDS = (
    ("pbx.call-events", "callguard.calls", "schema", "field ts_ms: must be an integer"),
    ("pbx.call-events", "callguard.timeout", "schema", "field leg: must be one of caller, staff"),
    ("pbx.audio", "callguard.audio", "decode", "not JSON: unexpected byte at offset 0"),
    ("pbx.cdr", "callguard.sink", "schema", "field disposition: not an allowed value"),
    ("calls.incidents", "callguard.timeout", "processing", "unexpected error: KeyError"),
)


def recording_modes(directory: Directory) -> dict[str, str]:
    """Recording mode per department from ``pipelines/config/recording.toml`` (the recording
    work's loader when present; else full where the consent notice plays)."""
    try:
        from pipelines.recording.policy import load_recording_book
    except ImportError:
        return {
            code: "full" if CONSENT_NOTICE in d.notices else "off"
            for code, d in directory.departments.items()
        }
    book = load_recording_book(directory=directory)
    return {code: book.for_department(code).mode for code in directory.departments}


# --- planning ----------------------------------------------------------------------------


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """First instant of ``YYYY-MM`` and of the next month, Seoul time."""
    year, mon = (int(p) for p in month.split("-"))
    start = datetime(year, mon, 1, tzinfo=TZ)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=TZ)
    return start, end


@dataclass
class SeedPlan:
    """Everything generated; ``rows`` per stored table, plus facts future seeders use."""

    months: tuple[str, ...]
    seed: int
    rows: dict[str, list[WireRecord]] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)
    until_ms: int = 0  # end of the last month: nothing happens after it
    #: rows of tables written as plain dicts (see TABLE_SEEDERS)
    extra: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, table: str, *records: WireRecord) -> None:
        self.rows.setdefault(table, []).extend(records)

    def add_row(self, table: str, row: dict[str, Any]) -> None:
        self.extra.setdefault(table, []).append(row)


class _Call:
    """Builds one call's records in time order."""

    def __init__(self, plan: SeedPlan, rng: random.Random, **facts: Any) -> None:
        self.plan, self.rng = plan, rng
        self.call_id: str = facts["call_id"]
        self.department: str = facts["department"]
        self.direction: str = facts["direction"]
        self.caller: str = facts["caller"]
        self.callee: str = facts["callee"]
        self.presented: str = facts["presented"]
        self.events: list[CallEvent] = []
        self.commands = 0

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def event(self, kind: str, ts_ms: int, **extra: Any) -> None:
        self.events.append(
            CallEvent(
                event_id=self.uid(),
                call_id=self.call_id,
                type=kind,
                ts_ms=ts_ms,
                direction=self.direction,
                department=self.department,
                caller=self.caller,
                callee=self.callee,
                presented_caller_id=self.presented,
                origin=ORIGIN,
                **extra,
            )
        )

    def decision(
        self, stream: str, key: str, ts_ms: int, reason: str, kind: str = "", **extra: Any
    ) -> None:
        """``key``: unique per call and stream (the kind, or kind/leg with ``kind`` given)."""
        self.plan.add(
            "decisions",
            Decision(
                decision_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{stream}/{self.call_id}/{key}")),
                call_id=self.call_id,
                stream=stream,
                kind=kind or key,
                reason=reason,
                ts_ms=ts_ms,
                department=self.department,
                **extra,
            ),
        )

    def command(
        self, action: str, ts_ms: int, issued_by: str, reason: str, args: dict[str, str]
    ) -> str:
        self.commands += 1
        command_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{issued_by}/{self.call_id}/{action}"))
        command_id = f"{command_id[:-2]}{self.commands:02d}"
        self.plan.add(
            "commands",
            PbxCommand(
                command_id=command_id,
                call_id=self.call_id,
                action=action,
                issued_ms=ts_ms,
                issued_by=issued_by,
                reason=reason,
                args=args,
            ),
        )
        roll = self.rng.random()
        status, detail = ("applied", "")
        if roll < 0.02:
            status, detail = "failed", "channel is gone"
        elif roll < 0.03:
            status, detail = "duplicate", "command id already applied"
        self.plan.add(
            "command_results",
            CommandResult(
                command_id=command_id,
                call_id=self.call_id,
                action=action,
                status=status,
                ts_ms=ts_ms + self.rng.randint(40, 400),
                detail=detail,
            ),
        )
        return command_id


def _start_time(rng: random.Random, day: date, workday: bool, lunch: tuple[int, int]) -> datetime:
    """A call start on ``day`` (Seoul): mostly business hours, some lunch and after hours."""
    if not workday:
        minute = rng.randint(9 * 60, 20 * 60)
    else:
        roll = rng.random()
        if roll < 0.12:
            minute = rng.randint(*lunch)
        elif roll < 0.25:
            minute = rng.choice((rng.randint(7 * 60, 9 * 60 - 1), rng.randint(18 * 60, 22 * 60)))
        else:
            minute = rng.randint(9 * 60, 17 * 60 + 50)
            if lunch[0] <= minute < lunch[1]:
                minute = lunch[1] + rng.randint(0, 60)
    start = datetime(day.year, day.month, day.day, tzinfo=TZ) + timedelta(minutes=minute)
    return start + timedelta(seconds=rng.randint(0, 59), milliseconds=rng.randint(0, 999))


def _plan_call(
    plan: SeedPlan,
    rng: random.Random,
    call_id: str,
    department: str,
    start: datetime,
    directory: Directory,
    policy: RingbackPolicy,
    modes: dict[str, str],
    month: str,
) -> None:
    dept = directory[department]
    start_ms = ms(start)
    situation = policy.decide(department, start_ms)
    citizen = f"010-0000-{rng.randrange(10_000):04d}"
    staff = rng.choices(dept.staff_endpoints, weights=(3, 2)[: len(dept.staff_endpoints)])[0]
    outbound = situation.situation == "business_hours" and rng.random() < 0.15
    direction = "outbound" if outbound else "inbound"
    mode = "off" if outbound else modes.get(department, "off")  # policies cover inbound calls
    call = _Call(
        plan,
        rng,
        call_id=call_id,
        department=department,
        direction=direction,
        caller=staff if outbound else citizen,
        callee=citizen if outbound else dept.line,
        presented=dept.office_number if outbound else citizen,
    )
    t = start_ms
    if outbound:
        call.event("call_started", t, attrs={"endpoint": staff})
        t += rng.randint(50, 200)
        call.event("ringing", t, leg="caller")
        presented = dept.office_number
        kind = rng.choice(("display", "display", "display_kakao"))
        call.decision("callerid", kind, t, f"callee platform: {kind}", attrs={"display": "sent"})
        if rng.random() < 0.05:
            presented = f"010-0000-{rng.randrange(10_000):04d}"
            call.decision(
                "masking",
                "personal_number_leaked",
                t,
                "outbound call presented a mobile number that is not an office number",
                attrs={"presented": f"010******{presented[-2:]}"},
            )
        call.presented = presented
        p_answer = 0.75
    else:
        call.event("call_started", t, attrs={"line": dept.line})
        command_id = ""
        if situation.moh_class != dept.ringback:
            command_id = call.command(
                "set_ringback", t + 30, "ringback", situation.reason,
                {"moh_class": situation.moh_class},
            )
        call.decision(
            "ringback",
            situation.moh_class,
            t + 30,
            situation.reason,
            command_id=command_id,
            attrs={
                "situation": situation.situation,
                "local_time": start.isoformat(timespec="seconds"),
            },
        )
        p_answer = {"business_hours": 0.92, "lunch": 0.6}.get(situation.situation, 0.2)
    consent_ok = True
    if CONSENT_NOTICE in dept.notices and not outbound:
        t += rng.randint(30, 120)
        roll = rng.random()
        if roll < 0.015:
            consent_ok = False  # the notice never played (flow error)
        elif roll < 0.03:
            consent_ok = False  # it started but failed: the connector adds status=failed
            call.event("notice_started", t, leg="caller", attrs={"notice": CONSENT_NOTICE})
            t += rng.randint(100, 900)
            call.event(
                "notice_finished", t, leg="caller",
                attrs={"notice": CONSENT_NOTICE, "status": "failed"},
            )
        else:
            call.event("notice_started", t, leg="caller", attrs={"notice": CONSENT_NOTICE})
            t += rng.randint(2900, 3200)
            call.event("notice_finished", t, leg="caller", attrs={"notice": CONSENT_NOTICE})
    if not outbound:
        t += rng.randint(20, 200)
        call.event("ringing", t, leg="staff", attrs={"endpoint": staff})
    answered = rng.random() < p_answer
    dtmf = ""
    talk_ms = 0
    answer_ms = 0
    if not answered:
        t += rng.randint(8_000, 30_000)
        cause = "no_answer"
        disposition = "NO ANSWER" if rng.random() < 0.9 else "BUSY"
        call.event("hangup", t, leg="caller", hangup_cause=cause, attrs={"hungup_by": "system"})
        end_ms = t
    else:
        t += rng.randint(2_000, 12_000)
        answer_ms = t
        call.event("answered", t, leg="caller" if outbound else "staff")
        call.event("bridged", t)
        if mode == "full" and not consent_ok:
            call.decision(
                "consent", "consent_missing", t + 80,
                "connected before the consent notice finished playing",
                attrs={"mode": "full", "severity": "alert"},
            )
        malicious = not outbound and rng.random() < 0.03
        if malicious:
            talk_ms = rng.randint(1_250_000, 1_900_000)
        else:
            talk_ms = int(min(1_150_000, rng.lognormvariate(5.3, 0.8) * 1000))
        end_ms = answer_ms + talk_ms
        cause, hungup_by = (
            ("normal", "staff") if rng.random() < 0.6 else ("caller_hangup", "caller")
        )
        # --- abuse incidents (inbound) --------------------------------------------------
        abusive = not outbound and rng.random() < (0.5 if malicious else 0.09)
        warned_at = 0
        if abusive:
            end_ms, ended, warned_at = _plan_incidents(call, rng, answer_ms, end_ms, month)
            if ended:
                cause, hungup_by = "abuse", "system"
        # --- 20-minute rule -------------------------------------------------------------
        if end_ms - answer_ms > 900_000:
            end_ms, timeout_cause, dtmf = _plan_timeout(call, rng, answer_ms, end_ms)
            if timeout_cause:
                cause, hungup_by = timeout_cause, "system"
        elif not outbound and rng.random() < 0.02:
            press = answer_ms + int((end_ms - answer_ms) * 0.5)
            dtmf = "*9"
            call.event("dtmf", press, leg="staff", digit="*")
            call.event("dtmf", press + 250, leg="staff", digit="9")
            call.decision(
                "timeout", "key_before_limit", press + 250,
                "staff key *9 before the limit: logged only", actor="staff",
            )
        # --- recording ------------------------------------------------------------------
        if mode == "full":
            _plan_recording(call, rng, "full", answer_ms, end_ms)
        elif mode == "key_press" and (
            (warned_at and rng.random() < 0.7) or rng.random() < 0.02
        ):
            key_ms = (warned_at or answer_ms + (end_ms - answer_ms) // 3) + rng.randint(
                3_000, 20_000
            )
            if key_ms < end_ms - 5_000:
                call.event("dtmf", key_ms, leg="staff", digit="*")
                call.event("dtmf", key_ms + 250, leg="staff", digit="1")
                dtmf += "*1"
                call.decision(
                    "consent", "start_recording", key_ms + 300,
                    "staff pressed the record key (*1)", actor="staff",
                    attrs={"mode": "key_press", "window_start_ms": str(key_ms + 250)},
                )
                _plan_recording(call, rng, "key_press", key_ms + 250, end_ms)
        talk_ms = end_ms - answer_ms
        call.event(
            "hangup", end_ms, leg="caller", hangup_cause=cause, attrs={"hungup_by": hungup_by}
        )
        disposition = "ANSWERED"
        _plan_audio(call, rng, answer_ms, end_ms)
    plan.add("call_events", *call.events)
    plan.add(
        "cdrs",
        Cdr(
            call_id=call.call_id,
            direction=direction,
            department=department,
            caller=call.caller,
            callee=call.callee,
            presented_caller_id=call.presented,
            start_ms=start_ms,
            answer_ms=answer_ms,
            end_ms=end_ms,
            duration_s=(end_ms - start_ms) / 1000,
            billsec_s=talk_ms / 1000,
            disposition=disposition,
            hangup_cause=cause,
            origin=ORIGIN,
        ),
    )
    duplicates = 1 if rng.random() < 0.03 else 0
    plan.add(
        "call_summaries",
        CallSummary(
            call_id=call.call_id,
            direction=direction,
            department=department,
            caller=call.caller,
            callee=call.callee,
            started_ms=start_ms,
            answered_ms=answer_ms,
            ended_ms=end_ms,
            talk_s=talk_ms / 1000,
            events=len(call.events) + duplicates,
            duplicate_events=duplicates,
            out_of_order_events=1 if rng.random() < 0.01 else 0,
            dtmf_digits=dtmf,
            hangup_cause=cause,
            origin=ORIGIN,
        ),
    )


def _known(model: type[WireRecord], **values: Any) -> dict[str, Any]:
    """``values`` the model has fields for (fields added by later migrations are optional)."""
    return {k: v for k, v in values.items() if k in model._options.fields}


def _transcript(
    call: _Call, rng: random.Random, leg: str, start: int, end: int, text: str,
    category: str, score: float, model_version: str, shouting: bool = False,
) -> str:
    utterance_id = call.uid()
    call.plan.add_row(
        "transcripts",
        {
            "utterance_id": utterance_id,
            "call_id": call.call_id,
            "leg": leg,
            "start_ms": start,
            "end_ms": end,
            "text": text,
            "category": category,
            "score": score,
            "scores": {category: score} if category == "clean" else {
                category: score, "clean": round(1 - score, 3)
            },
            "asr_backend": "faster-whisper",
            "asr_model": "base",
            "classifier_version": model_version,
            "avg_logprob": round(rng.uniform(-0.6, -0.1), 3),
            "no_speech_prob": round(rng.uniform(0.0, 0.1), 3),
            "loudness_dbfs": round(rng.uniform(-14, -9) if shouting else rng.uniform(-30, -18), 1),
            "baseline_dbfs": round(rng.uniform(-28, -22), 1),
            "shouting": shouting,
            "ts_ms": end + rng.randint(300, 1_500),
            "origin": ORIGIN,
        },
    )
    return utterance_id


def _plan_incidents(
    call: _Call, rng: random.Random, answer_ms: int, end_ms: int, month: str
) -> tuple[int, bool, int]:
    """1–5 flagged utterances; a severe one after a warning may end the call.

    Returns (end of call, ended for abuse, time of the warning or 0)."""
    category = rng.choices(CATEGORIES, weights=CATEGORY_WEIGHTS)[0]
    model_version = MODEL_VERSION.get(month, "abuse-kcelectra-2026.02")
    warned = 0
    t = answer_ms + rng.randint(20_000, 120_000)
    for n in range(rng.randint(1, 5)):
        if t >= end_ms - 2_000:
            break
        if rng.random() < 0.5:  # an ordinary utterance before it
            clean_end = t - rng.randint(2_000, 6_000)
            if clean_end > answer_ms + 3_000:
                _transcript(
                    call, rng, rng.choice(("caller", "staff")), clean_end - 2_500, clean_end,
                    rng.choice(CLEAN_TEXT), "clean", round(rng.uniform(0.01, 0.2), 3),
                    model_version,
                )
        if n and rng.random() < 0.3:
            category = rng.choices(CATEGORIES, weights=CATEGORY_WEIGHTS)[0]
        leg = "caller" if rng.random() < 0.95 else "staff"
        score = round(rng.uniform(0.55, 0.99), 3)
        severe = score >= 0.8 and leg == "caller"
        action = "log"
        if severe and not warned:
            action = "warn"
        elif severe and warned and rng.random() < 0.75:
            action = "end"
        utter_end = t + rng.randint(1_500, 6_000)
        evidence = rng.choice(EVIDENCE[category])
        text_score = score if category != "shouting" else round(rng.uniform(0.05, 0.4), 3)
        utterance_id = _transcript(
            call, rng, leg, t, utter_end, evidence,
            category if category in TEXT_CATEGORIES else "clean",
            score if category in TEXT_CATEGORIES else text_score, model_version,
            shouting=category == "shouting",
        )
        ts = utter_end + rng.randint(300, 1_500)
        incident = Incident(
            **_known(
                Incident,
                incident_id=call.uid(),
                call_id=call.call_id,
                department=call.department,
                leg=leg,
                category=category,
                score=score,
                action=action,
                evidence=evidence,
                model_version=model_version,
                utterance_start_ms=t,
                utterance_end_ms=utter_end,
                ts_ms=ts,
                utterance_id=utterance_id,
                text_score=text_score,
                shouting=category == "shouting",
            )
        )
        call.plan.add("incidents", incident)
        call.plan.incidents.append(incident)
        if action == "warn":
            warned = ts
            call.command(
                "play", ts + 100, "abuse", f"{category} (score {score:.2f}): warning",
                {"media": "abuse-warning", "target": "caller"},
            )
        elif action == "end":
            call.command(
                "play", ts + 100, "abuse", f"{category} after a warning: termination",
                {"media": "abuse-termination", "target": "call", "wait": "true"},
            )
            hangup = ts + rng.randint(6_000, 9_000)
            call.command("hangup", hangup, "abuse", "abuse after a warning", {"cause": "abuse"})
            return hangup + 200, True, warned
        t = ts + rng.randint(15_000, 240_000)
    return end_ms, False, warned


def _plan_recording(call: _Call, rng: random.Random, mode: str, start: int, end: int) -> None:
    """Both legs' recordings (V003 rows, newest version) and the streams' decisions on them."""
    plan = call.plan
    for leg in ("caller", "staff"):
        if mode == "full" and rng.random() < 0.007:
            call.decision(
                "consent", f"recording_missing/{leg}", start + 30_000,
                f"no audio from the {leg} leg 30 s after the bridge",
                attrs={"mode": mode, "severity": "alert", "leg": leg}, kind="recording_missing",
            )
            continue
        late = mode == "full" and rng.random() < 0.01
        leg_start = start + (rng.randint(2_500, 9_000) if late else rng.randint(20, 400))
        if late:
            call.decision(
                "consent", f"recording_late/{leg}", leg_start + 100,
                f"the {leg} leg's recording started {(leg_start - start) / 1000:.1f} s after "
                "the bridge (tolerance 2 s)",
                attrs={"mode": mode, "severity": "alert", "leg": leg}, kind="recording_late",
            )
        expected = end - start
        missing = 0 if rng.random() < 0.9 else rng.randint(1, 40)
        short = rng.random() < 0.04
        duration = max(0, end - leg_start - missing * 200
                       - (rng.randint(2_000, 30_000) if short else 0))
        shortfall = short or late
        retention = start + RETENTION_MS
        purged = retention + rng.randint(600_000, 7_200_000)
        deleted = purged if purged < plan.until_ms else 0
        sha = f"{rng.getrandbits(256):064x}"
        if missing:
            call.decision(
                "recording", f"recording_gaps/{leg}", end + 6_000,
                f"{missing} chunk(s) missing from the {leg} leg",
                attrs={"leg": leg, "gap_ms": str(missing * 200)}, kind="recording_gaps",
            )
        if shortfall:
            call.decision(
                "recording", f"recording_shortfall/{leg}", end + 6_500,
                f"the {leg} leg's recording is {(expected - duration) / 1000:.1f} s shorter "
                "than the CDR's talk time",
                attrs={"leg": leg}, kind="recording_shortfall",
            )
        plan.add_row(
            "recordings",
            {
                "recording_id": f"rec-{call.call_id}-{leg}",
                "call_id": call.call_id,
                "leg": leg,
                "department": call.department,
                "mode": mode,
                "started_ms": leg_start,
                "duration_ms": duration,
                "sample_rate": 8000,
                "chunk_count": duration // 200,
                "duplicate_chunks": rng.choice((0, 0, 0, 1)),
                "missing_chunks": missing,
                "lost_packets": missing * rng.randint(0, 8),
                "gap_count": 1 if missing else 0,
                "gap_duration_ms": missing * 200,
                "gaps": (f'[[{rng.randint(0, max(1, expected))}, {missing * 200}, '
                         f'{missing * 200}, "missing", {missing}]]') if missing else "[]",
                "finish_reason": "hangup",
                "sha256": sha,
                "key_id": "seed-key-1",
                "path": f"{call.department}/{call.call_id}/{leg}.wav.enc",
                "size_bytes": duration * 16,
                "format": "wav",
                "retention_until_ms": retention,
                "ts_ms": deleted or end + 5_000,
                "cdr_seen": True,
                "cdr_billsec_s": expected / 1000,
                "expected_duration_ms": expected,
                "shortfall_duration_ms": max(0, expected - duration) if shortfall else 0,
                "shortfall": shortfall,
                "deleted_ms": deleted,
                "origin": ORIGIN,
            },
        )
        audit = {"call_id": call.call_id, "leg": leg, "host": "recorder-1", "detail": "",
                 "recording_sha256": sha}
        if deleted:
            plan.add_row(
                "recording_audit",
                {**audit, "audit_id": f"delete-{call.call_id}-{leg}", "action": "delete",
                 "result": "deleted", "actor": "retention", "role": "system",
                 "reason": "retention period ended", "ts_ms": deleted},
            )
        if leg == "caller" and rng.random() < 0.06:
            refused = rng.random() < 0.25
            plan.add_row(
                "recording_audit",
                {**audit, "audit_id": f"access-{call.call_id}", "leg": "",
                 "action": "access", "result": "refused" if refused else "granted",
                 "actor": f"auditor-{rng.randint(1, 2)}",
                 "role": "staff" if refused else "auditor", "reason": "complaint review",
                 "ts_ms": min(plan.until_ms - 1, end + rng.randint(1, 5) * 86_400_000)},
            )


def _plan_timeout(
    call: _Call, rng: random.Random, answer_ms: int, end_ms: int
) -> tuple[int, str, str]:
    """The timeout rule's decisions for a call past the notice; (end, cause or '', digits)."""
    announce = call.department != "welfare"  # timeout.toml: welfare plays no advance notice
    notice_ms = answer_ms + 900_000
    if announce:
        command_id = call.command(
            "play", notice_ms, "timeout", "call reached 900 s (limit 1200 s)",
            {"media": "timeout-notice", "target": "caller"},
        )
        call.decision(
            "timeout", "notice", notice_ms, "call reached 900 s (limit 1200 s)",
            command_id=command_id,
        )
    limit_ms = answer_ms + 1_200_000
    if rng.random() < 0.15 and end_ms > notice_ms + 60_000:
        at = notice_ms + rng.randint(10_000, 60_000)
        call.event("dtmf", at, leg="staff", digit="*")
        call.event("dtmf", at + 250, leg="staff", digit="0")
        call.decision(
            "timeout", "disarmed", at + 250, "staff marked the call justified (*0)", actor="staff"
        )
        return end_ms, "", "*0"
    if end_ms <= limit_ms:
        return end_ms, "", ""
    call.decision(
        "timeout", "armed", limit_ms, "1200 s limit reached; staff key *9 ends the call"
    )
    if rng.random() < 0.25:
        return end_ms, "", ""  # the caller hung up before anyone pressed the key
    press = min(end_ms - 10_000, limit_ms + rng.randint(5_000, 400_000))
    call.event("dtmf", press, leg="staff", digit="*")
    call.event("dtmf", press + 250, leg="staff", digit="9")
    play = call.command(
        "play", press + 300, "timeout", "staff key *9 after the limit",
        {"media": "timeout-termination", "target": "call", "wait": "true"},
    )
    call.decision(
        "timeout", "terminate", press + 300, "staff key *9 after the limit", actor="staff",
        command_id=play,
    )
    hangup_ms = press + rng.randint(7_000, 9_000)
    command_id = call.command(
        "hangup", hangup_ms, "timeout", "termination announcement finished",
        {"cause": "time_limit"},
    )
    call.decision(
        "timeout", "hangup", hangup_ms, "termination announcement finished",
        command_id=command_id,
    )
    return hangup_ms + 150, "time_limit", "*9"


def _plan_audio(call: _Call, rng: random.Random, answer_ms: int, end_ms: int) -> None:
    for leg in ("caller", "staff"):
        expected = max(1, (end_ms - answer_ms) // 200)
        missing = 0 if rng.random() < 0.9 else rng.randint(1, max(1, expected // 50))
        call.plan.add(
            "audio_leg_stats",
            AudioLegStats(
                call_id=call.call_id,
                leg=leg,
                chunks=expected - missing,
                duplicate_chunks=rng.choice((0, 0, 0, 0, 1)),
                missing_chunks=missing,
                lost_packets=missing * rng.randint(0, 10),
                audio_duration_ms=(expected - missing) * 200,
                first_ms=answer_ms,
                last_ms=end_ms,
                ts_ms=end_ms + 500,
                origin=ORIGIN,
            ),
        )


def _plan_dead_letters(plan: SeedPlan, rng: random.Random, day: date) -> None:
    for n in range(rng.choice((0, 0, 1, 1, 2, 3))):
        topic, consumer, error_type, reason = rng.choice(DEAD_LETTER_KINDS)
        at = datetime(day.year, day.month, day.day, tzinfo=TZ) + timedelta(
            seconds=rng.randint(0, 86_399)
        )
        plan.add(
            "dead_letters",
            DeadLetter(
                dead_letter_id=f"dl-{day:%Y%m%d}-{n}",
                source_topic=topic,
                source_partition=rng.randrange(4),
                source_offset=int(day.strftime("%Y%m%d")) * 10 + n,
                consumer=consumer,
                reason=reason,
                error_type=error_type,
                ts_ms=ms(at),
                key_b64="",
                payload_b64="eyJicm9rZW4iOg==",
                payload_bytes=rng.randint(12, 4_000),
            ),
        )


def generate(
    months: Sequence[str] = MONTHS,
    seed: int = SEED,
    directory: Directory | None = None,
    policy: RingbackPolicy | None = None,
) -> SeedPlan:
    """The rows of ``months`` (``YYYY-MM``, Seoul time); the same arguments give the same rows."""
    directory = directory or load_directory()
    policy = policy or load_policy(departments=directory)
    modes = recording_modes(directory)
    plan = SeedPlan(months=tuple(months), seed=seed)
    plan.until_ms = ms(max(month_bounds(m)[1] for m in months))
    for month in months:
        first, _ = month_bounds(month)
        days = month_calendar.monthrange(first.year, first.month)[1]
        for day_n in range(1, days + 1):
            day = date(first.year, first.month, day_n)
            day_rng = random.Random(f"callguard-seed:{seed}:{day}")
            _plan_dead_letters(plan, day_rng, day)
            for code in sorted(directory.departments):
                noon = ms(datetime(day.year, day.month, day.day, 12, tzinfo=TZ))
                situation = policy.decide(code, noon).situation
                workday = situation not in ("weekend", "holiday")
                calendar = policy.calendar(code)
                lunch = (
                    calendar.lunch_start.hour * 60 + calendar.lunch_start.minute,
                    calendar.lunch_end.hour * 60 + calendar.lunch_end.minute - 1,
                ) if calendar.lunch_start and calendar.lunch_end else (720, 779)
                n_calls = day_rng.randint(6, 12) if workday else day_rng.randint(0, 2)
                for n in range(n_calls):
                    rng = random.Random(f"callguard-seed:{seed}:{day}:{code}:{n}")
                    start = _start_time(rng, day, workday, lunch)
                    call_id = f"call-{uuid.UUID(int=rng.getrandbits(128), version=4).hex}"
                    _plan_call(
                        plan, rng, call_id, code, start, directory, policy, modes, month
                    )
    return plan


# --- tables from other work (dict rows) -----------------------------------------------------------


def _feedback(plan: SeedPlan) -> list[dict[str, Any]]:
    """Supervisor labels (V004): most incidents confirmed, some rejected as false alarms (more
    for shouting and insults), a few re-labelled later by the same person (FINAL keeps the
    last), and abuse the detector missed."""
    rows = []
    for incident in plan.incidents:
        rng = random.Random(f"callguard-seed:{plan.seed}:feedback:{incident.incident_id}")
        if rng.random() > 0.7:
            continue  # not reviewed
        p_false = {"shouting": 0.3, "insult": 0.15}.get(incident.category, 0.08)
        if incident.score < 0.7:
            p_false *= 2
        rejected = rng.random() < p_false
        reviewer = f"supervisor-{rng.randint(1, 3)}"
        at = min(plan.until_ms - 1, incident.ts_ms + rng.randint(3_600_000, 5 * 86_400_000))
        text_category = incident.category if incident.category in TEXT_CATEGORIES else "clean"
        rows.append(
            {
                "feedback_id": f"fb-{incident.incident_id}-{reviewer}",
                "incident_id": incident.incident_id,
                "call_id": incident.call_id,
                "label": "rejected" if rejected else "confirmed",
                "category": "clean" if rejected else text_category,
                "text": "",
                "labeled_by": reviewer,
                "role": "supervisor",
                "source": "review",
                "ts_ms": at,
                "note": "",
            }
        )
    for n, call_id in enumerate(sorted({i.call_id for i in plan.incidents})):
        rng = random.Random(f"callguard-seed:{plan.seed}:missed:{call_id}")
        if rng.random() < 0.15:
            incident = next(i for i in plan.incidents if i.call_id == call_id)
            rows.append(
                {
                    "feedback_id": f"fb-missed-{n:04d}",
                    "incident_id": "",
                    "call_id": call_id,
                    "label": "missed",
                    "category": rng.choice(("profanity", "insult")),
                    "text": rng.choice(EVIDENCE["insult"]),
                    "labeled_by": f"staff-{rng.randint(1, 8):02d}",
                    "role": "staff",
                    "source": "review",
                    "ts_ms": min(plan.until_ms - 1, incident.ts_ms + 3_600_000),
                    "note": "flagged by the staff member after the call",
                }
            )
    return rows


def _model_promotions(plan: SeedPlan) -> list[dict[str, Any]]:
    """The text classifier versions the incidents name, promoted before their month."""
    rows = []
    for month in plan.months:
        version = MODEL_VERSION.get(month)
        if version is None:
            continue
        start, _ = month_bounds(month)
        rows.append(
            {
                "promotion_id": f"promote-{version}",
                "model": "text_classifier",
                "version": version,
                "path": f"models/text_classifier/{version}",
                "action": "promote",
                "promoted_by": "supervisor-1",
                "reason": "better macro F1 on the held-out phone-domain set",
                "metrics": {"macro_f1": 0.78 + 0.02 * len(rows), "precision": 0.81},
                "ts_ms": ms(start) - 3 * 86_400_000,
            }
        )
    return rows


#: table → rows by column name; used only when the table exists
TABLE_SEEDERS: dict[str, Callable[[SeedPlan], list[dict[str, Any]]]] = {
    "transcripts": lambda plan: plan.extra.get("transcripts", []),  # V002
    "recordings": lambda plan: plan.extra.get("recordings", []),  # V003
    "recording_audit": lambda plan: plan.extra.get("recording_audit", []),  # V003
    "feedback": _feedback,  # V004
    "model_promotions": _model_promotions,  # V004
}


def _column_types(client: Client, table: str) -> dict[str, str]:
    return dict(
        client.query(
            "SELECT name, type FROM system.columns "
            "WHERE database = currentDatabase() AND table = {t:String}",
            parameters={"t": table},
        ).result_rows
    )


def _insert_dicts(client: Client, table: str, rows: list[dict[str, Any]]) -> int:
    """Insert the columns ``table`` has; ``*_ms`` ints become datetimes for DateTime columns."""
    if not rows:
        return 0
    types = _column_types(client, table)
    columns = [c for c in rows[0] if c in types]
    if not columns:
        return 0
    data = []
    for row in rows:
        values = []
        for column in columns:
            value = row[column]
            if "DateTime" in types[column] and isinstance(value, int):
                value = datetime.fromtimestamp(value / 1000, tz=UTC)
            values.append(value)
        data.append(values)
    client.insert(table, data, column_names=columns)
    return len(data)


def present_tables(client: Client) -> set[str]:
    return {
        r[0]
        for r in client.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase()"
        ).result_rows
    }


def load(
    client: Client, plan: SeedPlan, migrations_dir: Path = MIGRATIONS_DIR
) -> dict[str, int]:
    """Migrate, then insert the plan into every table that exists; rows inserted per table."""
    migrate(client, migrations_dir)
    present = present_tables(client)
    counts: dict[str, int] = {}
    for table in STORED_TABLES:
        records = plan.rows.get(table.name, [])
        if table.name in present and records:
            arrow = table.to_arrow(records)
            has = set(_column_types(client, table.name))  # an older schema has fewer columns
            client.insert_arrow(table.name, arrow.select([c for c in arrow.column_names
                                                          if c in has]))
            counts[table.name] = len(records)
    for name, seeder in TABLE_SEEDERS.items():
        if name in present:
            counts[name] = _insert_dicts(client, name, seeder(plan))
    return counts


_OPEN: list[Client] = []  # in-process seeding keeps its client (and so the engine) open


def seed_in_process(
    chdb_path: Path,
    database: str,
    months: Sequence[str] = MONTHS,
    seed: int = SEED,
    migrations_dir: Path = MIGRATIONS_DIR,
) -> dict[str, int]:
    """Seed ``database`` in the chDB directory this process uses (tests share one engine per
    process: pass the directory the other tests use, and a database of your own)."""
    client = connect(f"chdb://{Path(chdb_path).resolve()}", database)
    _OPEN.append(client)
    return load(client, generate(months, seed), migrations_dir)


def seed_chdb(
    path: Path, database: str = DATABASE, months: Sequence[str] = MONTHS, seed: int = SEED
) -> dict[str, int]:
    """Seed the chDB directory ``path`` (this process must not have another chDB open)."""
    client = connect(f"chdb://{Path(path).resolve()}", database)
    try:
        return load(client, generate(months, seed))
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="chDB data directory")
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--months", default=",".join(MONTHS))
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    counts = seed_chdb(args.path, args.database, args.months.split(","), args.seed)
    for table, n in sorted(counts.items()):
        print(f"{table}\t{n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
