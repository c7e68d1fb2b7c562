"""`callguard feedback`: staff labels on detections, one at a time or from a CSV file.

Labels travel to Kafka (``calls.feedback``) and the sink stores them in ClickHouse, like every
other result; `callguard retrain` reads them from there.
"""

from __future__ import annotations

import getpass
import time
from pathlib import Path

import click
from rich.console import Console

from pipelines.settings import Settings

console = Console(stderr=True)


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj["settings"]
    return settings


def incident_categories(settings: Settings, ids: list[str]) -> dict[str, str]:
    """What the detector said about these incidents (for confirm without --category)."""
    from connectors.clickhouse.reader import open_reader

    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    quoted = ", ".join("'" + i.replace("\\", "\\\\").replace("'", "\\'") + "'" for i in wanted)
    reader = open_reader(settings.clickhouse_dsn, settings.clickhouse_database, settings.query_port)
    result = reader.query(
        f"SELECT incident_id, category FROM incidents FINAL WHERE incident_id IN ({quoted})"
    )
    return {str(row[0]): str(row[1]) for row in result.rows}


@click.command()
@click.argument("incident_id", required=False, default="")
@click.option(
    "--label",
    type=click.Choice(["confirm", "reject", "missed"]),
    help="confirm: the detection was right; reject: false alarm; missed: abuse not flagged",
)
@click.option(
    "--category",
    type=click.Choice(["profanity", "insult", "threat", "sexual_harassment", "clean"]),
    help="the true category (corrects a confirmed detection; required for missed)",
)
@click.option("--text", default="", help="missed: the utterance that should have been flagged")
@click.option("--call-id", default="", help="missed: the call it was said in")
@click.option("--note", default="", help="free text kept with the label")
@click.option("--by", "labeled_by", default=None, help="who labels (default: the OS user)")
@click.option("--role", default="staff", show_default=True, help="staff | supervisor | auditor")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="import many labels: columns incident_id,label,category,text,labeled_by,note",
)
@click.option("--no-lookup", is_flag=True, help="do not look up incidents in ClickHouse")
@click.pass_context
def feedback(
    ctx: click.Context,
    incident_id: str,
    label: str | None,
    category: str | None,
    text: str,
    call_id: str,
    note: str,
    labeled_by: str | None,
    role: str,
    csv_path: Path | None,
    no_lookup: bool,
) -> None:
    """Label a detection (INCIDENT_ID) as right or wrong, or report missed abuse.

    \b
    callguard feedback 3f2a... --label confirm
    callguard feedback 3f2a... --label confirm --category threat   (right call, wrong category)
    callguard feedback 3f2a... --label reject                      (false alarm)
    callguard feedback --label missed --category insult --text "..." --call-id c-17
    callguard feedback --csv labels.csv --by supervisor1 --role supervisor
    """
    from connectors.recordings.kafka import DeliveryFailed, KafkaOutbox
    from pipelines.app import catalog_for
    from pipelines.learning.feedback import (
        FeedbackError,
        Label,
        read_csv,
        records_from_rows,
        to_record,
    )

    settings = _settings(ctx)
    who = labeled_by or getpass.getuser()
    now_ms = int(time.time() * 1000)
    try:
        if csv_path is not None:
            if incident_id or label:
                raise FeedbackError("--csv imports a file; give no INCIDENT_ID or --label with it")
            rows = read_csv(csv_path)
            known = (
                {}
                if no_lookup
                else incident_categories(settings, [r.get("incident_id", "") for _, r in rows])
            )
            records = records_from_rows(
                rows, default_by=who, role=role, now_ms=now_ms, categories=known
            )
        else:
            if label is None:
                raise FeedbackError("--label is required (confirm, reject or missed)")
            known = (
                {}
                if no_lookup or label != "confirm" or category
                else incident_categories(settings, [incident_id])
            )
            if label == "confirm" and not category and incident_id not in known:
                raise FeedbackError(
                    f"incident {incident_id!r} not found; give --category or check the id"
                )
            one = Label(incident_id, label, category or "", text, call_id, note)
            records = [
                to_record(
                    one,
                    labeled_by=who,
                    role=role,
                    source="cli",
                    now_ms=now_ms,
                    incident_category=known.get(incident_id, ""),
                )
            ]
    except FeedbackError as error:
        raise click.UsageError(str(error)) from None
    catalog = catalog_for(settings)
    outbox = KafkaOutbox(
        settings.kafka_bootstrap, pending_path=settings.data_dir / "feedback-pending.jsonl"
    )
    try:
        for record in records:
            outbox.send(catalog.feedback, record.incident_id or record.call_id, record)
    except DeliveryFailed as error:
        raise click.ClickException(
            f"Kafka did not acknowledge ({error}); kept for resend"
        ) from None
    console.print(f"{len(records)} label(s) recorded by {who} ({role})")
