"""Every Grafana panel's SQL, run against seeded chDB: it parses, returns its declared
columns, and (for a few) the numbers a direct query gives.  Needs only chDB, not Kafka.

chDB allows one engine per process, so this uses the session's chDB directory (the one the
other integration tests' sinks use) with databases of its own.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from connectors.clickhouse.migrations import MIGRATIONS_DIR
from connectors.clickhouse.reader import ClientReader
from connectors.grafana import dashboards as d
from pipelines.reporting.monthly import Month, collect
from tests.support.seed import REPORT_MONTH, seed_in_process

DATABASE = "seed_dashboards"
OLD_DATABASE = "seed_dashboards_v001"
MONTH = Month.parse(REPORT_MONTH)


@pytest.fixture(scope="module")
def reader(chdb_dir: Path) -> ClientReader:
    counts = seed_in_process(chdb_dir / "chdb", DATABASE)
    assert counts["incidents"] > 0 and counts["recordings"] > 0 and counts["feedback"] > 0
    return ClientReader(f"chdb://{(chdb_dir / 'chdb').resolve()}", DATABASE)


def run_panel(reader: ClientReader, key: str) -> tuple[list[str], list[list[object]]]:
    sql = d.expand_macros(d.PANELS[key].sql, MONTH.start_ms, MONTH.end_ms - 1)
    result = reader.query(sql)
    return result.columns, result.rows


@pytest.mark.parametrize("key", sorted(d.PANELS))
def test_panel_sql_returns_its_columns(reader: ClientReader, key: str) -> None:
    columns, rows = run_panel(reader, key)
    assert columns == list(d.PANELS[key].columns)
    assert rows, f"{key}: the seeded month should give this panel rows"
    if d.PANELS[key].time_series:
        assert all(isinstance(r[0], datetime) for r in rows)


def test_every_table_the_panels_need_exists_after_migrating(reader: ClientReader) -> None:
    present = {r[0] for r in reader.query("SELECT name FROM system.tables "
                                          "WHERE database = currentDatabase()").rows}
    needed = {t for p in d.PANELS.values() for t in p.requires}
    assert needed <= present


def test_terminations_panel_counts_what_a_direct_query_counts(reader: ClientReader) -> None:
    _, rows = run_panel(reader, "terminations")
    in_march = "toYYYYMM(ts_ms, 'Asia/Seoul') = 202603"
    abuse = reader.query(
        f"SELECT count(DISTINCT call_id) FROM incidents FINAL WHERE action = 'end' AND {in_march}"
    ).rows[0][0]
    timeout = reader.query(
        "SELECT count(DISTINCT call_id) FROM decisions FINAL "
        f"WHERE stream = 'timeout' AND kind = 'hangup' AND {in_march}"
    ).rows[0][0]
    assert sum(r[1] for r in rows) == abuse > 0
    assert sum(r[2] for r in rows) == timeout > 0


def test_precision_panel_uses_the_latest_label(reader: ClientReader) -> None:
    _, rows = run_panel(reader, "detection_precision")
    for _category, reviewed, confirmed, false_alarms, precision in rows:
        assert reviewed == confirmed + false_alarms
        assert precision == round(confirmed / reviewed, 3)


def test_call_load_sums_to_the_month_s_calls(reader: ClientReader) -> None:
    _, rows = run_panel(reader, "department_call_load")
    calls = reader.query(
        "SELECT count() FROM call_summaries FINAL "
        "WHERE toYYYYMM(started_ms, 'Asia/Seoul') = 202603"
    ).rows[0][0]
    assert sum(r[2] for r in rows) == calls


def test_a_database_from_before_the_new_tables(chdb_dir: Path, tmp_path: Path) -> None:
    """Migrated with V001 only (no transcripts, recordings, feedback yet): the dashboards
    show placeholders for what is missing, their SQL panels run, the report notes the gaps,
    and the seed fills what exists."""
    only_v001 = tmp_path / "migrations"
    only_v001.mkdir()
    shutil.copy(MIGRATIONS_DIR / "V001__core_tables.sql", only_v001)
    counts = seed_in_process(chdb_dir / "chdb", OLD_DATABASE, migrations_dir=only_v001)
    assert "recordings" not in counts and counts["incidents"] > 0
    old = ClientReader(f"chdb://{(chdb_dir / 'chdb').resolve()}", OLD_DATABASE)
    present = {r[0] for r in old.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase()").rows}
    assert "feedback" not in present
    for spec in d.DASHBOARDS:
        dashboard = d.build_dashboard(spec, tables=present)
        for key, panel in zip(spec.panels, dashboard["panels"], strict=True):
            if set(d.PANELS[key].requires) <= present:
                assert panel["type"] != "text"
                columns, _ = run_panel(old, key)
                assert columns == list(d.PANELS[key].columns)
            else:
                assert panel["type"] == "text", key
                assert "Waiting for table" in panel["options"]["content"]
    data = collect(old, MONTH)
    assert data.figures["incidents"] > 0
    assert data.figures["false_alarm_rate"] is None
    assert not data.sections["feedback"].available
    assert "feedback" in data.sections["feedback"].note
