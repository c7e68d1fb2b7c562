"""``callguard``: the command line. The only place (with tests and benchmarks) that reads settings.

Every subcommand has ``--help``.  Settings come from ``CALLGUARD_*`` environment variables and
an optional TOML file given with ``--config``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from pipelines.abuse_cli import classify, evaluate_text, train_text
from pipelines.learning_cli import feedback
from pipelines.logs import setup_logging
from pipelines.models_cli import models, retrain
from pipelines.recordings_cli import recordings
from pipelines.settings import Settings
from pipelines.speech_cli import analyze, transcribe

console = Console()
REPO = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = REPO / "docker" / "kafka" / "kafka.sh"
PBX_SCRIPT = REPO / "docker" / "asterisk" / "asterisk.sh"


def _settings(ctx: click.Context) -> Settings:
    return ctx.ensure_object(dict)["settings"]  # type: ignore[no-any-return]


def print_result(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    if not rows:
        console.print(f"[italic]{title}[/]: (none)")
        return
    console.print(f"[bold]{title}[/]")
    table = Table()
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file with settings (CALLGUARD_* environment variables override it).",
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.pass_context
def main(ctx: click.Context, config: Path | None, log_level: str | None) -> None:
    """CallGuard: real-time call safety and analytics on Kafka and ClickHouse.

    \b
    Quick start (everything local: Kafka from Maven Central, embedded ClickHouse):
      callguard demo            start what is needed, run simulated calls, show results
    \b
    Pieces:
      callguard kafka start     local Apache Kafka (KRaft) on 127.0.0.1:19092
      callguard topics create   create every topic with its partitions and retention
      callguard db migrate      create / upgrade the ClickHouse tables
      callguard sink            Kafka → ClickHouse (owns embedded chDB, serves reads)
      callguard worker          the stream processors (faust)
      callguard pbx start       the development Asterisk PBX (loopback, needs root)
      callguard connector asterisk   PBX events, CDRs and audio in; commands out
      callguard simulate        produce simulated PBX traffic
      callguard results         what happened, from ClickHouse
      callguard report          monthly abuse report (HTML + PDF)
      callguard dashboards      Grafana dashboards as code (export / push)
      callguard recordings      list, decrypt (authorised, audited), purge expired recordings
      callguard retrain         retrain the text model on staff feedback (gated promotion)
      callguard models          text-model versions: list, promote, rollback
    """
    overrides: dict[str, Any] = {}
    if config:
        overrides["config"] = config
    if log_level:
        overrides["log_level"] = log_level
    settings = Settings(**overrides)
    setup_logging(settings.log_level)
    ctx.ensure_object(dict)["settings"] = settings


# --- kafka -------------------------------------------------------------------------------


def kafka_env(settings: Settings) -> dict[str, str]:
    _host, _, port = settings.kafka_bootstrap.partition(",")[0].rpartition(":")
    env = dict(os.environ)
    env.setdefault("KAFKA_PORT", port or "19092")
    env.setdefault("KAFKA_DATA_DIR", str((settings.data_dir / "kafka").resolve()))
    return env


def kafka_script(settings: Settings, action: str, check: bool = True) -> int:
    return subprocess.run(
        ["bash", str(KAFKA_SCRIPT), action], env=kafka_env(settings), check=check
    ).returncode


@main.group()
def kafka() -> None:
    """Local single-node Apache Kafka (KRaft) from Maven Central (docker/kafka/kafka.sh)."""


@kafka.command("start")
@click.pass_context
def kafka_start(ctx: click.Context) -> None:
    """Fetch (first time), format and start the broker; wait until it answers."""
    kafka_script(_settings(ctx), "start")


@kafka.command("stop")
@click.pass_context
def kafka_stop(ctx: click.Context) -> None:
    """Stop the broker started from this data dir."""
    kafka_script(_settings(ctx), "stop")


@kafka.command("status")
@click.pass_context
def kafka_status(ctx: click.Context) -> None:
    """Say whether the local broker is running."""
    sys.exit(kafka_script(_settings(ctx), "status", check=False))


@main.group()
def pbx() -> None:
    """The development Asterisk PBX (Debian sid Asterisk in a chroot; docker/asterisk/asterisk.sh).

    Loopback only: SIP 127.0.0.1:25060, ARI :28088, AMI :25038. The first start builds the
    root (about a minute, cached in ~/.cache/callguard). Needs root for chroot.
    """


@pbx.command("start")
def pbx_start() -> None:
    """Build the root if needed, install the config and sounds, start, wait for ARI."""
    subprocess.run(["bash", str(PBX_SCRIPT), "start"], check=True)


@pbx.command("stop")
def pbx_stop() -> None:
    """Stop the PBX started from this checkout."""
    subprocess.run(["bash", str(PBX_SCRIPT), "stop"], check=True)


@pbx.command("status")
def pbx_status() -> None:
    """Say whether the PBX is running, with its addresses."""
    sys.exit(subprocess.run(["bash", str(PBX_SCRIPT), "status"], check=False).returncode)


# --- topics ------------------------------------------------------------------------------


@main.group()
def topics() -> None:
    """Kafka topics, as declared in connectors/kafka/topics.py."""


@topics.command("create")
@click.pass_context
def topics_create(ctx: click.Context) -> None:
    """Create missing topics (idempotent); flag existing ones with other partition counts."""
    from connectors.kafka.topics import create_topics, retention_label
    from pipelines.app import catalog_for

    settings = _settings(ctx)
    catalog = catalog_for(settings)
    reports = create_topics(settings.kafka_bootstrap, catalog.specs)
    by_name = {s.name: s for s in catalog.specs}
    print_result(
        f"topics on {settings.kafka_bootstrap}",
        ["topic", "status", "partitions", "retention", "detail"],
        [
            [
                r.name,
                r.status,
                by_name[r.name].partitions,
                retention_label(by_name[r.name]),
                r.detail,
            ]
            for r in reports
        ],
    )
    if any(r.status == "mismatch" for r in reports):
        raise click.ClickException("some topics exist with other partition counts (see above)")


@topics.command("list")
@click.option("-v", "--verbose", is_flag=True, help="also say what each topic carries")
@click.pass_context
def topics_list(ctx: click.Context, verbose: bool) -> None:
    """Show the declared topics and whether each exists on the broker."""
    from connectors.kafka.topics import existing_topics, retention_label
    from pipelines.app import catalog_for

    settings = _settings(ctx)
    present = existing_topics(settings.kafka_bootstrap)
    specs = catalog_for(settings).specs
    columns = ["topic", "exists", "partitions", "retention"] + (["what"] if verbose else [])
    print_result(
        "declared topics",
        columns,
        [
            [s.name, "yes" if s.name in present else "NO", s.partitions, retention_label(s)]
            + ([s.description] if verbose else [])
            for s in specs
        ],
    )


# --- ClickHouse ----------------------------------------------------------------------------


@main.group()
def db() -> None:
    """ClickHouse (embedded chDB by default; a server when CALLGUARD_CLICKHOUSE_URL is set)."""


@db.command("migrate")
@click.pass_context
def db_migrate(ctx: click.Context) -> None:
    """Apply pending schema migrations (idempotent). `callguard sink` also runs this."""
    from connectors.clickhouse.client import connect
    from connectors.clickhouse.migrations import migrate

    settings = _settings(ctx)
    applied = migrate(connect(settings.clickhouse_dsn, settings.clickhouse_database))
    names = ", ".join(f"V{m.version:03d}__{m.name}" for m in applied) or "nothing (up to date)"
    console.print(f"applied: {names}")


@db.command("query")
@click.argument("sql")
@click.pass_context
def db_query(ctx: click.Context, sql: str) -> None:
    """Run a read-only SQL query and print the result.

    With embedded chDB and a running sink, the query goes through the sink's API.
    """
    from connectors.clickhouse.reader import open_reader

    settings = _settings(ctx)
    result = open_reader(
        settings.clickhouse_dsn, settings.clickhouse_database, settings.query_port
    ).query(sql)
    print_result(f"{len(result.rows)} row(s)", result.columns, result.rows)


# --- services ----------------------------------------------------------------------------


@main.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run the stream processors (faust worker) until Ctrl-C / SIGTERM."""
    from pipelines.services import run_worker

    run_worker(_settings(ctx))


@main.command()
@click.pass_context
def sink(ctx: click.Context) -> None:
    """Run the ClickHouse sink until Ctrl-C / SIGTERM (migrates first).

    With embedded chDB this process owns the data directory and serves read-only queries
    on 127.0.0.1:$CALLGUARD_QUERY_PORT for `callguard db query`, `results` and `demo`.
    """
    from pipelines.services import run_sink

    run_sink(_settings(ctx))


@main.group()
def connector() -> None:
    """PBX connectors: call events, CDRs and live audio into Kafka; commands back to the PBX."""


@connector.command("asterisk")
@click.pass_context
def connector_asterisk(ctx: click.Context) -> None:
    """Run the Asterisk connector (ARI + AMI + externalMedia RTP) until Ctrl-C / SIGTERM.

    \b
    ARI events  → pbx.call-events (and the inbound call flow: notices, ringback, staff, bridge)
    RTP audio   → pbx.audio (both legs, CALLGUARD_AUDIO_CHUNK_MS chunks)
    AMI Cdr     → pbx.cdr
    pbx.commands → PBX actions (idempotent by command id) → pbx.command-results
    """
    from connectors.asterisk.service import run_connector
    from pipelines.departments import load_directory

    settings = _settings(ctx)
    sys.exit(run_connector(settings, load_directory(settings.departments_file)))


# --- simulation, results, demo ---------------------------------------------------------------


@main.command()
@click.option("--calls", "n_calls", default=20, show_default=True, help="number of calls")
@click.option(
    "--speed", default=10.0, show_default=True, help="× real time; 0 = as fast as possible"
)
@click.option("--seed", type=int, default=None, help="fixed seed for repeatable traffic")
@click.option("--chunk-ms", default=200, show_default=True, help="audio chunk length")
@click.option("--no-audio", is_flag=True, help="events and CDRs only")
@click.option("--malformed", default=0, show_default=True, help="also send N malformed messages")
@click.option(
    "--audio-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="WAV/FLAC clips for the caller leg (default: packaged Korean samples)",
)
@click.pass_context
def simulate(
    ctx: click.Context,
    n_calls: int,
    speed: float,
    seed: int | None,
    chunk_ms: int,
    no_audio: bool,
    malformed: int,
    audio_dir: Path | None,
) -> None:
    """Produce SIMULATED PBX traffic (events, CDRs, audio) to Kafka.

    Every message is marked origin="simulator"; nothing here came from a real phone.
    """
    from pipelines.demo import simulate_calls

    report = simulate_calls(
        _settings(ctx),
        n_calls=n_calls,
        speed=speed,
        seed=seed,
        chunk_ms=chunk_ms,
        with_audio=not no_audio,
        malformed=malformed,
        audio_dir=audio_dir,
    )
    for line in report.summary_lines():
        console.print(line)


@main.command()
@click.option("--since-minutes", default=60 * 24, show_default=True)
@click.pass_context
def results(ctx: click.Context, since_minutes: int) -> None:
    """Show what the pipeline stored: calls, audio completeness, dead letters."""
    import time

    from pipelines.demo import show_results

    show_results(_settings(ctx), since_ms=int((time.time() - since_minutes * 60) * 1000))


@main.command()
@click.option("--calls", "n_calls", default=12, show_default=True)
@click.option("--speed", default=20.0, show_default=True, help="× real time")
@click.option("--malformed", default=3, show_default=True, help="malformed messages to include")
@click.option("--keep-running", is_flag=True, help="leave Kafka, worker and sink running")
@click.option("--timeout", "timeout_s", default=300, show_default=True, help="seconds to wait")
@click.pass_context
def demo(
    ctx: click.Context,
    n_calls: int,
    speed: float,
    malformed: int,
    keep_running: bool,
    timeout_s: int,
) -> None:
    """The whole pipeline locally: Kafka, topics, sink (chDB), worker, simulated calls, results."""
    from pipelines.demo import run_demo

    run_demo(
        _settings(ctx),
        n_calls=n_calls,
        speed=speed,
        malformed=malformed,
        keep_running=keep_running,
        timeout_s=timeout_s,
    )


# --- reports and dashboards ------------------------------------------------------------------


@main.command()
@click.option("--month", help="YYYY-MM, a Seoul calendar month  [default: last month]")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="folder for the files  [default: $CALLGUARD_DATA_DIR/reports]",
)
@click.option("--no-font-fetch", is_flag=True, help="do not apt-get download fonts-nanum")
@click.pass_context
def report(
    ctx: click.Context, month: str | None, out_dir: Path | None, no_font_fetch: bool
) -> None:
    """Monthly abuse report: incidents by category, department and day, warnings vs
    terminations, the 20-minute rule, consent violations, recordings purged, false alarms,
    staff exposure (anonymised), as HTML and PDF with figures.

    Reads ClickHouse like `db query`: through a running sink's API (embedded chDB), else the
    chDB directory or the server. Korean text needs a Hangul font: one is found on the system
    or fetched once (Debian fonts-nanum, into ~/.cache/callguard/fonts).
    """
    from datetime import UTC, datetime

    from connectors.clickhouse.reader import open_reader
    from pipelines.departments import load_directory
    from pipelines.reporting import Month, build_report
    from pipelines.reporting.fonts import KoreanFontMissing
    from pipelines.reporting.monthly import FIGURE_LABELS, format_figure

    settings = _settings(ctx)
    try:
        chosen = Month.parse(month) if month else Month.previous(datetime.now(UTC))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--month") from None
    directory = load_directory(settings.departments_file)
    reader = open_reader(settings.clickhouse_dsn, settings.clickhouse_database, settings.query_port)
    try:
        data, files = build_report(
            reader,
            chosen,
            out_dir or settings.data_dir / "reports",
            {code: d.name for code, d in directory.departments.items()},
            fetch_font=not no_font_fetch,
        )
    except KoreanFontMissing as exc:
        raise click.ClickException(str(exc)) from None
    print_result(
        f"abuse report {chosen.label}",
        ["metric", "value"],
        [
            [english, format_figure(key, data.figures[key])]
            for key, (_korean, english) in FIGURE_LABELS.items()
            if key in data.figures
        ],
    )
    for section in data.sections.values():
        if not section.available:
            console.print(f"[yellow]{section.title}[/]: {section.note}")
    if files.missing_glyphs:
        console.print(f"[red]missing glyphs[/]: {files.missing_glyphs[0]}")
    console.print(f"font: {files.font.family if files.font else 'none'}")
    for path in (files.html, files.pdf, files.data):
        console.print(f"wrote {path}")


@main.group()
def dashboards() -> None:
    """Grafana dashboards as code (connectors/grafana/dashboards.py).

    Data source uid `callguard-clickhouse` (grafana-clickhouse-datasource), as provisioned by
    docker/grafana/provisioning. Panels whose table no migration creates yet are text panels
    saying what they wait for.
    """


def _dashboards(settings: Settings) -> list[dict[str, Any]]:
    from connectors.grafana.dashboards import build_dashboards
    from pipelines.departments import load_directory

    directory = load_directory(settings.departments_file)
    return build_dashboards(
        department_names={code: d.name for code, d in directory.departments.items()}
    )


@dashboards.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="only fail if the files differ from the code")
@click.pass_context
def dashboards_export(ctx: click.Context, directory: Path, check: bool) -> None:
    """Write one JSON file per dashboard into DIRECTORY (Grafana file provisioning; compose
    mounts docker/grafana/dashboards)."""
    from connectors.grafana.dashboards import export, stale_exports

    built = _dashboards(_settings(ctx))
    if check:
        stale = stale_exports(directory, built)
        if stale:
            raise click.ClickException(
                f"stale dashboard files in {directory}: {', '.join(stale)}; "
                f"run `callguard dashboards export {directory}`"
            )
        console.print("dashboard files are up to date")
        return
    for path in export(directory, built):
        console.print(f"wrote {path}")


@dashboards.command("push")
@click.option("--url", envvar="GRAFANA_URL", required=True, help="Grafana base URL [$GRAFANA_URL]")
@click.option(
    "--token",
    envvar="GRAFANA_TOKEN",
    required=True,
    help="service-account token, or user:password [$GRAFANA_TOKEN]",
)
@click.option("--folder", default="CallGuard", show_default=True, help="folder title")
@click.pass_context
def dashboards_push(ctx: click.Context, url: str, token: str, folder: str) -> None:
    """Create or overwrite the dashboards in Grafana through its HTTP API (idempotent: fixed
    uids, overwrite). Needs the optional client: pip install 'callguard[grafana]'."""
    from connectors.grafana.dashboards import GrafanaClientMissing, grafana_client, push

    try:
        client = grafana_client(url, token)
    except GrafanaClientMissing as exc:
        raise click.ClickException(str(exc)) from None
    for result in push(client, _dashboards(_settings(ctx)), folder_title=folder):
        console.print(
            f"{result.get('status', 'ok')}: {result.get('uid')} version {result.get('version')} "
            f"{result.get('url', '')}"
        )


# --- schemas -----------------------------------------------------------------------------


@main.group()
def schemas() -> None:
    """Wire schemas (JSON Schema files generated from schemas/records.py)."""


@schemas.command("export")
def schemas_export() -> None:
    """Regenerate schemas/json/*.schema.json from the wire models."""
    from schemas.json_schema import export

    for path in export():
        console.print(f"wrote {path.relative_to(REPO)}")


@schemas.command("check")
def schemas_check() -> None:
    """Fail if a committed schema file differs from what the models generate."""
    from schemas.json_schema import stale_files

    stale = stale_files()
    if stale:
        raise click.ClickException(f"stale schema files: {', '.join(stale)}; run `schemas export`")
    console.print("schema files are up to date")


main.add_command(recordings)  # pipelines/recordings_cli.py
main.add_command(feedback)  # pipelines/learning_cli.py
main.add_command(transcribe)  # pipelines/speech_cli.py
main.add_command(analyze)
main.add_command(classify)  # pipelines/abuse_cli.py
main.add_command(evaluate_text)
main.add_command(train_text)
main.add_command(models)  # pipelines/models_cli.py
main.add_command(retrain)

if __name__ == "__main__":
    main()
