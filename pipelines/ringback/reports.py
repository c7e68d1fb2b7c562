"""Report queries over ClickHouse: who heard which ringback, and repeat-call rates.

Plain SQL strings for ``callguard db query`` / the reader API / dashboards.  Tables are
ReplacingMergeTree, so each query reads with FINAL.
"""

from __future__ import annotations

import re

_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def department_filter(department: str | None, column: str = "department") -> str:
    """`` AND <column> = '<code>'`` for a valid department code, '' for None."""
    if department is None:
        return ""
    if not _CODE.match(department):
        raise ValueError("department must be a code: letters, digits, _ . -")
    return f" AND {column} = '{department}'"


def _int(value: int, name: str) -> int:
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


def ringback_heard_sql(department: str | None = None) -> str:
    """Calls per department and ringback class (decisions of stream ``ringback``)."""
    return (
        "SELECT department, kind AS ringback, attrs['situation'] AS situation, count() AS calls "
        f"FROM decisions FINAL WHERE stream = 'ringback'{department_filter(department)} "
        "GROUP BY department, ringback, situation ORDER BY department, ringback, situation"
    )


def repeat_call_rate_sql(window_hours: int, split_ms: int, department: str | None = None) -> str:
    """Repeat-call rate before/after ``split_ms`` (e.g. when situational ringback went live),
    by the ringback the earlier call heard.

    A call is *followed by a repeat* when the same caller calls again within
    ``window_hours``.  Columns: period (before | after), ringback ('' = no decision),
    calls, repeated, rate.  Inbound calls with a caller number only.
    """
    window_ms = _int(window_hours, "window_hours") * 3600 * 1000
    split = _int(split_ms, "split_ms")
    only = department_filter(department)
    return f"""
WITH calls AS (
    SELECT call_id, any(caller) AS citizen, toUnixTimestamp64Milli(min(ts_ms)) AS ts
    FROM call_events FINAL
    WHERE type = 'call_started' AND direction = 'inbound' AND caller != ''{only}
    GROUP BY call_id
),
ordered AS (
    SELECT call_id, citizen, ts,
        leadInFrame(ts) OVER w AS next_ts,
        count() OVER w AS n
    FROM calls
    WINDOW w AS (PARTITION BY citizen ORDER BY ts, call_id
                 ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING)
),
heard AS (
    SELECT call_id, any(kind) AS ringback FROM decisions FINAL
    WHERE stream = 'ringback' GROUP BY call_id
)
SELECT if(o.ts < {split}, 'before', 'after') AS period,
    h.ringback AS ringback,
    count() AS calls,
    countIf(o.n = 2 AND o.next_ts - o.ts <= {window_ms}) AS repeated,
    round(repeated / calls, 4) AS rate
FROM ordered AS o LEFT JOIN heard AS h ON h.call_id = o.call_id
GROUP BY period, ringback
ORDER BY period DESC, ringback
"""
