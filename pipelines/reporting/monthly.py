"""The monthly abuse report's numbers: one read-only query per section, for one Seoul month.

Reads through an explicit reader (``connectors.clickhouse.reader``: the sink's query API, a
chDB directory or a ClickHouse server); only the CLI decides which.  Every section says which
tables it needs: a table that does not exist yet (``feedback`` before the abuse-detection
migration, ``recordings`` / ``recording_audit`` before V003) gives an empty section with a note
instead of an error.  Tables are ReplacingMergeTree, so every query reads with ``FINAL``.

Staff are never named: the exposure section keeps only counts per anonymous rank and a
distribution; staff endpoint ids stay inside :func:`collect`.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from connectors.clickhouse.query_api import QueryResult

TZ = ZoneInfo("Asia/Seoul")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

CATEGORY_NAMES = {
    "profanity": "욕설",
    "insult": "모욕",
    "threat": "협박",
    "sexual_harassment": "성희롱",
    "shouting": "고성",
}
ACTION_NAMES = {"log": "기록", "warn": "경고", "end": "종료"}
EXPOSURE_BUCKETS = ((0, 0, "0"), (1, 2, "1–2"), (3, 5, "3–5"), (6, 10, "6–10"), (11, None, "11+"))


class Reader(Protocol):
    def query(self, sql: str) -> QueryResult: ...


@dataclass(frozen=True)
class Month:
    """A calendar month in Seoul time: ``[start_ms, end_ms)``."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        match = _MONTH.match(text.strip())
        if not match:
            raise ValueError(f"month must be YYYY-MM, not {text!r}")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def previous(cls, now: datetime) -> Month:
        local = now.astimezone(TZ)
        first = date(local.year, local.month, 1) - timedelta(days=1)
        return cls(first.year, first.month)

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=TZ)

    @property
    def end(self) -> datetime:
        return datetime(self.year + self.month // 12, self.month % 12 + 1, 1, tzinfo=TZ)

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)

    def days(self) -> list[date]:
        n = (self.end.date() - self.start.date()).days
        return [self.start.date() + timedelta(days=i) for i in range(n)]

    def where(self, column: str) -> str:
        """``column`` inside the month (a DateTime64 column)."""
        return (
            f"{column} >= fromUnixTimestamp64Milli({self.start_ms}) "
            f"AND {column} < fromUnixTimestamp64Milli({self.end_ms})"
        )


@dataclass
class Section:
    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    requires: tuple[str, ...] = ()
    available: bool = True
    note: str = ""


@dataclass
class MonthlyData:
    month: Month
    figures: dict[str, int | float | None]
    sections: dict[str, Section]
    generated_at: datetime
    tables: set[str]


# --- the queries (``{m:column}`` is replaced by the month filter on that column) ---------------

CALLS_SQL = """
SELECT count() AS calls,
       countIf(answered_ms > toDateTime64(0, 3)) AS answered
FROM call_summaries FINAL
WHERE {m:started_ms}
"""

INCIDENT_TOTALS_SQL = """
SELECT count() AS incidents,
       countIf(action = 'warn') AS warnings,
       uniqExactIf(call_id, action = 'end') AS abuse_terminations,
       uniqExact(call_id) AS calls_with_incidents
FROM incidents FINAL
WHERE {m:ts_ms}
"""

TIMEOUT_TERMINATIONS_SQL = """
SELECT uniqExact(call_id) AS timeout_terminations
FROM decisions FINAL
WHERE stream = 'timeout' AND kind = 'hangup' AND {m:ts_ms}
"""

BY_CATEGORY_SQL = """
SELECT category,
       count() AS incidents,
       countIf(action = 'warn') AS warnings,
       countIf(action = 'end') AS terminations,
       uniqExact(call_id) AS calls
FROM incidents FINAL
WHERE {m:ts_ms}
GROUP BY category
ORDER BY incidents DESC, category
"""

BY_DEPARTMENT_SQL = """
SELECT department,
       count() AS incidents,
       countIf(action = 'log') AS logged,
       countIf(action = 'warn') AS warnings,
       countIf(action = 'end') AS terminations,
       uniqExact(call_id) AS calls
FROM incidents FINAL
WHERE {m:ts_ms}
GROUP BY department
ORDER BY department
"""

BY_DAY_SQL = """
SELECT toDate(ts_ms, 'Asia/Seoul') AS day, count() AS incidents,
       countIf(action = 'warn') AS warnings, countIf(action = 'end') AS terminations
FROM incidents FINAL
WHERE {m:ts_ms}
GROUP BY day
ORDER BY day
"""

#: per department: abuse warnings and terminations, and 20-minute-rule terminations
TERMINATIONS_SQL = """
SELECT department,
       sum(warnings) AS abuse_warnings,
       sum(abuse_ends) AS abuse_terminations,
       sum(timeout_ends) AS timeout_terminations
FROM (
    SELECT department, countIf(action = 'warn') AS warnings,
           uniqExactIf(call_id, action = 'end') AS abuse_ends, 0 AS timeout_ends
    FROM incidents FINAL WHERE {m:ts_ms} GROUP BY department
    UNION ALL
    SELECT department, 0, 0, uniqExact(call_id)
    FROM decisions FINAL
    WHERE stream = 'timeout' AND kind = 'hangup' AND {m:ts_ms}
    GROUP BY department
)
GROUP BY department
ORDER BY department
"""

TIMEOUT_RULE_SQL = """
SELECT department,
       countIf(kind = 'notice') AS notices,
       countIf(kind = 'armed') AS armed,
       countIf(kind = 'terminate') AS terminated,
       countIf(kind = 'hangup') AS hung_up,
       countIf(kind = 'disarmed') AS justified,
       countIf(kind = 'key_before_limit') AS key_before_limit
FROM decisions FINAL
WHERE stream = 'timeout' AND {m:ts_ms}
GROUP BY department
ORDER BY department
"""

#: violations found by the consent stream, against the calls recorded in full mode
CONSENT_SQL = """
SELECT department,
       sum(recorded) AS full_recorded_calls,
       sum(missing) AS consent_missing,
       sum(late) AS recording_late,
       sum(absent) AS recording_missing,
       sum(key_starts) AS key_press_starts
FROM (
    SELECT department, uniqExact(call_id) AS recorded, 0 AS missing, 0 AS late, 0 AS absent,
           0 AS key_starts
    FROM recordings FINAL
    WHERE mode = 'full' AND {m:started_ms}
    GROUP BY department
    UNION ALL
    SELECT department, 0, countIf(kind = 'consent_missing'), countIf(kind = 'recording_late'),
           countIf(kind = 'recording_missing'), countIf(kind = 'start_recording')
    FROM decisions FINAL
    WHERE stream = 'consent' AND {m:ts_ms}
    GROUP BY department
)
GROUP BY department
ORDER BY department
"""

RECORDINGS_PURGED_SQL = """
SELECT if(r.department = '', '(unknown)', r.department) AS department,
       countIf(a.action = 'delete' AND a.result = 'deleted') AS purged,
       countIf(a.action = 'access' AND a.result = 'granted') AS accessed,
       countIf(a.action = 'access' AND a.result = 'refused') AS access_refused
FROM recording_audit AS a FINAL
LEFT JOIN (
    SELECT call_id, any(department) AS department FROM recordings FINAL GROUP BY call_id
) AS r ON r.call_id = a.call_id
WHERE {m:a.ts_ms}
GROUP BY department
ORDER BY department
"""

#: the latest confirmed / rejected label of each of the month's incidents (whenever labelled)
FEEDBACK_SQL = """
SELECT i.category AS category,
       count() AS reviewed,
       countIf(f.verdict = 'confirmed') AS confirmed,
       countIf(f.verdict = 'rejected') AS false_alarms
FROM (
    SELECT incident_id, argMax(label, ts_ms) AS verdict
    FROM feedback FINAL
    WHERE incident_id != '' AND label IN ('confirmed', 'rejected')
    GROUP BY incident_id
) AS f
INNER JOIN incidents AS i FINAL ON i.incident_id = f.incident_id
WHERE {m:i.ts_ms}
GROUP BY category
ORDER BY category
"""

#: abuse the detector missed, as staff reported it this month
MISSED_SQL = """
SELECT count() AS missed FROM feedback FINAL WHERE label = 'missed' AND {m:ts_ms}
"""

#: the staff member of a call: the endpoint the inbound call rang (``ringing``, leg staff)
STAFF_SQL = """
SELECT s.staff AS staff,
       count() AS calls,
       sum(i.n) AS incidents,
       countIf(i.n > 0) AS calls_with_incidents
FROM (
    SELECT call_id, any(attrs['endpoint']) AS staff
    FROM call_events FINAL
    WHERE type = 'ringing' AND leg = 'staff' AND attrs['endpoint'] != '' AND {m:ts_ms}
    GROUP BY call_id
) AS s
LEFT JOIN (
    SELECT call_id, count() AS n FROM incidents FINAL WHERE {m:ts_ms} GROUP BY call_id
) AS i ON i.call_id = s.call_id
GROUP BY staff
"""

SITUATIONS_SQL = """
SELECT department,
       countIf(attrs['situation'] = 'business_hours') AS business_hours,
       countIf(attrs['situation'] = 'lunch') AS lunch,
       countIf(attrs['situation'] = 'after_hours') AS after_hours,
       countIf(attrs['situation'] IN ('weekend', 'holiday')) AS weekend_holiday
FROM decisions FINAL
WHERE stream = 'ringback' AND {m:ts_ms}
GROUP BY department
ORDER BY department
"""

DEAD_LETTERS_SQL = """
SELECT source_topic, consumer, error_type, count() AS messages
FROM dead_letters FINAL
WHERE {m:ts_ms}
GROUP BY source_topic, consumer, error_type
ORDER BY messages DESC, source_topic, consumer
"""

@dataclass(frozen=True)
class SectionSpec:
    key: str
    title: str
    sql: str
    requires: tuple[str, ...]
    columns: tuple[str, ...]


#: the report's sections, in order (staff exposure is anonymised by :func:`_staff_section`)
SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec("by_category", "유형별 사건 — incidents by category", BY_CATEGORY_SQL,
                ("incidents",), ("category", "incidents", "warnings", "terminations", "calls")),
    SectionSpec("by_department", "부서별 사건 — incidents by department", BY_DEPARTMENT_SQL,
                ("incidents",),
                ("department", "incidents", "logged", "warnings", "terminations", "calls")),
    SectionSpec("by_day", "일별 사건 — incidents per day", BY_DAY_SQL, ("incidents",),
                ("day", "incidents", "warnings", "terminations")),
    SectionSpec("terminations", "경고와 종료 — warnings vs terminations", TERMINATIONS_SQL,
                ("incidents", "decisions"),
                ("department", "abuse_warnings", "abuse_terminations", "timeout_terminations")),
    SectionSpec("timeout_rule", "20분 규칙 — the 20-minute rule", TIMEOUT_RULE_SQL,
                ("decisions",),
                ("department", "notices", "armed", "terminated", "hung_up", "justified",
                 "key_before_limit")),
    SectionSpec("consent", "녹음 동의 위반 — recording consent violations", CONSENT_SQL,
                ("recordings", "decisions"),
                ("department", "full_recorded_calls", "consent_missing", "recording_late",
                 "recording_missing", "key_press_starts")),
    SectionSpec("recordings_purged", "녹음 파기 — recordings purged", RECORDINGS_PURGED_SQL,
                ("recording_audit", "recordings"),
                ("department", "purged", "accessed", "access_refused")),
    SectionSpec("feedback", "오탐률 — false alarms from reviewer feedback", FEEDBACK_SQL,
                ("feedback", "incidents"), ("category", "reviewed", "confirmed", "false_alarms")),
    SectionSpec("staff_exposure", "직원 노출 (익명) — staff exposure, anonymised", STAFF_SQL,
                ("call_events", "incidents"),
                ("staff", "calls", "incidents", "calls_with_incidents")),
    SectionSpec("situations", "점심·업무시간 외 통화 — calls at lunch and after hours",
                SITUATIONS_SQL, ("decisions",),
                ("department", "business_hours", "lunch", "after_hours", "weekend_holiday")),
    SectionSpec("dead_letters", "처리 실패 메시지 — dead letters", DEAD_LETTERS_SQL,
                ("dead_letters",), ("source_topic", "consumer", "error_type", "messages")),
)

_PLACEHOLDER = re.compile(r"\{m:([\w.]+)\}")


def month_sql(sql: str, month: Month) -> str:
    return _PLACEHOLDER.sub(lambda m: month.where(m[1]), sql)


def present_tables(reader: Reader) -> set[str]:
    result = reader.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
    return {str(row[0]) for row in result.rows}


def _int(value: Any) -> int:
    return int(value or 0)


class _Collector:
    def __init__(self, reader: Reader, month: Month, tables: set[str]) -> None:
        self.reader, self.month, self.tables = reader, month, tables

    def run(self, sql: str) -> QueryResult:
        return self.reader.query(month_sql(sql, self.month))

    def section(self, spec: SectionSpec) -> Section:
        columns = list(spec.columns)
        missing = [t for t in spec.requires if t not in self.tables]
        if missing:
            return Section(
                spec.key, spec.title, columns, [], spec.requires, available=False,
                note=f"not available yet: table {', '.join(missing)} does not exist in this "
                "database (the migration that adds it has not been applied)",
            )
        result = self.run(spec.sql)
        if list(result.columns) != columns:
            raise RuntimeError(f"{spec.key}: query returned {result.columns}, expected {columns}")
        return Section(spec.key, spec.title, columns, [list(r) for r in result.rows],
                       spec.requires)


def _staff_section(
    c: _Collector, spec: SectionSpec
) -> tuple[Section, dict[str, int | float | None]]:
    section = c.section(spec)
    if not section.available:
        return section, {}
    staff = sorted(
        ([_int(r[1]), _int(r[2]), _int(r[3])] for r in section.rows),
        key=lambda r: (-r[1], -r[2], -r[0]),
    )
    section.rows = [[f"직원 {n}", *r] for n, r in enumerate(staff, start=1)]  # rank, never id
    exposed = [r[1] for r in staff if r[1] > 0]
    figures: dict[str, int | float | None] = {
        "staff_with_calls": len(staff),
        "staff_exposed": len(exposed),
        "incidents_per_exposed_staff_median": statistics.median(exposed) if exposed else 0,
        "incidents_per_exposed_staff_max": max(exposed) if exposed else 0,
    }
    return section, figures


def exposure_distribution(section: Section) -> list[tuple[str, int]]:
    """Staff members per bucket of incidents they took (``EXPOSURE_BUCKETS``)."""
    counts = [int(r[2]) for r in section.rows]
    out = []
    for low, high, label in EXPOSURE_BUCKETS:
        out.append((label, sum(1 for n in counts if n >= low and (high is None or n <= high))))
    return out


def collect(reader: Reader, month: Month, *, now: datetime | None = None) -> MonthlyData:
    """Every number of the report for ``month``."""
    tables = present_tables(reader)
    c = _Collector(reader, month, tables)
    sections: dict[str, Section] = {}
    staff_figures: dict[str, int | float | None] = {}
    for spec in SECTIONS:
        if spec.key == "staff_exposure":
            sections[spec.key], staff_figures = _staff_section(c, spec)
        else:
            sections[spec.key] = c.section(spec)
    by_day = sections["by_day"]
    if by_day.available:  # every day of the month, quiet days too
        seen = {str(r[0]): r for r in by_day.rows}
        by_day.rows = [
            [d.isoformat(), *(seen[d.isoformat()][1:] if d.isoformat() in seen else [0, 0, 0])]
            for d in month.days()
        ]

    figures: dict[str, int | float | None] = {}
    if "call_summaries" in tables:
        row = c.run(CALLS_SQL).rows[0]
        figures.update(calls=_int(row[0]), answered=_int(row[1]))
    if "incidents" in tables:
        row = c.run(INCIDENT_TOTALS_SQL).rows[0]
        figures.update(
            incidents=_int(row[0]), warnings=_int(row[1]), abuse_terminations=_int(row[2]),
            calls_with_incidents=_int(row[3]),
        )
    if "decisions" in tables:
        figures["timeout_terminations"] = _int(c.run(TIMEOUT_TERMINATIONS_SQL).rows[0][0])
    consent = sections["consent"]
    figures["consent_violations"] = (
        sum(_int(r[2]) + _int(r[3]) + _int(r[4]) for r in consent.rows)
        if consent.available else None
    )
    purged = sections["recordings_purged"]
    figures["recordings_purged"] = (
        sum(_int(r[1]) for r in purged.rows) if purged.available else None
    )
    feedback = sections["feedback"]
    if feedback.available:
        reviewed = sum(_int(r[1]) for r in feedback.rows)
        false_alarms = sum(_int(r[3]) for r in feedback.rows)
        figures["reviewed"] = reviewed
        figures["false_alarm_rate"] = round(false_alarms / reviewed, 4) if reviewed else None
        figures["missed_reported"] = _int(c.run(MISSED_SQL).rows[0][0])
    else:
        figures["reviewed"] = figures["false_alarm_rate"] = figures["missed_reported"] = None
    figures.update(staff_figures)
    dead = sections["dead_letters"]
    figures["dead_letters"] = sum(_int(r[3]) for r in dead.rows) if dead.available else None
    return MonthlyData(
        month=month,
        figures=figures,
        sections=sections,
        generated_at=(now or datetime.now(UTC)).astimezone(TZ),
        tables=tables,
    )


#: key figures in report order: key → (Korean label, English label)
FIGURE_LABELS: Mapping[str, tuple[str, str]] = {
    "calls": ("전체 통화", "calls"),
    "answered": ("응답 통화", "answered calls"),
    "incidents": ("탐지된 사건", "incidents detected"),
    "calls_with_incidents": ("사건이 있었던 통화", "calls with incidents"),
    "warnings": ("경고 안내", "abuse warnings"),
    "abuse_terminations": ("폭언으로 종료된 통화", "calls ended for abuse"),
    "timeout_terminations": ("20분 규칙으로 종료된 통화", "calls ended by the 20-minute rule"),
    "consent_violations": ("녹음 동의 위반", "recording consent violations"),
    "recordings_purged": ("파기된 녹음", "recordings purged"),
    "reviewed": ("검토된 사건", "incidents reviewed"),
    "false_alarm_rate": ("오탐률", "false-alarm rate"),
    "missed_reported": ("미탐 신고", "missed abuse reported by staff"),
    "staff_exposed": ("사건을 겪은 직원 수", "staff exposed to incidents"),
    "staff_with_calls": ("통화한 직원 수", "staff who took calls"),
    "incidents_per_exposed_staff_median": (
        "직원당 사건 (중앙값)", "incidents per exposed staff, median"
    ),
    "incidents_per_exposed_staff_max": ("직원당 사건 (최대)", "incidents per exposed staff, max"),
    "dead_letters": ("처리 실패 메시지", "dead letters"),
}


def format_figure(key: str, value: int | float | None) -> str:
    if value is None:
        return "—"
    if key == "false_alarm_rate":
        return f"{100 * float(value):.1f}%"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}"
    return f"{int(value):,}"
