"""Grafana dashboards as code: panel SQL + expected columns → dashboard JSON → Grafana.

Every panel's query is a module constant (``*_SQL``) with the columns it returns
(``*_COLUMNS``); ``tests/integration/test_dashboards_sql.py`` runs each one against seeded
chDB and checks the columns, since no Grafana server runs here.  Queries are for the
``grafana-clickhouse-datasource`` plugin (data source uid ``callguard-clickhouse``, provisioned
by ``docker/grafana/provisioning/datasources/clickhouse.yaml``) and use its macro
``$__timeFilter_ms(column)`` for the dashboard's time range (:func:`expand_macros` does what
the plugin does, for tests and for running a panel elsewhere).  Days are Seoul days; tables are
ReplacingMergeTree, so every query reads with ``FINAL``.

A panel names the tables it ``requires``.  Tables arrive through migrations
(``schemas/clickhouse/V*.sql``), and ``callguard db migrate`` applies all of them wherever
these dashboards are used, so a panel whose table is in no migration (a table still being
written, or dashboards built for an older database with ``tables=``) becomes a text panel
saying what it waits for; the same code turns it into the real panel once the table exists.

Output: :func:`export` writes one JSON file per dashboard (file provisioning, see
``docker/grafana/provisioning/dashboards/callguard.yaml``); :func:`push` sends them through
the ``grafana-api`` client (``pip install 'callguard[grafana]'``), idempotently: fixed uids,
``overwrite``, one folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from connectors.clickhouse.migrations import MIGRATIONS_DIR, discover

DATASOURCE_UID = "callguard-clickhouse"
DATASOURCE_TYPE = "grafana-clickhouse-datasource"
DATASOURCE = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
FOLDER_UID = "callguard"
FOLDER_TITLE = "CallGuard"
TIMEZONE = "Asia/Seoul"
SCHEMA_VERSION = 39  # Grafana 11/12 dashboard JSON
#: one line in each placeholder panel
WAITING = "Waiting for table(s) {tables}: {note}"


@dataclass(frozen=True)
class PanelQuery:
    key: str
    title: str
    sql: str
    columns: tuple[str, ...]
    viz: str  # table | timeseries | barchart
    requires: tuple[str, ...]
    description: str
    time_series: bool = False  # plugin format 0 (time series, needs a `time` column)
    width: int = 12
    height: int = 8
    pending_note: str = ""  # why a required table may be missing


# --- panel queries -------------------------------------------------------------------------

LIVE_INCIDENTS_SQL = """
SELECT ts_ms AS time, department, category, action, round(score, 2) AS score, leg,
       model_version, call_id
FROM incidents FINAL
WHERE $__timeFilter_ms(ts_ms)
ORDER BY ts_ms DESC
LIMIT 200
"""
LIVE_INCIDENTS_COLUMNS = (
    "time", "department", "category", "action", "score", "leg", "model_version", "call_id",
)

INCIDENTS_BY_CATEGORY_SQL = """
SELECT toStartOfDay(ts_ms, 'Asia/Seoul') AS time, category, count() AS incidents
FROM incidents FINAL
WHERE $__timeFilter_ms(ts_ms)
GROUP BY time, category
ORDER BY time, category
"""
INCIDENTS_BY_CATEGORY_COLUMNS = ("time", "category", "incidents")

TERMINATIONS_SQL = """
SELECT day AS time,
       sumIf(calls, reason = 'abuse') AS abuse,
       sumIf(calls, reason = 'timeout_20min') AS timeout_20min
FROM (
    SELECT toStartOfDay(ts_ms, 'Asia/Seoul') AS day, 'abuse' AS reason,
           uniqExact(call_id) AS calls
    FROM incidents FINAL
    WHERE action = 'end' AND $__timeFilter_ms(ts_ms)
    GROUP BY day
    UNION ALL
    SELECT toStartOfDay(ts_ms, 'Asia/Seoul') AS day, 'timeout_20min' AS reason,
           uniqExact(call_id) AS calls
    FROM decisions FINAL
    WHERE stream = 'timeout' AND kind = 'hangup' AND $__timeFilter_ms(ts_ms)
    GROUP BY day
)
GROUP BY time
ORDER BY time
"""
TERMINATIONS_COLUMNS = ("time", "abuse", "timeout_20min")

TIMEOUT_STEPS_SQL = """
SELECT department,
       countIf(kind = 'notice') AS notices,
       countIf(kind = 'armed') AS armed,
       countIf(kind = 'terminate') AS terminated,
       countIf(kind = 'hangup') AS hung_up,
       countIf(kind = 'disarmed') AS justified,
       countIf(kind = 'key_before_limit') AS key_before_limit
FROM decisions FINAL
WHERE stream = 'timeout' AND $__timeFilter_ms(ts_ms)
GROUP BY department
ORDER BY department
"""
TIMEOUT_STEPS_COLUMNS = (
    "department", "notices", "armed", "terminated", "hung_up", "justified", "key_before_limit",
)

#: the consent stream's violations (decisions stream = 'consent') against the calls recorded
#: in full mode; start_recording = staff pressed the record key (key_press departments)
CONSENT_COMPLIANCE_SQL = """
SELECT department,
       sum(recorded) AS full_recorded_calls,
       sum(missing) AS consent_missing,
       sum(late) AS recording_late,
       sum(absent) AS recording_missing,
       sum(key_starts) AS key_press_starts,
       round(100 * (1 - consent_missing / nullIf(full_recorded_calls, 0)), 1) AS consent_ok_pct
FROM (
    SELECT department, uniqExact(call_id) AS recorded, 0 AS missing, 0 AS late, 0 AS absent,
           0 AS key_starts
    FROM recordings FINAL
    WHERE mode = 'full' AND $__timeFilter_ms(started_ms)
    GROUP BY department
    UNION ALL
    SELECT department, 0, countIf(kind = 'consent_missing'), countIf(kind = 'recording_late'),
           countIf(kind = 'recording_missing'), countIf(kind = 'start_recording')
    FROM decisions FINAL
    WHERE stream = 'consent' AND $__timeFilter_ms(ts_ms)
    GROUP BY department
)
GROUP BY department
ORDER BY department
"""
CONSENT_COMPLIANCE_COLUMNS = (
    "department", "full_recorded_calls", "consent_missing", "recording_late",
    "recording_missing", "key_press_starts", "consent_ok_pct",
)

#: recordings keeps the newest version per (call, leg); completeness needs the CDR
RECORDING_COMPLETENESS_SQL = """
SELECT department,
       uniqExact(call_id) AS recorded_calls,
       count() AS recordings,
       countIf(shortfall) AS short_recordings,
       sum(gap_count) AS gaps,
       sum(missing_chunks) AS missing_chunks,
       sum(lost_packets) AS lost_packets,
       round(100 * sumIf(duration_ms, cdr_seen)
             / nullIf(sumIf(expected_duration_ms, cdr_seen), 0), 2) AS recorded_pct
FROM recordings FINAL
WHERE $__timeFilter_ms(started_ms)
GROUP BY department
ORDER BY department
"""
RECORDING_COMPLETENESS_COLUMNS = (
    "department", "recorded_calls", "recordings", "short_recordings", "gaps", "missing_chunks",
    "lost_packets", "recorded_pct",
)

RECORDINGS_PURGED_SQL = """
SELECT toStartOfDay(ts_ms, 'Asia/Seoul') AS time, count() AS purged
FROM recording_audit FINAL
WHERE action = 'delete' AND result = 'deleted' AND $__timeFilter_ms(ts_ms)
GROUP BY time
ORDER BY time
"""
RECORDINGS_PURGED_COLUMNS = ("time", "purged")

#: feedback (V004): the latest confirmed / rejected label per incident; missed abuse has none
DETECTION_PRECISION_SQL = """
SELECT i.category AS category,
       count() AS reviewed,
       countIf(f.verdict = 'confirmed') AS confirmed,
       countIf(f.verdict = 'rejected') AS false_alarms,
       round(confirmed / nullIf(reviewed, 0), 3) AS precision
FROM (
    SELECT incident_id, argMax(label, ts_ms) AS verdict
    FROM feedback FINAL
    WHERE incident_id != '' AND label IN ('confirmed', 'rejected') AND $__timeFilter_ms(ts_ms)
    GROUP BY incident_id
) AS f
INNER JOIN incidents AS i FINAL ON i.incident_id = f.incident_id
GROUP BY category
ORDER BY category
"""
DETECTION_PRECISION_COLUMNS = ("category", "reviewed", "confirmed", "false_alarms", "precision")

DEPARTMENT_CALL_LOAD_SQL = """
SELECT toStartOfHour(started_ms) AS time, department, count() AS calls
FROM call_summaries FINAL
WHERE $__timeFilter_ms(started_ms)
GROUP BY time, department
ORDER BY time, department
"""
DEPARTMENT_CALL_LOAD_COLUMNS = ("time", "department", "calls")

#: situation as the ringback stream decided it from the department's calendar (holidays too)
LUNCH_AFTER_HOURS_SQL = """
SELECT department,
       countIf(attrs['situation'] = 'business_hours') AS business_hours,
       countIf(attrs['situation'] = 'lunch') AS lunch,
       countIf(attrs['situation'] = 'after_hours') AS after_hours,
       countIf(attrs['situation'] IN ('weekend', 'holiday')) AS weekend_holiday,
       countIf(startsWith(attrs['situation'], 'notice:')) AS dated_notice
FROM decisions FINAL
WHERE stream = 'ringback' AND $__timeFilter_ms(ts_ms)
GROUP BY department
ORDER BY department
"""
LUNCH_AFTER_HOURS_COLUMNS = (
    "department", "business_hours", "lunch", "after_hours", "weekend_holiday", "dated_notice",
)

DEAD_LETTERS_SQL = """
SELECT source_topic, consumer, error_type, reason, count() AS messages, max(ts_ms) AS last_seen
FROM dead_letters FINAL
WHERE $__timeFilter_ms(ts_ms)
GROUP BY source_topic, consumer, error_type, reason
ORDER BY messages DESC, source_topic, consumer
"""
DEAD_LETTERS_COLUMNS = (
    "source_topic", "consumer", "error_type", "reason", "messages", "last_seen",
)

PANELS: dict[str, PanelQuery] = {
    p.key: p
    for p in (
        PanelQuery(
            "live_incidents", "Live incidents", LIVE_INCIDENTS_SQL, LIVE_INCIDENTS_COLUMNS,
            "table", ("incidents",),
            "Latest abuse detections (newest first, at most 200): category, action taken "
            "(log / warn / end), score and model.", width=24, height=10,
        ),
        PanelQuery(
            "incidents_by_category", "Incidents per day by category",
            INCIDENTS_BY_CATEGORY_SQL, INCIDENTS_BY_CATEGORY_COLUMNS, "timeseries",
            ("incidents",), "Abuse detections per Seoul day, one series per category.",
            time_series=True,
        ),
        PanelQuery(
            "terminations", "Terminations by reason: abuse vs 20-minute rule",
            TERMINATIONS_SQL, TERMINATIONS_COLUMNS, "timeseries", ("incidents", "decisions"),
            "Calls ended per day: after an abuse warning (incident action `end`) and by the "
            "20-minute rule (timeout stream `hangup`).", time_series=True,
        ),
        PanelQuery(
            "timeout_steps", "20-minute rule: steps per department", TIMEOUT_STEPS_SQL,
            TIMEOUT_STEPS_COLUMNS, "table", ("decisions",),
            "Timeout stream decisions: advance notices, armed at the limit, terminated by the "
            "staff key, hung up, marked justified (*0), key pressed before the limit.",
        ),
        PanelQuery(
            "consent_compliance", "Recording consent compliance", CONSENT_COMPLIANCE_SQL,
            CONSENT_COMPLIANCE_COLUMNS, "table", ("recordings", "decisions"),
            "The consent stream's violations per department: caller connected before the "
            "consent notice finished, a leg's recording late or missing; against the calls "
            "recorded in full mode. Key-press starts: staff pressed the record key.",
            pending_note="the recording stream adds it (migration V003)",
        ),
        PanelQuery(
            "recording_completeness", "Recording completeness", RECORDING_COMPLETENESS_SQL,
            RECORDING_COMPLETENESS_COLUMNS, "table", ("recordings",),
            "Recorded calls and legs, recordings shorter than the CDR's talk time, gaps, "
            "missing chunks, lost RTP packets; recorded % = recorded / expected duration (legs "
            "whose CDR arrived).",
            pending_note="the recording stream adds it (migration V003)",
        ),
        PanelQuery(
            "recordings_purged", "Recordings purged (retention)", RECORDINGS_PURGED_SQL,
            RECORDINGS_PURGED_COLUMNS, "timeseries", ("recording_audit",),
            "Recordings deleted per day (recording audit log: action delete, result deleted).",
            time_series=True, pending_note="the recording stream adds it (migration V003)",
        ),
        PanelQuery(
            "detection_precision", "Detection precision from feedback",
            DETECTION_PRECISION_SQL, DETECTION_PRECISION_COLUMNS, "table",
            ("feedback", "incidents"),
            "Incidents labelled by reviewers (latest label per incident): confirmed vs "
            "rejected (false alarms); precision = confirmed / reviewed.",
            pending_note="the learning loop adds reviewer feedback (migration V004)",
        ),
        PanelQuery(
            "department_call_load", "Call load per department (hourly)",
            DEPARTMENT_CALL_LOAD_SQL, DEPARTMENT_CALL_LOAD_COLUMNS, "timeseries",
            ("call_summaries",), "Calls started per hour, one series per department.",
            time_series=True, width=24,
        ),
        PanelQuery(
            "lunch_after_hours", "Calls at lunch, after hours, weekends and holidays",
            LUNCH_AFTER_HOURS_SQL, LUNCH_AFTER_HOURS_COLUMNS, "barchart", ("decisions",),
            "Inbound calls per department by the calendar situation the ringback stream "
            "decided (department lunch hours, Korean public holidays).",
        ),
        PanelQuery(
            "dead_letters", "Dead letters", DEAD_LETTERS_SQL, DEAD_LETTERS_COLUMNS, "table",
            ("dead_letters",),
            "Rejected input by topic, consumer and reason (payloads are never stored here).",
        ),
    )
}


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    description: str
    panels: tuple[str, ...]
    tags: tuple[str, ...] = ("callguard",)
    time_from: str = "now-7d"


DASHBOARDS: tuple[DashboardSpec, ...] = (
    DashboardSpec(
        "callguard-safety",
        "CallGuard — call safety",
        "Abuse incidents, terminations, consent and recordings, detection quality.",
        (
            "live_incidents", "incidents_by_category", "terminations", "timeout_steps",
            "consent_compliance", "recording_completeness", "detection_precision",
            "recordings_purged",
        ),
        ("callguard", "safety"),
    ),
    DashboardSpec(
        "callguard-operations",
        "CallGuard — operations",
        "Call load per department, lunch and after-hours calls, pipeline dead letters.",
        ("department_call_load", "lunch_after_hours", "dead_letters"),
        ("callguard", "operations"),
    ),
)


# --- tables and macros -------------------------------------------------------------------

_CREATE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?", re.IGNORECASE)


def migration_tables(directory: Path = MIGRATIONS_DIR) -> set[str]:
    """Tables the migrations create (what `callguard db migrate` gives every database)."""
    return {m[1] for migration in discover(directory) for m in _CREATE.finditer(migration.sql)}


_TIME_FILTER_MS = re.compile(r"\$__timeFilter_ms\(\s*([\w.]+)\s*\)")


def expand_macros(sql: str, from_ms: int, to_ms: int) -> str:
    """Expand the plugin's time macros as the plugin does, for running a panel elsewhere."""
    sql = _TIME_FILTER_MS.sub(
        lambda m: (
            f"{m[1]} >= fromUnixTimestamp64Milli({from_ms}) "
            f"AND {m[1]} <= fromUnixTimestamp64Milli({to_ms})"
        ),
        sql,
    )
    sql = sql.replace("$__fromTime_ms", f"fromUnixTimestamp64Milli({from_ms})")
    sql = sql.replace("$__toTime_ms", f"fromUnixTimestamp64Milli({to_ms})")
    if "$__" in sql:
        raise ValueError(f"unexpanded macro in: {sql.strip()[:80]}")
    return sql


# --- dashboard JSON ----------------------------------------------------------------------


def _department_mapping(names: Mapping[str, str]) -> list[dict[str, Any]]:
    if not names:
        return []
    options = {
        code: {"text": f"{name} ({code})", "index": i}
        for i, (code, name) in enumerate(sorted(names.items()))
    }
    return [{"type": "value", "options": options}]


def _target(panel: PanelQuery) -> dict[str, Any]:
    return {
        "refId": "A",
        "datasource": dict(DATASOURCE),
        "editorType": "sql",
        "format": 0 if panel.time_series else 1,
        "queryType": "timeseries" if panel.time_series else "table",
        "rawSql": panel.sql.strip(),
    }


def _panel_json(
    panel: PanelQuery, panel_id: int, grid: dict[str, int], available: bool,
    department_names: Mapping[str, str],
) -> dict[str, Any]:
    if not available:
        missing = ", ".join(f"`{t}`" for t in panel.requires)
        return {
            "id": panel_id,
            "type": "text",
            "title": f"{panel.title} (pending)",
            "description": panel.description,
            "gridPos": grid,
            "options": {
                "mode": "markdown",
                "content": WAITING.format(
                    tables=missing, note=panel.pending_note or "not in the migrations yet"
                )
                + "\n\nThe panel appears when the migration that creates it is applied and the "
                "dashboards are exported or pushed again.",
            },
        }
    options: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    if panel.viz == "table":
        options = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    elif panel.viz == "timeseries":
        options = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                   "tooltip": {"mode": "multi", "sort": "desc"}}
        custom = {"drawStyle": "bars", "fillOpacity": 60, "stacking": {"mode": "normal"}}
    elif panel.viz == "barchart":
        options = {"orientation": "horizontal", "stacking": "normal", "showValue": "auto",
                   "xField": panel.columns[0],
                   "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
    defaults: dict[str, Any] = {"mappings": []}
    if custom:
        defaults["custom"] = custom
    if "department" in panel.columns:
        defaults["mappings"] = _department_mapping(department_names)
    return {
        "id": panel_id,
        "type": panel.viz,
        "title": panel.title,
        "description": panel.description,
        "gridPos": grid,
        "datasource": dict(DATASOURCE),
        "targets": [_target(panel)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }


def build_dashboard(
    spec: DashboardSpec,
    *,
    tables: Iterable[str] | None = None,
    department_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Dashboard JSON for ``spec``; ``tables``: those that exist (default: the migrations')."""
    present = set(migration_tables() if tables is None else tables)
    names = dict(department_names or {})
    panels = []
    x = y = row_height = 0
    for n, key in enumerate(spec.panels, start=1):
        panel = PANELS[key]
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        grid = {"h": panel.height, "w": panel.width, "x": x, "y": y}
        available = set(panel.requires) <= present
        panels.append(_panel_json(panel, n, grid, available, names))
        x += panel.width
        row_height = max(row_height, panel.height)
    return {
        "uid": spec.uid,
        "title": spec.title,
        "description": spec.description,
        "tags": list(spec.tags),
        "timezone": TIMEZONE,
        "editable": False,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": spec.time_from, "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def build_dashboards(
    *, tables: Iterable[str] | None = None, department_names: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    present = list(migration_tables() if tables is None else tables)
    return [
        build_dashboard(spec, tables=present, department_names=department_names)
        for spec in DASHBOARDS
    ]


def dashboard_text(dashboard: Mapping[str, Any]) -> str:
    """The exact file content :func:`export` writes (stable: sorted keys, UTF-8)."""
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export(directory: Path, dashboards: Sequence[Mapping[str, Any]]) -> list[Path]:
    """Write ``<uid>.json`` per dashboard into ``directory``; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for dashboard in dashboards:
        path = directory / f"{dashboard['uid']}.json"
        path.write_text(dashboard_text(dashboard), encoding="utf-8")
        paths.append(path)
    return paths


def stale_exports(directory: Path, dashboards: Sequence[Mapping[str, Any]]) -> list[str]:
    """Files in ``directory`` that differ from (or lack) what :func:`export` would write."""
    stale = []
    for dashboard in dashboards:
        path = directory / f"{dashboard['uid']}.json"
        if not path.is_file() or path.read_text(encoding="utf-8") != dashboard_text(dashboard):
            stale.append(path.name)
    return stale


# --- pushing to Grafana --------------------------------------------------------------------


class GrafanaClientMissing(RuntimeError):
    pass


def grafana_client(url: str, token: str, timeout_s: float = 10.0) -> Any:
    """A ``grafana_api.grafana_face.GrafanaFace`` for ``url`` (http(s)://host[:port][/prefix]).

    ``token``: a service-account token, or ``user:password`` for basic auth.
    """
    try:
        from grafana_api.grafana_face import GrafanaFace
    except ImportError:
        raise GrafanaClientMissing(
            "pushing dashboards needs the grafana-api client: "
            "pip install 'callguard[grafana]' (or export the JSON with "
            "`callguard dashboards export DIR` for file provisioning)"
        ) from None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"Grafana URL must be http(s)://host[:port][/prefix], not {url!r}")
    auth: Any = token
    if ":" in token and not token.startswith("glsa_"):
        user, _, password = token.partition(":")
        auth = (user, password)
    prefix = parts.path.strip("/")
    return GrafanaFace(
        auth=auth,
        host=parts.hostname,
        port=parts.port,
        url_path_prefix=f"{prefix}/" if prefix else "",
        protocol=parts.scheme,
        timeout=timeout_s,
    )


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


def ensure_folder(client: Any, uid: str = FOLDER_UID, title: str = FOLDER_TITLE) -> str:
    """The folder ``uid``, created when missing; returns its uid."""
    try:
        client.folder.get_folder(uid)
    except Exception as exc:
        if _status(exc) != 404:
            raise
        client.folder.create_folder(title, uid=uid)
    return uid


def push(
    client: Any,
    dashboards: Sequence[Mapping[str, Any]],
    *,
    folder_uid: str = FOLDER_UID,
    folder_title: str = FOLDER_TITLE,
    message: str = "callguard dashboards push",
) -> list[dict[str, Any]]:
    """Create or overwrite each dashboard (by uid) in the folder; Grafana's answers."""
    ensure_folder(client, folder_uid, folder_title)
    results = []
    for dashboard in dashboards:
        body = {
            "dashboard": {**dashboard, "id": None},
            "folderUid": folder_uid,
            "overwrite": True,
            "message": message,
        }
        results.append(dict(client.dashboard.update_dashboard(body)))
    return results
