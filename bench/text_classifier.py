"""Abuse text classifier throughput and memory vs the keyword-only baseline, in one run.

Each classifier runs in its own fresh process (so peak RSS is its own): load the classifier,
then classify the dev-set utterances (``data/devset/phone_complaints.jsonl``) repeated to
``--utterances`` in total, one at a time as the stream does (``classify([text])``).  Printed
per classifier: load time, utterances/s, mean and p99 latency per utterance, and the process's
peak RSS (``ru_maxrss``); then the model/baseline ratios.

Run: ``python -m bench.text_classifier [--utterances 20000] [--model DIR] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _worker(kind: str, n: int, model_dir: str | None) -> dict:
    started = time.perf_counter()
    from connectors.models.evaluate import DEFAULT_DEVSET, load_devset
    from connectors.models.text_classifier import KeywordOnlyClassifier, load_text_classifier

    clf = (
        KeywordOnlyClassifier()
        if kind == "keywords"
        else load_text_classifier(Path(model_dir) if model_dir else None)
    )
    load_s = time.perf_counter() - started
    texts = [r["text"] for r in load_devset(DEFAULT_DEVSET)]
    texts = (texts * (n // len(texts) + 1))[:n]
    latencies = []
    t0 = time.perf_counter()
    for text in texts:
        t = time.perf_counter()
        clf.classify([text])
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "classifier": getattr(clf, "version", kind),
        "utterances": n,
        "load_s": round(load_s, 3),
        "utt_per_s": round(n / elapsed, 1),
        "mean_ms": round(1000 * statistics.fmean(latencies), 4),
        "p99_ms": round(1000 * latencies[int(0.99 * (n - 1))], 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--utterances", type=int, default=20000)
    parser.add_argument("--model", default=None, help="model directory (default: shipped v1)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", choices=["model", "keywords"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.utterances, args.model)))
        return

    results = {}
    for kind in ("keywords", "model"):
        cmd = [sys.executable, "-m", "bench.text_classifier", "--worker", kind]
        cmd += ["--utterances", str(args.utterances)]
        if args.model:
            cmd += ["--model", args.model]
        out = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True).stdout
        results[kind] = json.loads(out.strip().splitlines()[-1])
    print(" ".join(sys.argv))
    print(
        f"{'classifier':<32}{'load s':>8}{'utt/s':>10}{'mean ms':>9}{'p99 ms':>9}"
        f"{'peak RSS MB':>13}"
    )
    for r in results.values():
        print(
            f"{r['classifier']:<32}{r['load_s']:>8}{r['utt_per_s']:>10}{r['mean_ms']:>9}"
            f"{r['p99_ms']:>9}{r['peak_rss_mb']:>13}"
        )
    k, m = results["keywords"], results["model"]
    print(
        f"model/keywords: throughput x{m['utt_per_s'] / k['utt_per_s']:.2f}, "
        f"peak RSS +{m['peak_rss_mb'] - k['peak_rss_mb']:.1f} MB"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
