"""Reports from ClickHouse: the monthly abuse report (HTML + PDF with figures).

``build_report(reader, month, out_dir, department_names)`` reads through an explicit reader
(:mod:`connectors.clickhouse.reader`) and writes the files; ``callguard report`` picks the
reader from the settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from pipelines.reporting.monthly import Month, MonthlyData, Reader, collect
from pipelines.reporting.render import ReportFiles, render

__all__ = ["Month", "MonthlyData", "ReportFiles", "build_report", "collect", "render"]


def build_report(
    reader: Reader,
    month: Month,
    out_dir: Path,
    department_names: Mapping[str, str],
    *,
    now: datetime | None = None,
    font_cache: Path | None = None,
    fetch_font: bool = True,
) -> tuple[MonthlyData, ReportFiles]:
    data = collect(reader, month, now=now)
    files = render(
        data, out_dir, dict(department_names), font_cache=font_cache, fetch_font=fetch_font
    )
    return data, files
