"""Dev-set evaluation of a text classifier: per-category and binary P/R/F1, false positives.

callguard evaluate-text [--devset data/devset/phone_complaints.jsonl] [--model DIR]
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from connectors.models.text_classifier import TextClassifier
from pipelines.core.abuse_text import ABUSIVE, CLEAN

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DEVSET = REPO / "data" / "devset" / "phone_complaints.jsonl"
#: clean kinds that look abusive on the surface
#: the report fields a model's metrics.json keeps (the errors list is left out)
SUMMARY_KEYS = (
    "n",
    "per_category",
    "macro_f1_abusive",
    "binary",
    "clean_fp_rate",
    "hard_negative_fp_rate",
    "ms_per_utterance",
)
HARD_NEGATIVE_KINDS = ("angry_civil", "lawful_threat", "homograph", "third_party_report", "quote")


def load_devset(path: Path = DEFAULT_DEVSET) -> list[dict[str, Any]]:
    rows = []
    with Path(path).open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("category") not in (CLEAN, *ABUSIVE) or not row.get("text"):
                raise ValueError(f"{path}:{n}: needs text and a known category")
            rows.append(row)
    return rows


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4)}


def evaluate(classifier: TextClassifier, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Metrics of ``classifier`` on labelled ``rows`` (``text``, ``category``, ``kind``)."""
    started = time.perf_counter()
    verdicts = classifier.classify([r["text"] for r in rows])
    elapsed = time.perf_counter() - started
    gold = [r["category"] for r in rows]
    pred = [v.category for v in verdicts]

    per_category = {}
    for category in (*ABUSIVE, CLEAN):
        tp = sum(g == p == category for g, p in zip(gold, pred, strict=True))
        fp = sum(p == category != g for g, p in zip(gold, pred, strict=True))
        fn = sum(g == category != p for g, p in zip(gold, pred, strict=True))
        per_category[category] = {**_prf(tp, fp, fn), "support": gold.count(category)}
    macro = sum(per_category[c]["f1"] for c in ABUSIVE) / len(ABUSIVE)

    g_bin = [g != CLEAN for g in gold]
    p_bin = [v.abusive for v in verdicts]
    tp = sum(g and p for g, p in zip(g_bin, p_bin, strict=True))
    fp = sum(p and not g for g, p in zip(g_bin, p_bin, strict=True))
    fn = sum(g and not p for g, p in zip(g_bin, p_bin, strict=True))
    n_clean = g_bin.count(False)

    kinds: dict[str, dict[str, Any]] = {}
    for row, verdict in zip(rows, verdicts, strict=True):
        kind = row.get("kind") or row["category"]
        entry = kinds.setdefault(
            kind, {"n": 0, "flagged": 0, "correct": 0, "gold": row["category"]}
        )
        entry["n"] += 1
        entry["flagged"] += int(verdict.abusive)
        entry["correct"] += int(verdict.category == row["category"])
    for entry in kinds.values():
        entry["flagged_rate"] = round(entry["flagged"] / entry["n"], 4)
        entry["accuracy"] = round(entry["correct"] / entry["n"], 4)

    errors = [
        {
            "id": r.get("id"),
            "text": r["text"],
            "gold": r["category"],
            "pred": v.category,
            "score": round(v.score, 3),
            "kind": r.get("kind"),
        }
        for r, v in zip(rows, verdicts, strict=True)
        if v.category != r["category"]
    ]
    confusion = Counter(f"{g}->{p}" for g, p in zip(gold, pred, strict=True) if g != p)
    return {
        "classifier": getattr(classifier, "version", type(classifier).__name__),
        "n": len(rows),
        "per_category": per_category,
        "macro_f1_abusive": round(macro, 4),
        "binary": {**_prf(tp, fp, fn), "support": g_bin.count(True)},
        "clean_fp_rate": round(fp / n_clean, 4) if n_clean else 0.0,
        "hard_negative_fp_rate": {
            k: kinds[k]["flagged_rate"] for k in HARD_NEGATIVE_KINDS if k in kinds
        },
        "kinds": kinds,
        "confusion": dict(confusion.most_common()),
        "errors": errors,
        "ms_per_utterance": round(1000 * elapsed / max(len(rows), 1), 4),
    }


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of :func:`evaluate`'s result."""
    lines = [
        f"classifier {report['classifier']}  ({report['n']} utterances, "
        f"{report['ms_per_utterance']} ms each)",
        "",
    ]
    lines.append(f"{'category':<20}{'P':>7}{'R':>7}{'F1':>7}{'n':>6}")
    for category, m in report["per_category"].items():
        lines.append(
            f"{category:<20}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}{m['support']:>6}"
        )
    b = report["binary"]
    lines.append(
        f"{'abusive (binary)':<20}{b['precision']:>7.3f}{b['recall']:>7.3f}"
        f"{b['f1']:>7.3f}{b['support']:>6}"
    )
    lines.append(f"macro F1 (abusive categories) {report['macro_f1_abusive']:.3f}")
    lines.append(f"false-positive rate on clean   {report['clean_fp_rate']:.3f}")
    lines.append("")
    lines.append(f"{'kind':<22}{'n':>5}{'flagged':>9}{'category ok':>13}")
    for kind, k in sorted(report["kinds"].items(), key=lambda kv: (kv[1]["gold"] != CLEAN, kv[0])):
        lines.append(f"{kind:<22}{k['n']:>5}{k['flagged_rate']:>9.3f}{k['accuracy']:>13.3f}")
    return "\n".join(lines)
