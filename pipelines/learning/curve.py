"""The learning curve of a retraining run: F1 vs feedback labels used, as PNG, CSV, markdown."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLUMNS = (
    "fraction",
    "feedback_labels",
    "dev_macro_f1",
    "holdout_macro_f1",
    "score",
    "dev_f1_threat",
    "dev_f1_sexual_harassment",
    "dev_f1_profanity",
    "dev_f1_insult",
    "dev_f1_clean",
)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def write_curve(out_dir: Path, rows: Sequence[dict[str, Any]], title: str) -> list[Path]:
    """``learning_curve.csv``, ``.md`` and ``.png`` in ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "learning_curve.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([_fmt(row.get(c)) for c in COLUMNS])
    md_path = out_dir / "learning_curve.md"
    lines = [
        f"# {title}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(_fmt(row.get(c)) or "-" for c in COLUMNS) + " |" for row in rows]
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    png_path = out_dir / "learning_curve.png"
    _plot(png_path, rows, title)
    return [png_path, csv_path, md_path]


def _plot(path: Path, rows: Sequence[dict[str, Any]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=110)
    ax = fig.add_subplot()
    x = [r["feedback_labels"] for r in rows]
    ax.plot(x, [r["dev_macro_f1"] for r in rows], marker="o", label="dev set macro F1")
    holdout = [r["holdout_macro_f1"] for r in rows]
    if any(h is not None for h in holdout):
        ax.plot(
            x,
            [float("nan") if h is None else h for h in holdout],
            marker="s",
            label="feedback holdout macro F1",
        )
    for category in ("insult", "threat"):
        key = f"dev_f1_{category}"
        if rows and key in rows[0]:
            ax.plot(x, [r[key] for r in rows], linestyle=":", label=f"dev F1 {category}")
    ax.set_xlabel("feedback labels used for training")
    ax.set_ylabel("F1")
    ax.set_ylim(0.0, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
