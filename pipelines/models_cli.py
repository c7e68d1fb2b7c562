"""``callguard models list|promote|rollback`` and ``callguard retrain``: the learning loop.

Registered on the main group in ``pipelines/cli.py``.  Promote and rollback update the
registry (``<model_registry_dir>/abuse-text/registry.json``) and send a ``ModelPromotion`` to
``callguard.models``, which running abuse workers follow to swap text classifiers without a
restart (``--no-publish``: registry only, e.g. offline or before any worker runs).
Heavy imports happen inside the commands, so ``callguard --help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from pipelines.settings import Settings

if TYPE_CHECKING:
    from connectors.models.registry import ModelRegistry
    from schemas.records import ModelPromotion

console = Console()
#: `callguard retrain` exit status when the gate refused the candidate (0: promoted/dry run)
EXIT_REFUSED = 3


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj["settings"]
    return settings


def _registry(settings: Settings) -> ModelRegistry:
    from connectors.models.registry import ModelRegistry

    return ModelRegistry(settings.model_registry_path)


def _publisher(settings: Settings) -> Callable[[ModelPromotion], None]:
    from connectors.models.registry import publish_promotion
    from pipelines.app import catalog_for

    topic = catalog_for(settings).models

    def publish(record: ModelPromotion) -> None:
        publish_promotion(settings.kafka_bootstrap, topic, record)

    return publish


def _when(ms: int) -> str:
    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _f(metrics: dict[str, float], key: str) -> str:
    return f"{metrics[key]:.3f}" if key in metrics else ""


@click.group("models")
def models() -> None:
    """The text-model registry: list versions, promote one, roll back.

    \b
    callguard models list
    callguard models promote v3 --reason "reviewed the refused candidate by hand"
    callguard models rollback                 (back to the version current before)
    """


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
@click.pass_context
def models_list(ctx: click.Context, as_json: bool) -> None:
    """Versions (current marked *), their status and headline scores, and the history."""
    registry = _registry(_settings(ctx))
    current = registry.current()
    versions = registry.versions()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "root": str(registry.folder),
                    "current": current.name if current else "",
                    "versions": {v.name: v.as_json() for v in versions},
                    "history": registry.history(),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    table = Table(title=f"abuse-text models ({registry.folder})")
    for column in (
        "",
        "version",
        "status",
        "classifier",
        "created",
        "dev macro F1",
        "holdout F1",
        "feedback",
        "path",
    ):
        table.add_column(column)
    for v in versions:
        table.add_row(
            "*" if current and v.name == current.name else "",
            v.name,
            v.status,
            v.classifier_version,
            _when(v.created_ms),
            _f(v.metrics, "dev_macro_f1"),
            _f(v.metrics, "holdout_macro_f1"),
            str(int(v.metrics["feedback_labels"])) if "feedback_labels" in v.metrics else "",
            str(v.path),
        )
    console.print(table)
    if not registry.exists():
        console.print("[italic]no registry.json yet: the shipped model is the seed (v1)[/]")
    for event in registry.history()[-5:]:
        console.print(
            f"{_when(event['ts_ms'])}  {event['action']} {event['version']} "
            f"(from {event['from'] or '-'}) by {event['by']}: {event['reason']}"
        )


def _make_current(
    ctx: click.Context, version: str, action: str, reason: str, by: str | None, no_publish: bool
) -> None:
    from connectors.models.registry import RegistryError
    from connectors.recordings.kafka import DeliveryFailed
    from pipelines.learning.retrain import promote

    settings = _settings(ctx)
    registry = _registry(settings)
    who = by or getpass.getuser()
    try:
        info = registry.get(version)
        record = promote(
            registry,
            info,
            by=who,
            reason=reason,
            action=action,
            publish=None if no_publish else _publisher(settings),
        )
    except RegistryError as error:
        raise click.ClickException(str(error)) from None
    except DeliveryFailed as error:
        raise click.ClickException(
            f"Kafka did not acknowledge the promotion ({error}); the registry is unchanged. "
            "Retry, or use --no-publish to change the registry only."
        ) from None
    published = "not published (--no-publish)" if no_publish else "workers notified"
    console.print(f"{action}: {record.version} is current ({record.path}); {published}")


@models.command("promote")
@click.argument("version")
@click.option("--reason", default="manual promotion", show_default=True)
@click.option("--by", default=None, help="who promotes (default: the OS user)")
@click.option("--no-publish", is_flag=True, help="update the registry only; tell no worker")
@click.pass_context
def models_promote(
    ctx: click.Context, version: str, reason: str, by: str | None, no_publish: bool
) -> None:
    """Make VERSION current and tell running workers to load it."""
    _make_current(ctx, version, "promote", reason, by, no_publish)


@models.command("rollback")
@click.option("--to", "target", default=None, help="version to return to (default: previous)")
@click.option("--reason", default="rollback", show_default=True)
@click.option("--by", default=None, help="who rolls back (default: the OS user)")
@click.option("--no-publish", is_flag=True, help="update the registry only; tell no worker")
@click.pass_context
def models_rollback(
    ctx: click.Context, target: str | None, reason: str, by: str | None, no_publish: bool
) -> None:
    """Return to the version that was current before the current one (or --to VERSION)."""
    from connectors.models.registry import RegistryError

    if target is None:
        try:
            target = _registry(_settings(ctx)).rollback_target()
        except RegistryError as error:
            raise click.ClickException(str(error)) from None
    _make_current(ctx, target, "rollback", reason, by, no_publish)


class RichProgress:
    """:class:`pipelines.learning.retrain.Progress` as a rich progress bar on stderr."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self.task: Any = None
        self.started = False

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None and not exc[0]:
            self.progress.update(
                self.task, completed=self.progress.tasks[0].total, description="done"
            )
        self.progress.stop()

    def begin(self, total: int) -> None:
        self.task = self.progress.add_task("retraining", total=total)

    def step(self, description: str) -> None:
        if self.started:
            self.progress.advance(self.task)
        self.started = True
        self.progress.update(self.task, description=description)

    def log(self, message: str) -> None:
        self.progress.console.print(message)


@click.command("retrain")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Public Korean abuse data (default: ../shared/data next to the repository, if present).",
)
@click.option("--no-public", is_flag=True, help="Base data = the phone-domain file only.")
@click.option(
    "--public-cap",
    type=int,
    default=12000,
    show_default=True,
    help="Rows sampled per large public set.",
)
@click.option(
    "--min-feedback",
    type=int,
    default=20,
    show_default=True,
    help="Do nothing with fewer usable feedback labels.",
)
@click.option("--dry-run", is_flag=True, help="Train and evaluate, never register or promote.")
@click.option(
    "--tolerance",
    type=float,
    default=0.02,
    show_default=True,
    help="Largest F1 drop allowed in any category (dev set, holdout).",
)
@click.option(
    "--holdout",
    "holdout_fraction",
    type=float,
    default=0.2,
    show_default=True,
    help="Most recent share of the feedback kept out of training.",
)
@click.option(
    "--feedback-weight",
    type=float,
    default=10.0,
    show_default=True,
    help="One feedback example counts as this many phone-domain examples.",
)
@click.option(
    "--averaged-sgd",
    is_flag=True,
    help="Averaged SGD: less run-to-run noise (small bases); default: train-text's plain SGD.",
)
@click.option("--no-curve", is_flag=True, help="Skip the learning curve (faster).")
@click.option("--no-cache", is_flag=True, help="Re-featurise the base data.")
@click.option("--no-publish", is_flag=True, help="Promote in the registry only; tell no worker.")
@click.option("--by", default=None, help="who retrains (default: the OS user)")
@click.option("--json", "as_json", is_flag=True, help="Print the result's metrics as JSON.")
@click.pass_context
def retrain(
    ctx: click.Context,
    data_dir: Path | None,
    no_public: bool,
    public_cap: int,
    min_feedback: int,
    dry_run: bool,
    tolerance: float,
    holdout_fraction: float,
    feedback_weight: float,
    averaged_sgd: bool,
    no_curve: bool,
    no_cache: bool,
    no_publish: bool,
    by: str | None,
    as_json: bool,
) -> None:
    """Retrain the text model on staff feedback; promote it only if it is better.

    \b
    Reads every feedback label from ClickHouse, trains a candidate (same model family as the
    shipped one, feedback weighted up), compares it with the current model on the dev set and
    on the most recent feedback (not trained on), and promotes it only if it scores higher
    without any category's F1 dropping more than --tolerance.  Writes model, metrics.json,
    MODEL_CARD.md and the learning curve (PNG/CSV/MD) into the registry's version folder.
    Exit status: 0 promoted, dry run or nothing to do; 3 refused (the table says why);
    1 passed the gate but Kafka did not take the promotion (run `models promote` later).
    """
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise click.ClickException(
            "retraining needs scikit-learn: pip install -e '.[train]'"
        ) from exc
    from connectors.clickhouse.reader import open_reader
    from connectors.models.train_text import default_data_dir
    from pipelines.learning.labels import ClickHouseFeedbackSource
    from pipelines.learning.retrain import CURVE_FRACTIONS, Gate, Recipe
    from pipelines.learning.retrain import retrain as run_retrain

    settings = _settings(ctx)
    if no_public:
        data_dir = None
    elif data_dir is None:
        data_dir = default_data_dir()
    reader = open_reader(settings.clickhouse_dsn, settings.clickhouse_database, settings.query_port)
    registry = _registry(settings)
    with RichProgress() as progress:
        if data_dir is None and not no_public:
            progress.log("[yellow]no public data found (../shared/data): base = phone-domain file")
        result = run_retrain(
            registry,
            ClickHouseFeedbackSource(reader),
            data_dir=data_dir,
            recipe=Recipe(
                public_cap=public_cap, feedback_weight=feedback_weight, average=averaged_sgd
            ),
            gate=Gate(tolerance=tolerance, holdout_fraction=holdout_fraction),
            min_feedback=min_feedback,
            dry_run=dry_run,
            curve=() if no_curve else CURVE_FRACTIONS,
            cache=not no_cache,
            progress=progress,
            publish=None if no_publish else _publisher(settings),
            by=by or getpass.getuser(),
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "status": result.status,
                    "message": result.message,
                    "version": result.version,
                    "metrics": result.metrics,
                },
                ensure_ascii=False,
                indent=2,
                default=str,
            )
        )
    else:
        if result.decision is not None:
            click.echo(result.decision.table())
        training = result.metrics.get("training", {})
        if training:
            click.echo(f"trained in {training['seconds']} s ({training['timings']})")
        if result.out_dir is not None:
            click.echo(f"model, metrics, card, learning curve: {result.out_dir}")
        click.echo(f"{result.status.upper()}: {result.message}")
    if result.status == "refused":
        sys.exit(EXIT_REFUSED)
    if result.status == "unpublished":
        sys.exit(1)
