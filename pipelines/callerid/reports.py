"""Answer rates of outbound calls by caller-ID branding mode (ClickHouse SQL)."""

from __future__ import annotations

from pipelines.ringback.reports import department_filter


def answer_rate_by_mode_sql(department: str | None = None) -> str:
    """Columns: mode (display | display_kakao | none), calls, answered, rate.

    Outbound call summaries joined to the ``callerid`` decision of each call; a call without
    one (branding not running) counts as ``none``.
    """
    return f"""
WITH modes AS (
    SELECT call_id, any(kind) AS mode FROM decisions FINAL
    WHERE stream = 'callerid' GROUP BY call_id
)
SELECT if(m.mode = '', 'none', m.mode) AS mode,
    count() AS calls,
    countIf(toUnixTimestamp64Milli(s.answered_ms) > 0) AS answered,
    round(answered / calls, 4) AS rate
FROM call_summaries AS s FINAL
LEFT JOIN modes AS m ON m.call_id = s.call_id
WHERE s.direction = 'outbound'{department_filter(department, "s.department")}
GROUP BY mode
ORDER BY mode
"""
