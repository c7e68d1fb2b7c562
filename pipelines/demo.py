"""``callguard demo`` / ``simulate`` / ``results``: the local end-to-end run and its report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from connectors.clickhouse.query_api import remote_health
from connectors.clickhouse.reader import Reader, open_reader
from pipelines.settings import Settings

console = Console()


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process the same settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None and name != "config":
            # lists and dicts travel as JSON, which is how pydantic-settings reads them back
            text = json.dumps(value) if isinstance(value, list | dict) else str(value)
            env[f"CALLGUARD_{name.upper()}"] = text
    return env


def simulate_calls(
    settings: Settings,
    *,
    n_calls: int,
    speed: float,
    seed: int | None,
    chunk_ms: int = 200,
    with_audio: bool = True,
    malformed: int = 0,
    audio_dir: Path | None = None,
) -> Any:
    from connectors.simulator.audio import load_clips
    from connectors.simulator.producer import run_simulation
    from connectors.simulator.scenario import plan_calls
    from pipelines.app import catalog_for

    seed = seed if seed is not None else int(time.time()) % 1_000_000
    clips = load_clips(audio_dir)
    calls = plan_calls(n_calls, seed=seed, start_ms=int(time.time() * 1000), clips=clips)
    with Progress(
        TextColumn("[bold]simulating[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} messages"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"{n_calls} calls (seed {seed})", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = run_simulation(
            settings.kafka_bootstrap,
            catalog_for(settings),
            calls,
            clips,
            speed=speed,
            chunk_ms=chunk_ms,
            with_audio=with_audio,
            malformed=malformed,
            progress=on_progress,
        )
    report.seed = seed
    return report


# --- results -----------------------------------------------------------------------------

DEMO_TERMS = Path(__file__).resolve().parent / "config" / "demo_terms.toml"

RESULT_QUERIES: dict[str, str] = {
    "Calls by department (call_summaries)": """
        SELECT department,
               count() AS calls,
               countIf(answered_ms > toDateTime64(0, 3)) AS answered,
               round(avgIf(talk_s, talk_s > 0), 1) AS avg_talk_s,
               countIf(position(dtmf_digits, '*9') > 0) AS staff_key_9,
               any(origin) AS origin
        FROM call_summaries FINAL
        WHERE {calls}
        GROUP BY department ORDER BY department""",
    "Audio completeness per leg (audio_leg_stats)": """
        SELECT leg, count() AS legs, sum(chunks) AS chunks,
               sum(missing_chunks) AS missing, sum(duplicate_chunks) AS duplicates,
               round(sum(audio_duration_ms) / 1000, 1) AS audio_s
        FROM audio_leg_stats FINAL
        WHERE {calls}
        GROUP BY leg ORDER BY leg""",
    "Recordings (encrypted files; metadata, no audio)": """
        SELECT department, mode, leg, count() AS recordings,
               round(sum(duration_ms) / 1000, 1) AS seconds, sum(gap_count) AS gaps,
               countIf(cdr_seen) AS with_cdr, countIf(shortfall) AS short
        FROM recordings FINAL
        WHERE {calls}
        GROUP BY department, mode, leg ORDER BY department, mode, leg""",
    "CDRs (cdrs)": """
        SELECT disposition, count() AS calls, round(sum(billsec_s), 1) AS talk_s
        FROM cdrs FINAL WHERE {calls}
        GROUP BY disposition ORDER BY disposition""",
    "Stream decisions (calls.decisions)": """
        SELECT stream, kind, count() AS n FROM decisions FINAL
        WHERE {calls} GROUP BY stream, kind ORDER BY stream, kind""",
    "Speech recognised and scored (transcripts; text masked, not shown)": """
        SELECT leg, category, count() AS utterances,
               round(avg(score), 2) AS avg_score, countIf(shouting) AS shouting,
               any(asr_backend) AS asr, any(classifier_version) AS classifier
        FROM transcripts FINAL
        WHERE {calls}
        GROUP BY leg, category ORDER BY leg, category""",
    "Abuse incidents (calls.incidents)": """
        SELECT department, category, action, count() AS n, round(avg(score), 2) AS avg_score
        FROM incidents FINAL
        WHERE {calls}
        GROUP BY department, category, action ORDER BY department, category, action""",
    "Dead letters (rejected input, with reason)": """
        SELECT source_topic, consumer, error_type, reason, count() AS n
        FROM dead_letters FINAL
        WHERE ts_ms >= fromUnixTimestamp64Milli({since_ms})
        GROUP BY source_topic, consumer, error_type, reason
        ORDER BY source_topic, consumer""",
}


def show_results(settings: Settings, *, since_ms: int, call_prefix: str | None = None) -> None:
    """Print the result tables: calls with ids starting ``call_prefix``, else since ``since_ms``."""
    from pipelines.cli import print_result

    reader = open_reader(settings.clickhouse_dsn, settings.clickhouse_database, settings.query_port)
    calls = (
        f"call_id LIKE '{call_prefix}%'"
        if call_prefix
        else f"ingested_at >= fromUnixTimestamp64Milli({since_ms})"
    )
    for title, sql in RESULT_QUERIES.items():
        result = reader.query(sql.format(calls=calls, since_ms=since_ms))
        print_result(title, result.columns, result.rows)


# --- demo --------------------------------------------------------------------------------


@contextmanager
def _service(name: str, settings: Settings, log_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines", name],
            env=settings_env(settings),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        console.print(f"started {name} (pid {proc.pid}, log {log_path})")
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            console.print(f"stopped {name}")


def _wait(
    what: str,
    check: Any,
    timeout_s: float,
    proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout_s
    with console.status(f"waiting for {what}…"):
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:] if log_path else ""
                raise RuntimeError(f"{what}: process exited with {proc.returncode}\n{tail}")
            if check():
                return
            time.sleep(0.5)
    raise TimeoutError(f"gave up waiting for {what} after {timeout_s:.0f} s")


def _count(reader: Reader, sql: str) -> int:
    try:
        return int(reader.query(sql).rows[0][0])
    except Exception:  # noqa: BLE001 - tables may not exist yet while the sink starts
        return -1


def run_demo(
    settings: Settings,
    *,
    n_calls: int,
    speed: float,
    malformed: int,
    keep_running: bool,
    timeout_s: int,
) -> None:
    from pipelines.cli import kafka_script

    if not settings.embedded_clickhouse:
        console.print("[yellow]using the ClickHouse server from CALLGUARD_CLICKHOUSE_URL[/]")
    console.rule("[bold]CallGuard demo: SIMULATED calls through the real pipeline")
    if settings.abuse_local_terms_file is None:
        settings = settings.model_copy(update={"abuse_local_terms_file": DEMO_TERMS})
        console.print(
            f"abuse detection: demo term list {DEMO_TERMS.name} marks two words the sample "
            "clips say (동백꽃 → threat, 커피 → insult), so detections show"
        )
    log_dir = settings.data_dir / "logs"
    kafka_was_running = kafka_script(settings, "status", check=False) == 0
    if not kafka_was_running:
        kafka_script(settings, "start")
    try:
        from connectors.kafka.topics import create_topics
        from pipelines.app import catalog_for

        reports = create_topics(settings.kafka_bootstrap, catalog_for(settings).specs)
        created = sum(r.status == "created" for r in reports)
        console.print(f"topics: {created} created, {len(reports) - created} already there")
        started_ms = int(time.time() * 1000)
        with (
            _service("sink", settings, log_dir) as sink_proc,
            _service("worker", settings, log_dir) as worker_proc,
        ):
            _wait(
                "the sink's query API",
                lambda: remote_health(settings.query_port) is not None,
                120,
                sink_proc,
                log_dir / "sink.log",
            )
            report = simulate_calls(
                settings, n_calls=n_calls, speed=speed, seed=None, malformed=malformed
            )
            for line in report.summary_lines():
                console.print(line)
            reader = open_reader(
                settings.clickhouse_dsn, settings.clickhouse_database, settings.query_port
            )
            prefix = f"sim-{report.seed}-"
            this_run = f"call_id LIKE '{prefix}%'"
            answered = report.dispositions.get("ANSWERED", 0)
            expected = [
                (f"{n_calls} call summaries", "call_summaries", "count()", this_run, n_calls),
                (
                    f"{2 * answered} audio legs",
                    "audio_leg_stats",
                    "count()",
                    this_run,
                    2 * answered if report.audio_chunks else 0,
                ),
                (
                    f"caller speech of {answered} calls transcribed",
                    "transcripts",
                    "uniqExact(call_id)",
                    f"{this_run} AND leg = 'caller'",
                    answered if report.audio_chunks and settings.runs("abuse") else 0,
                ),
                (
                    f"{malformed} dead letters",
                    "dead_letters",
                    "uniqExact(source_topic, source_offset)",
                    f"ts_ms >= fromUnixTimestamp64Milli({started_ms})",
                    malformed,
                ),
            ]
            for what, table, aggregate, where, target in expected:
                sql = f"SELECT {aggregate} FROM {table} FINAL WHERE {where}"
                _wait(
                    f"{what} in ClickHouse",
                    lambda sql=sql, target=target: _count(reader, sql) >= target,
                    timeout_s,
                    worker_proc,
                    log_dir / "worker.log",
                )
            if settings.runs("abuse"):
                # every flagged caller utterance becomes an incident (evidence at least)
                flagged = (
                    f"SELECT count() FROM transcripts FINAL WHERE {this_run} "
                    "AND leg = 'caller' AND category != 'clean' AND score >= 0.35"
                )
                incidents = f"SELECT count() FROM incidents FINAL WHERE {this_run}"
                _wait(
                    "abuse incidents for the flagged utterances",
                    lambda: _count(reader, incidents) >= max(_count(reader, flagged), 0),
                    60,
                    worker_proc,
                    log_dir / "worker.log",
                )
            show_results(settings, call_prefix=prefix, since_ms=started_ms)
            if keep_running:
                console.print(
                    "worker and sink keep running: `callguard results`, `callguard db query`; "
                    "Ctrl-C to stop"
                )
                signal.pause()
    finally:
        if not kafka_was_running and not keep_running:
            kafka_script(settings, "stop", check=False)
    console.rule("[bold]done: all data above is SIMULATED")
