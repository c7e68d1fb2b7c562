"""``callguard classify`` / ``evaluate-text`` / ``train-text``: the abuse text classifier.

Registered on the main group in ``pipelines/cli.py``.  Heavy imports (numpy, the model,
scikit-learn) happen inside the commands, so ``callguard --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

import click

_MODEL_OPTION = click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Model directory (default: the model registry's current version, else the shipped "
    "models/abuse-text/v1).",
)


def _load_classifier(ctx: click.Context, model_dir: Path | None) -> Any:
    """The classifier a worker would use: ``model_dir`` or the registry's current version
    (else the shipped model), with the office's local terms when settings name a file."""
    from pipelines.abuse.analysis import classifier_loader

    return classifier_loader(ctx.ensure_object(dict)["settings"])(model_dir)


def classify_stream(classifier: Any, lines: TextIO, out: TextIO, err: TextIO) -> tuple[int, int]:
    """JSON lines ``{"id", "text"}`` in, verdict lines out; returns (classified, rejected)."""
    done = rejected = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            err.write(f"line {number}: not JSON ({exc.msg}); skipped\n")
            rejected += 1
            continue
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            err.write(f'line {number}: needs an object with a string "text"; skipped\n')
            rejected += 1
            continue
        verdict = classifier.classify([item["text"]])[0]
        out.write(json.dumps(verdict.as_json(item.get("id")), ensure_ascii=False) + "\n")
        out.flush()
        done += 1
    return done, rejected


@click.command("classify")
@_MODEL_OPTION
@click.pass_context
def classify(ctx: click.Context, model_dir: Path | None) -> None:
    """Classify utterances for abuse aimed at staff (JSON lines on stdin → stdout).

    \b
    Input, one per line:   {"id": "u1", "text": "씨발 당장 처리해"}
    Output, one per line:  {"id": "u1", "abusive": true, "category": "profanity", "score": 0.97}
    Categories: profanity, insult, threat, sexual_harassment, clean.  score is the calibrated
    probability of the category (for clean, of the likeliest abusive one).  A bad line is
    reported on stderr with its line number and skipped.
    """
    classifier = _load_classifier(ctx, model_dir)
    _, rejected = classify_stream(classifier, sys.stdin, sys.stdout, sys.stderr)
    if rejected:
        sys.stderr.write(f"{rejected} line(s) skipped\n")


@click.command("evaluate-text")
@click.option(
    "--devset",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Labelled JSON lines (id, text, category, kind); "
    "default data/devset/phone_complaints.jsonl.",
)
@_MODEL_OPTION
@click.option("--baseline/--no-baseline", default=True, help="Also score the keyword-only rules.")
@click.option("--errors", is_flag=True, help="List the misclassified utterances.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@click.pass_context
def evaluate_text(
    ctx: click.Context,
    devset: Path | None,
    model_dir: Path | None,
    baseline: bool,
    errors: bool,
    as_json: bool,
) -> None:
    """Score the text classifier on the phone-complaint dev set (P/R/F1, false positives)."""
    from connectors.models.evaluate import DEFAULT_DEVSET, evaluate, format_report, load_devset
    from connectors.models.text_classifier import KeywordOnlyClassifier

    rows = load_devset(devset or DEFAULT_DEVSET)
    reports = [evaluate(_load_classifier(ctx, model_dir), rows)]
    if baseline:
        reports.append(evaluate(KeywordOnlyClassifier(), rows))
    if as_json:
        click.echo(json.dumps(reports, ensure_ascii=False, indent=2))
        return
    for report in reports:
        click.echo(format_report(report))
        if errors:
            for e in report["errors"]:
                click.echo(f"  {e['gold']:>17} → {e['pred']:<17} {e['score']:.2f}  {e['text']}")
        click.echo("")


@click.command("train-text")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Public Korean abuse data (default: ../shared/data next to the repository, if present).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the model (default: models/abuse-text/v1).",
)
@click.option("--no-public", is_flag=True, help="Train on the phone-domain data only.")
@click.option(
    "--regenerate-phone-data", is_flag=True, help="Rewrite data/train/phone_domain.jsonl first."
)
def train_text(
    data_dir: Path | None, out_dir: Path | None, no_public: bool, regenerate_phone_data: bool
) -> None:
    """Train the abuse text model (needs scikit-learn: pip install -e '.[train]')."""
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise click.ClickException(
            "training needs scikit-learn: pip install -e '.[train]'"
        ) from exc
    from connectors.models import phone_domain
    from connectors.models.train_text import DEFAULT_MODEL_DIR, default_data_dir, train

    if regenerate_phone_data:
        click.echo(f"wrote {phone_domain.write()} phone-domain utterances")
    if no_public:
        data_dir = None
    elif data_dir is None:
        data_dir = default_data_dir()
        if data_dir is None:
            raise click.ClickException("no public data found: pass --data DIR or --no-public")
    train(data_dir, out_dir=out_dir or DEFAULT_MODEL_DIR, log=click.echo)
