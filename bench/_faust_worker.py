"""Benchmark helper: run the real CallGuard faust app as a worker until SIGTERM.

Started by ``bench.faust_vs_raw`` as ``python -m bench._faust_worker ...``; not meant to be run
by hand.  It builds the app exactly as ``callguard worker`` does (``pipelines.app.create_app``)
and writes the wall time into ``--ready-file`` when faust reports the worker ready.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import faust

from pipelines.app import StreamOptions, create_app
from pipelines.settings import Settings


class _BenchWorker(faust.Worker):
    """A plain faust worker that also records when it finished starting."""

    ready_file: Path | None = None

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        if self.ready_file is not None:
            self.ready_file.write_text(f"{time.time():.6f}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--guarantee", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--web-port", type=int, required=True)
    parser.add_argument("--ready-file", type=Path, default=None)
    parser.add_argument("--loglevel", default="warning")
    args = parser.parse_args()

    overrides: dict[str, Any] = {
        "kafka_bootstrap": args.bootstrap,
        "topic_prefix": args.prefix,
        "partitions": args.partitions,
        "processing_guarantee": args.guarantee,
        "data_dir": args.data_dir,
        "worker_web_port": args.web_port,
    }
    settings = Settings(**overrides)
    app = create_app(settings, options=StreamOptions(tick_interval_s=5))
    worker = _BenchWorker(
        app,
        loglevel=args.loglevel,
        workdir=str(args.data_dir),
        redirect_stdouts=False,
    )
    worker.ready_file = args.ready_file
    # The terminal spinner is drawn only on a tty, but at loglevel WARNING and above faust
    # still sets the root logger to DEBUG for it, so every library debug call builds a
    # LogRecord for nothing (~5 per event).  ``callguard worker`` at its default "info" has no
    # spinner either, so dropping it measures the app as it is deployed.
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
