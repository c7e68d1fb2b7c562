"""`callguard transcribe FILE` and `callguard analyze FILE`: the abuse detection on a recording.

Both use the live stream's parts (segmenter, ASR, guard, masking, classifier, voice cues and,
for analyze, the response policy), configured by the same settings.  Transcripts are personal
data: they are printed to the terminal that asked, never logged.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from pipelines.settings import Settings

if TYPE_CHECKING:
    from pipelines.abuse.analysis import UtteranceAnalyzer

console = Console()
err = Console(stderr=True)

_FILE = click.argument(
    "audio", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="FILE"
)


def _analyzer(ctx: click.Context) -> UtteranceAnalyzer:
    from connectors.asr.transcriber import TranscriberError
    from pipelines.abuse.analysis import analyzer_from_settings

    settings: Settings = ctx.obj["settings"]
    try:
        with err.status("loading speech recognition and the text classifier…"):
            return analyzer_from_settings(settings, lambda: int(time.time() * 1000))
    except TranscriberError as error:
        raise click.ClickException(str(error)) from None


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} chunks"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


@click.command()
@_FILE
@click.option("--json", "as_json", is_flag=True, help="one JSON object per utterance")
@click.pass_context
def transcribe(ctx: click.Context, audio: Path, as_json: bool) -> None:
    """Transcribe FILE (WAV/FLAC, any rate; heard as an 8 kHz phone line) utterance by utterance.

    Shows start/end (s), the masked text and the classifier's verdict per utterance.
    """
    from pipelines.abuse.offline import transcribe_file

    analyzer = _analyzer(ctx)
    with _progress() as progress:
        task = progress.add_task(audio.name, total=None)
        found = transcribe_file(
            audio,
            analyzer,
            progress=lambda n, total: progress.update(task, completed=n, total=total),
        )
    first = found[0].start_ms if found else 0
    for t in found:
        if as_json:
            console.print_json(json.dumps(t.asdict(), ensure_ascii=False))
        else:
            console.print(
                f"{(t.start_ms - first) / 1000:6.1f}–{(t.end_ms - first) / 1000:6.1f} s  "
                f"[{t.category} {t.score:.2f}{' SHOUTING' if t.shouting else ''}]  {t.text}",
                markup=False,
            )
    if not found:
        err.print("no speech recognised")


@click.command()
@_FILE
@click.option("--department", default="", help="department code whose policy applies")
@click.pass_context
def analyze(ctx: click.Context, audio: Path, department: str) -> None:
    """Run the whole abuse detection on FILE and print incidents and actions.

    What the live system would have done on this audio as the caller's side of a call:
    utterances, scores, incidents (log / warn / end) and the response (warning, termination,
    hangup), under the department's policy (CALLGUARD_ABUSE_POLICY_FILE).
    """
    from pipelines.abuse.offline import analyze_file
    from pipelines.abuse.policy import load_policy_book

    settings: Settings = ctx.obj["settings"]
    analyzer = _analyzer(ctx)
    book = load_policy_book(settings.abuse_policy_file)
    with _progress() as progress:
        task = progress.add_task(audio.name, total=None)
        result = analyze_file(
            audio,
            analyzer,
            book,
            department=department,
            progress=lambda n, total: progress.update(task, completed=n, total=total),
        )
    console.print(f"{len(result.transcripts)} utterance(s) recognised")
    if result.dropped:
        console.print(f"dropped by the hallucination guard: {result.dropped}")
    first = result.transcripts[0].start_ms if result.transcripts else 0
    for incident in result.incidents:
        console.print(
            f"  {(incident.start_ms - first) / 1000:6.1f} s  {incident.action:4}  "
            f"{incident.category} {incident.score:.2f}  {incident.evidence}",
            markup=False,
        )
    console.print(f"response: {', '.join(result.actions) or 'none (no abuse detected)'}")
