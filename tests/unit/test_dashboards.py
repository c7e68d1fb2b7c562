"""Grafana dashboards as code: JSON shape, placeholders for missing tables, export, push.

No Grafana runs here: the push path is tested against a fake grafana-api client object; the
panels' SQL runs against seeded chDB in tests/integration/test_dashboards_sql.py.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from connectors.grafana import dashboards as d
from pipelines.cli import main
from pipelines.departments import load_directory

REPO = Path(__file__).resolve().parents[2]
EXPORTED = REPO / "docker" / "grafana" / "dashboards"
NAMES = {code: dept.name for code, dept in load_directory().departments.items()}


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard["panels"])


def test_every_panel_query_is_time_bounded_final_and_declares_its_columns() -> None:
    for key, panel in d.PANELS.items():
        assert panel.key == key
        assert panel.columns and len(set(panel.columns)) == len(panel.columns), key
        assert "$__timeFilter_ms(" in panel.sql, f"{key}: no dashboard time filter"
        for table in re.findall(r"\bFROM\s+(\w+)", panel.sql):
            assert table in panel.requires, f"{key}: reads {table} but does not require it"
        tables = re.findall(r"\b(?:FROM|JOIN)\s+(\w+)(?:\s+AS\s+\w+)?(\s+FINAL)?", panel.sql)
        for table, final in tables:
            assert final, f"{key}: {table} read without FINAL (ReplacingMergeTree)"
        if panel.time_series:
            assert panel.columns[0] == "time", key


def test_every_panel_appears_on_a_dashboard_once() -> None:
    used = [key for spec in d.DASHBOARDS for key in spec.panels]
    assert sorted(used) == sorted(d.PANELS)


def test_dashboards_json_shape() -> None:
    built = d.build_dashboards(department_names=NAMES)
    assert [b["uid"] for b in built] == [s.uid for s in d.DASHBOARDS]
    for dashboard in built:
        json.dumps(dashboard)  # serialisable
        assert dashboard["timezone"] == "Asia/Seoul"
        ids = [p["id"] for p in all_panels(dashboard)]
        assert len(set(ids)) == len(ids)
        for panel in all_panels(dashboard):
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0
            if panel["type"] == "text":
                continue
            assert panel["datasource"] == {
                "type": "grafana-clickhouse-datasource",
                "uid": "callguard-clickhouse",
            }
            (target,) = panel["targets"]
            assert target["datasource"] == panel["datasource"]
            assert target["editorType"] == "sql"
            assert target["rawSql"].startswith("SELECT")
            assert target["format"] in (0, 1)


def test_department_names_are_value_mappings() -> None:
    safety = d.build_dashboards(department_names=NAMES)[0]
    consent = next(p for p in safety["panels"] if p["title"] == "Recording consent compliance")
    (mapping,) = consent["fieldConfig"]["defaults"]["mappings"]
    assert mapping["options"]["traffic"]["text"] == "교통과 (traffic)"


def test_migrations_create_every_required_table() -> None:
    tables = d.migration_tables()
    assert {"call_events", "incidents", "decisions", "dead_letters"} <= tables
    required = {t for panel in d.PANELS.values() for t in panel.requires}
    # every table a panel needs is in some migration of this tree, so no placeholder today
    assert required <= tables, required - tables


def test_panel_waits_as_text_when_its_table_is_missing() -> None:
    present = d.migration_tables() - {"feedback"}
    safety = d.build_dashboard(d.DASHBOARDS[0], tables=present)
    by_key = dict(zip(d.DASHBOARDS[0].panels, safety["panels"], strict=True))
    waiting = by_key["detection_precision"]
    assert waiting["type"] == "text"
    assert "`feedback`" in waiting["options"]["content"]
    assert "targets" not in waiting
    assert by_key["live_incidents"]["type"] == "table"
    full = d.build_dashboard(d.DASHBOARDS[0])
    assert dict(zip(d.DASHBOARDS[0].panels, full["panels"], strict=True))[
        "detection_precision"
    ]["type"] == "table"


def test_expand_macros() -> None:
    sql = d.expand_macros("SELECT 1 FROM t WHERE $__timeFilter_ms(t.ts_ms) AND x", 1000, 2000)
    assert sql == (
        "SELECT 1 FROM t WHERE t.ts_ms >= fromUnixTimestamp64Milli(1000) "
        "AND t.ts_ms <= fromUnixTimestamp64Milli(2000) AND x"
    )
    with pytest.raises(ValueError, match="unexpanded"):
        d.expand_macros("SELECT $__interval_ms", 0, 1)


def test_export_and_stale_check(tmp_path: Path) -> None:
    built = d.build_dashboards(department_names=NAMES)
    assert d.stale_exports(tmp_path, built) == [f"{s.uid}.json" for s in d.DASHBOARDS]
    paths = d.export(tmp_path, built)
    assert [p.name for p in paths] == [f"{s.uid}.json" for s in d.DASHBOARDS]
    assert d.stale_exports(tmp_path, built) == []
    assert json.loads(paths[0].read_text(encoding="utf-8"))["uid"] == "callguard-safety"
    assert "교통과" in paths[0].read_text(encoding="utf-8")  # not \\u-escaped


def test_committed_provisioning_files_are_current() -> None:
    """docker/grafana/dashboards/ (mounted by compose) must match the code."""
    stale = d.stale_exports(EXPORTED, d.build_dashboards(department_names=NAMES))
    assert stale == [], (
        f"stale: {stale}; run `callguard dashboards export docker/grafana/dashboards`"
    )


def test_provisioned_datasource_matches_the_dashboards() -> None:
    path = REPO / "docker" / "grafana" / "provisioning" / "datasources" / "clickhouse.yaml"
    (source,) = yaml.safe_load(path.read_text())["datasources"]
    assert (source["uid"], source["type"]) == (d.DATASOURCE_UID, d.DATASOURCE_TYPE)


def test_cli_export_and_check(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "dash"
    result = runner.invoke(main, ["dashboards", "export", "--check", str(out)])
    assert result.exit_code != 0 and "stale" in result.output
    result = runner.invoke(main, ["dashboards", "export", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s.uid}.json" for s in d.DASHBOARDS)
    result = runner.invoke(main, ["dashboards", "export", "--check", str(out)])
    assert result.exit_code == 0 and "up to date" in result.output


# --- push ----------------------------------------------------------------------------------


class NotFound(Exception):
    status_code = 404


class Denied(Exception):
    status_code = 403


class FakeFolders:
    def __init__(self, store: FakeGrafana) -> None:
        self.store = store

    def get_folder(self, uid: str) -> dict[str, Any]:
        if self.store.deny:
            raise Denied("forbidden")
        if uid not in self.store.folders:
            raise NotFound(uid)
        return {"uid": uid, "title": self.store.folders[uid]}

    def create_folder(self, title: str, uid: str | None = None) -> dict[str, Any]:
        assert uid is not None
        self.store.folders[uid] = title
        self.store.calls.append(("create_folder", uid))
        return {"uid": uid, "title": title}


class FakeDashboards:
    def __init__(self, store: FakeGrafana) -> None:
        self.store = store

    def update_dashboard(self, body: dict[str, Any]) -> dict[str, Any]:
        dashboard = body["dashboard"]
        uid = dashboard["uid"]
        exists = uid in self.store.dashboards
        if exists and not body.get("overwrite"):
            raise Exception("version-mismatch")
        assert body["folderUid"] in self.store.folders
        version = self.store.dashboards.get(uid, {}).get("version", 0) + 1
        self.store.dashboards[uid] = {"version": version, "body": json.loads(json.dumps(body))}
        self.store.calls.append(("update_dashboard", uid))
        return {"status": "success", "uid": uid, "version": version, "url": f"/d/{uid}"}


class FakeGrafana:
    """What connectors.grafana.dashboards.push uses of grafana_api's GrafanaFace."""

    def __init__(self, deny: bool = False) -> None:
        self.deny = deny
        self.folders: dict[str, str] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.folder = FakeFolders(self)
        self.dashboard = FakeDashboards(self)


def test_push_creates_the_folder_once_and_overwrites_by_uid() -> None:
    grafana = FakeGrafana()
    built = d.build_dashboards(department_names=NAMES)
    first = d.push(grafana, built)
    assert [r["uid"] for r in first] == [s.uid for s in d.DASHBOARDS]
    assert grafana.folders == {"callguard": "CallGuard"}
    second = d.push(grafana, built)
    assert [r["version"] for r in second] == [2, 2]
    assert [c for c in grafana.calls if c[0] == "create_folder"] == [("create_folder", "callguard")]
    assert sorted(grafana.dashboards) == sorted(s.uid for s in d.DASHBOARDS)
    body = grafana.dashboards["callguard-safety"]["body"]
    assert body["overwrite"] is True and body["folderUid"] == "callguard"
    assert body["dashboard"]["id"] is None  # Grafana matches on uid
    assert body["dashboard"]["panels"] == json.loads(json.dumps(built[0]["panels"]))


def test_push_reports_errors_other_than_a_missing_folder() -> None:
    with pytest.raises(Denied):
        d.push(FakeGrafana(deny=True), d.build_dashboards())


def test_cli_push_uses_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    grafana = FakeGrafana()
    seen: dict[str, str] = {}

    def fake_client(url: str, token: str, timeout_s: float = 10.0) -> FakeGrafana:
        seen.update(url=url, token=token)
        return grafana

    monkeypatch.setattr(d, "grafana_client", fake_client)
    result = CliRunner().invoke(
        main, ["dashboards", "push", "--url", "http://grafana:3000"],
        env={"GRAFANA_TOKEN": "glsa_secret"},
    )
    assert result.exit_code == 0, result.output
    assert seen == {"url": "http://grafana:3000", "token": "glsa_secret"}
    assert "callguard-safety version 1" in result.output
    assert "glsa_secret" not in result.output


def test_grafana_client_from_url() -> None:
    pytest.importorskip("grafana_api")
    client = d.grafana_client("https://grafana.example:3443/monitoring/", "glsa_token")
    assert client.api.url == "https://grafana.example:3443/monitoring/api"
    assert client.api.auth.token == "glsa_token"
    basic = d.grafana_client("http://localhost:3000", "admin:secret")
    assert basic.api.url == "http://localhost:3000/api"
    assert basic.api.auth.username == "admin"
    with pytest.raises(ValueError, match="http"):
        d.grafana_client("grafana:3000", "t")


def test_grafana_client_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "grafana_api", None)
    monkeypatch.setitem(sys.modules, "grafana_api.grafana_face", None)
    with pytest.raises(d.GrafanaClientMissing, match=r"callguard\[grafana\]"):
        d.grafana_client("http://localhost:3000", "t")
    result = CliRunner().invoke(
        main, ["dashboards", "push", "--url", "http://localhost:3000", "--token", "t"]
    )
    assert result.exit_code != 0 and "callguard[grafana]" in result.output
