"""The monthly abuse report over seeded chDB: its numbers equal direct SQL counts, page 1 of
the PDF is really drawn with Hangul glyphs, staff are never named, and `callguard report`
reads through the sink's query API when one answers.  Needs only chDB, not Kafka.
"""

from __future__ import annotations

import json
import re
import threading
import warnings
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from connectors.clickhouse.client import connect
from connectors.clickhouse.query_api import QueryServer
from connectors.clickhouse.reader import ClientReader
from pipelines.cli import main
from pipelines.departments import load_directory
from pipelines.reporting import MonthlyData, ReportFiles, build_report
from pipelines.reporting.fonts import KOREAN_FAMILIES
from pipelines.reporting.monthly import Month
from tests.integration.conftest import free_port
from tests.support.seed import REPORT_MONTH, seed_in_process

DATABASE = "seed_report"
MONTH = Month.parse(REPORT_MONTH)
IN_MONTH = "toYYYYMM({column}, 'Asia/Seoul') = 202603"
NAMES = {code: d.name for code, d in load_directory().departments.items()}


@pytest.fixture(scope="module")
def reader(chdb_dir: Path) -> ClientReader:
    seed_in_process(chdb_dir / "chdb", DATABASE)
    return ClientReader(f"chdb://{(chdb_dir / 'chdb').resolve()}", DATABASE)


@pytest.fixture(scope="module")
def report(
    reader: ClientReader, tmp_path_factory: pytest.TempPathFactory
) -> tuple[MonthlyData, ReportFiles]:
    out = tmp_path_factory.mktemp("report")
    return build_report(reader, MONTH, out, NAMES, now=datetime(2026, 4, 1, 9, tzinfo=UTC))


def scalar(reader: ClientReader, sql: str) -> Any:
    return reader.query(sql).rows[0][0]


def where(column: str) -> str:
    return IN_MONTH.format(column=column)


def test_numbers_match_direct_sql(reader: ClientReader, report: Any) -> None:
    data, _ = report
    f = data.figures
    assert f["calls"] == scalar(
        reader, f"SELECT count() FROM call_summaries FINAL WHERE {where('started_ms')}"
    ) > 0
    assert f["incidents"] == scalar(
        reader, f"SELECT count() FROM incidents FINAL WHERE {where('ts_ms')}"
    ) > 0
    all_incidents = scalar(reader, "SELECT count() FROM incidents FINAL")
    assert f["incidents"] < all_incidents  # February is left out
    assert f["warnings"] == scalar(
        reader,
        f"SELECT count() FROM incidents FINAL WHERE action = 'warn' AND {where('ts_ms')}",
    )
    assert f["abuse_terminations"] == scalar(
        reader,
        "SELECT count(DISTINCT call_id) FROM incidents FINAL "
        f"WHERE action = 'end' AND {where('ts_ms')}",
    ) > 0
    assert f["timeout_terminations"] == scalar(
        reader,
        "SELECT count(DISTINCT call_id) FROM decisions FINAL "
        f"WHERE stream = 'timeout' AND kind = 'hangup' AND {where('ts_ms')}",
    ) > 0
    assert f["consent_violations"] == scalar(
        reader,
        "SELECT count() FROM decisions FINAL WHERE stream = 'consent' AND kind IN "
        f"('consent_missing', 'recording_late', 'recording_missing') AND {where('ts_ms')}",
    ) > 0
    assert f["recordings_purged"] == scalar(
        reader,
        "SELECT count() FROM recording_audit FINAL "
        f"WHERE action = 'delete' AND result = 'deleted' AND {where('ts_ms')}",
    ) > 0
    assert f["dead_letters"] == scalar(
        reader, f"SELECT count() FROM dead_letters FINAL WHERE {where('ts_ms')}"
    )


def test_sections_match_direct_sql(reader: ClientReader, report: Any) -> None:
    data, _ = report
    by_category = dict(reader.query(
        f"SELECT category, count() FROM incidents FINAL WHERE {where('ts_ms')} GROUP BY category"
    ).rows)
    assert {r[0]: r[1] for r in data.sections["by_category"].rows} == by_category
    by_day = dict(reader.query(
        "SELECT toString(toDate(ts_ms, 'Asia/Seoul')), count() FROM incidents FINAL "
        f"WHERE {where('ts_ms')} GROUP BY 1"
    ).rows)
    rows = data.sections["by_day"].rows
    assert len(rows) == 31
    assert {r[0]: r[1] for r in rows if r[1]} == by_day
    by_department = dict(reader.query(
        "SELECT department, count() FROM incidents FINAL "
        f"WHERE {where('ts_ms')} GROUP BY department"
    ).rows)
    assert {r[0]: r[1] for r in data.sections["by_department"].rows} == by_department


def test_false_alarm_rate_from_the_latest_labels(reader: ClientReader, report: Any) -> None:
    """Computed here in Python from raw rows: the last label per incident wins."""
    data, _ = report
    march = {r[0] for r in reader.query(
        f"SELECT incident_id FROM incidents FINAL WHERE {where('ts_ms')}").rows}
    latest: dict[str, tuple[Any, str]] = {}
    for incident_id, label, ts in reader.query(
        "SELECT incident_id, label, ts_ms FROM feedback FINAL "
        "WHERE label IN ('confirmed', 'rejected')"
    ).rows:
        if incident_id in march and (incident_id not in latest or ts > latest[incident_id][0]):
            latest[incident_id] = (ts, label)
    rejected = sum(1 for _, label in latest.values() if label == "rejected")
    assert data.figures["reviewed"] == len(latest) > 0
    assert data.figures["false_alarm_rate"] == round(rejected / len(latest), 4)


def test_staff_exposure_matches_raw_events_and_names_nobody(
    reader: ClientReader, report: Any
) -> None:
    data, files = report
    staff_of = dict(reader.query(
        "SELECT call_id, any(attrs['endpoint']) FROM call_events FINAL "
        f"WHERE type = 'ringing' AND leg = 'staff' AND {where('ts_ms')} GROUP BY call_id"
    ).rows)
    per_staff: Counter[str] = Counter({s: 0 for s in staff_of.values()})
    for (call_id,) in reader.query(
        f"SELECT call_id FROM incidents FINAL WHERE {where('ts_ms')}"
    ).rows:
        if call_id in staff_of:
            per_staff[staff_of[call_id]] += 1
    rows = data.sections["staff_exposure"].rows
    assert sorted((r[2] for r in rows), reverse=True) == sorted(per_staff.values(), reverse=True)
    assert [r[0] for r in rows] == [f"직원 {n}" for n in range(1, len(rows) + 1)]
    ids = set(per_staff)
    texts = [files.html.read_text(encoding="utf-8"), files.data.read_text(encoding="utf-8")]
    for text in texts:
        assert not any(staff in text for staff in ids)
        assert "010-0000-" not in text  # nor citizens' numbers


def test_html_shows_the_same_numbers(report: Any) -> None:
    data, files = report
    page = files.html.read_text(encoding="utf-8")
    shown = dict(re.findall(r'data-metric="(\w+)" data-value="([^"]*)"', page))
    for key, value in data.figures.items():
        assert shown[key] == ("" if value is None else str(value))
    assert json.loads(files.data.read_text(encoding="utf-8"))["figures"] == json.loads(
        json.dumps(data.figures)
    )
    assert page.count("data:image/png;base64,") >= 8
    assert "not available yet" not in page  # every table exists in the seeded database


def test_pdf_page_one_is_drawn_with_hangul(report: Any) -> None:
    import pypdfium2 as pdfium

    data, files = report
    assert files.missing_glyphs == []
    assert files.font is not None and files.font.family in KOREAN_FAMILIES
    pdf = pdfium.PdfDocument(str(files.pdf))
    try:
        assert len(pdf) == files.pages
        page = pdf[0]
        text = page.get_textpage().get_text_range()
        pixels = np.asarray(page.render(scale=1.5).to_pil().convert("L"), dtype=float)
    finally:
        pdf.close()
    assert "월간 악성 민원 보고서" in text
    assert f"{data.figures['incidents']:,}" in text
    assert pixels.std() > 20  # not blank
    assert (pixels < 128).mean() > 0.01  # a real amount of ink
    # the title area holds real glyphs: drawing it in the report's font differs from
    # drawing characters the font lacks (which would be tofu boxes)
    import matplotlib.pyplot as plt

    def ink(text: str) -> np.ndarray:
        fig = plt.figure(figsize=(4, 1), dpi=80)
        fig.text(0.05, 0.3, text, fontsize=20, family=files.font.family)
        fig.canvas.draw()
        image = np.asarray(fig.canvas.buffer_rgba())[..., 0].copy()
        plt.close(fig)
        return image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tofu = ink("\U000f0000\U000f0001\U000f0002")  # private-use: no font has them
    hangul = ink("보고서")
    assert (hangul < 128).sum() > 0
    assert not np.array_equal(hangul, tofu)


def test_cli_reads_through_the_sink_api_when_one_answers(
    chdb_dir: Path, reader: ClientReader, report: Any, tmp_path: Path
) -> None:
    """`callguard report` with embedded chDB and a running sink reads through the sink's
    query API (here a QueryServer on the seeded database, as the sink serves it); the numbers
    equal those read from chDB directly (the ``report`` fixture)."""
    data, _ = report
    env = {"CALLGUARD_DATA_DIR": str(chdb_dir), "CALLGUARD_CLICKHOUSE_DATABASE": DATABASE}
    runner = CliRunner()
    bad = runner.invoke(main, ["report", "--month", "2026-13"], env=env)
    assert bad.exit_code != 0 and "YYYY-MM" in bad.output

    port = free_port()
    client = connect(f"chdb://{(chdb_dir / 'chdb').resolve()}", DATABASE)
    queries: list[str] = []

    def health() -> dict[str, Any]:
        return {"seeded": True}

    server = QueryServer(client, threading.Lock(), port, health)
    original = server.httpd.RequestHandlerClass.do_POST

    def counting(handler: Any) -> None:
        queries.append(handler.path)
        original(handler)

    server.httpd.RequestHandlerClass.do_POST = counting  # type: ignore[method-assign]
    server.start()
    try:
        via_api = runner.invoke(
            main,
            ["report", "--month", REPORT_MONTH, "--out", str(tmp_path / "api")],
            env={**env, "CALLGUARD_QUERY_PORT": str(port)},
        )
    finally:
        server.stop()
    assert via_api.exit_code == 0, via_api.output
    assert len(queries) > 10  # every query went through the API
    written = json.loads(next((tmp_path / "api").glob("*.json")).read_text(encoding="utf-8"))
    assert written["figures"] == json.loads(json.dumps(data.figures))
    assert "wrote" in via_api.output and "not available" not in via_api.output
