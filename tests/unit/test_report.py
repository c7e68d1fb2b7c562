"""The monthly report without a database: month bounds, missing tables, anonymity, fonts,
rendering (a fake reader answers the queries)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.clickhouse.query_api import QueryResult
from pipelines.reporting import build_report
from pipelines.reporting import fonts as font_module
from pipelines.reporting.monthly import (
    FIGURE_LABELS,
    SECTIONS,
    Month,
    Section,
    collect,
    exposure_distribution,
    format_figure,
    month_sql,
)

NAMES = {"traffic": "교통과", "housing": "주택정책과"}


def test_month_bounds_are_seoul_midnights() -> None:
    march = Month.parse("2026-03")
    assert march.start_ms == int(datetime(2026, 2, 28, 15, tzinfo=UTC).timestamp() * 1000)
    assert march.end_ms == int(datetime(2026, 3, 31, 15, tzinfo=UTC).timestamp() * 1000)
    assert len(march.days()) == 31
    december = Month.parse("2025-12")
    assert december.end.isoformat() == "2026-01-01T00:00:00+09:00"
    assert Month.previous(datetime(2026, 4, 1, 0, 30, tzinfo=UTC)).label == "2026-03"
    # 2026-03-31 16:00 UTC is already April 1st in Seoul
    assert Month.previous(datetime(2026, 3, 31, 16, tzinfo=UTC)).label == "2026-03"
    for bad in ("2026-3", "2026-13", "march", "2026-03-01"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            Month.parse(bad)


def test_month_filter_placeholders() -> None:
    sql = month_sql("SELECT 1 FROM t WHERE {m:ts_ms} AND {m:i.ts_ms}", Month.parse("2026-03"))
    assert "{m:" not in sql
    assert sql.count("fromUnixTimestamp64Milli(1772290800000)") == 2
    assert "i.ts_ms < fromUnixTimestamp64Milli(1774969200000)" in sql


class FakeReader:
    """Answers system.tables with ``tables``, a section's query with ``answers[key]`` (rows)
    or no rows, and the key-figure queries from ``figures`` (matched by a marker)."""

    def __init__(
        self,
        tables: set[str],
        answers: dict[str, list[list[Any]]] | None = None,
        figures: dict[str, QueryResult] | None = None,
    ) -> None:
        self.tables = tables
        self.answers = answers or {}
        self.figures = figures or {}
        self.queries: list[str] = []
        self.month = Month.parse("2026-03")

    def query(self, sql: str) -> QueryResult:
        self.queries.append(sql)
        if "system.tables" in sql:
            return QueryResult(["name"], ["String"], [[t] for t in sorted(self.tables)])
        for spec in SECTIONS:
            if sql == month_sql(spec.sql, self.month):
                return QueryResult(list(spec.columns), [], self.answers.get(spec.key, []))
        for marker, result in self.figures.items():
            if marker in sql:
                return result
        raise AssertionError(f"unexpected query: {sql[:200]}")


def test_missing_tables_give_notes_not_errors() -> None:
    reader = FakeReader({"call_summaries"}, figures={
        "FROM call_summaries": QueryResult(["calls", "answered"], [], [[10, 7]]),
    })
    data = collect(reader, Month.parse("2026-03"))
    assert data.figures["calls"] == 10
    assert data.figures["consent_violations"] is None
    assert data.figures["false_alarm_rate"] is None
    for key in ("by_category", "feedback", "recordings_purged", "staff_exposure"):
        assert not data.sections[key].available
        assert "does not exist" in data.sections[key].note
    # nothing was asked of a table that is not there
    assert not any("FROM incidents" in q for q in reader.queries)


def test_staff_are_ranked_never_named() -> None:
    rows = [["staff03", 40, 0, 0], ["staff01", 50, 7, 4], ["staff02", 45, 2, 2]]
    reader = FakeReader({"call_events", "incidents"}, {"staff_exposure": rows}, figures={
        "calls_with_incidents": QueryResult(["incidents", "warnings", "abuse_terminations",
                                             "calls_with_incidents"], [], [[9, 0, 0, 6]]),
    })
    data = collect(reader, Month.parse("2026-03"))
    section = data.sections["staff_exposure"]
    assert section.rows == [["직원 1", 50, 7, 4], ["직원 2", 45, 2, 2], ["직원 3", 40, 0, 0]]
    assert "staff0" not in repr(section.rows)
    assert data.figures["staff_exposed"] == 2
    assert data.figures["incidents_per_exposed_staff_max"] == 7
    assert exposure_distribution(section) == [
        ("0", 1), ("1–2", 1), ("3–5", 0), ("6–10", 1), ("11+", 0)
    ]
    assert len(data.sections["by_day"].rows) == 31  # quiet days are rows too


def test_figure_formatting() -> None:
    assert format_figure("false_alarm_rate", 0.2308) == "23.1%"
    assert format_figure("calls", 1234) == "1,234"
    assert format_figure("incidents_per_exposed_staff_median", 12.5) == "12.5"
    assert format_figure("recordings_purged", None) == "—"
    assert set(FIGURE_LABELS) >= {"incidents", "abuse_terminations", "timeout_terminations"}


def test_a_hangul_font_is_found_or_fetched() -> None:
    font = font_module.ensure_korean_font()
    assert font is not None and font_module.covers_hangul(font.path)
    import matplotlib

    assert matplotlib.rcParams["font.sans-serif"][0] == font.family


def test_no_font_and_no_fetch_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(font_module, "_system", lambda: None)
    assert font_module.find_korean_font(tmp_path / "empty", fetch=False) is None
    with pytest.raises(font_module.KoreanFontMissing, match="fonts-nanum"):
        font_module.ensure_korean_font(tmp_path / "empty", fetch=False)


def test_render_from_fake_numbers(tmp_path: Path) -> None:
    reader = FakeReader(
        {"incidents"},
        {"by_category": [["insult", 3, 1, 1, 2], ["threat", 1, 1, 0, 1]],
         "by_department": [["traffic", 4, 2, 1, 1, 3]]},
        figures={"calls_with_incidents": QueryResult(
            ["incidents", "warnings", "abuse_terminations", "calls_with_incidents"], [],
            [[4, 2, 1, 3]])},
    )
    data, files = build_report(
        reader, Month.parse("2026-03"), tmp_path, NAMES, now=datetime(2026, 4, 2, tzinfo=UTC)
    )
    assert data.figures["incidents"] == 4
    assert files.missing_glyphs == []
    page = files.html.read_text(encoding="utf-8")
    assert 'data-metric="incidents" data-value="4"' in page
    assert "월간 악성 민원 보고서" in page and "교통과" in page
    assert page.count("data:image/png;base64,") >= 2  # category and department charts
    assert files.pdf.read_bytes().startswith(b"%PDF")
    assert files.pages == 1 + len(data.sections)


def test_sections_are_sections() -> None:
    section = Section("x", "t", ["a"], [[1]])
    assert section.available and section.note == ""
