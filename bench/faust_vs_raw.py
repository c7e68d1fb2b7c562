"""Throughput of the call tracker: the real faust app vs a raw confluent-kafka loop.

Both sides run as their own process against the same broker in the same run, each on its own
freshly created topics (prefix ``bench-<uuid8>.<mode><n>.``), and do the same work per message:
decode a ``CallEvent``, fold it with ``pipelines.core.calls.step``, produce one ``CallSummary``
per finished call.

Timing (identical for both sides): start the worker, feed it a few warm-up calls and wait until
their summaries are readable (``read_committed``), so start-up, group join, recovery and
transactional set-up are not measured.  Then produce the measured batch (pre-encoded in memory)
and time from the first measured produce to the arrival of the last measured summary:
``events/s = events / (last summary seen - first event produced)``.  Peak RSS is the worker
process's ``ru_maxrss`` over its whole life (from ``wait4``).

Run: ``python -m bench.faust_vs_raw --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from connectors.kafka.topics import (
    KEY_PARTITIONER,
    TopicCatalog,
    create_topics,
    delete_topics,
    existing_topics,
)
from connectors.simulator.audio import load_clips
from connectors.simulator.scenario import events as sim_events
from connectors.simulator.scenario import plan_calls
from schemas.codec import encode
from schemas.records import CallEvent

REPO = Path(__file__).resolve().parents[1]
MODES = ("faust", "raw")
WARMUP_CALLS_PER_PARTITION = 4
STOP_GRACE_S = 10.0


# --- workload ----------------------------------------------------------------------------------


@dataclass
class Workload:
    messages: list[tuple[bytes, bytes]]  # (key, value) in produce order
    events_per_call: dict[str, int]

    @property
    def events(self) -> int:
        return len(self.messages)


def make_workload(n_events: int, seed: int) -> Workload:
    """SIMULATED PBX traffic from the call simulator (``connectors.simulator``): overlapping
    calls, each call's events in order, keyed by call id; whole calls until ``n_events`` is
    reached, so the count can exceed it by one call's events."""
    clips = load_clips()
    start_ms = 1_764_000_000_000
    timeline: list[tuple[int, int, CallEvent]] = []
    events_per_call: dict[str, int] = {}
    batch = max(1, n_events // 6)
    offset = 0
    while len(timeline) < n_events:
        calls = plan_calls(batch + offset, seed=seed, start_ms=start_ms, clips=clips)[offset:]
        for call in calls:
            call_events = sim_events(call)
            events_per_call[call.call_id] = len(call_events)
            timeline += [(e.ts_ms, len(timeline) + i, e) for i, e in enumerate(call_events)]
            if len(timeline) >= n_events:
                break
        offset += len(calls)
    timeline.sort(key=lambda item: (item[0], item[1]))  # interleave the concurrent calls
    messages = [(event.call_id.encode(), encode(event)) for _, _, event in timeline]
    return Workload(messages, events_per_call)


# --- processes ---------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Child pre-exec: get SIGTERM if the benchmark dies without cleaning up (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Worker:
    """One measured worker process; reaped with ``wait4`` so its peak RSS is known."""

    #: how often ``stop`` looks whether SIGTERM was enough
    stop_poll_s = 0.05
    #: what ``cpu_s`` says once the process is gone
    cpu_when_gone = 0.0

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        env = {**(os.environ if env is None else env), "PYTHONPATH": str(REPO)}
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        self.started = time.perf_counter()
        self.exit_code: int | None = None
        self.maxrss_kib = 0
        self.sampled_rss_peak = 0

    def cpu_s(self) -> float:
        """User + system CPU seconds the worker has used so far."""
        try:
            times = psutil.Process(self.proc.pid).cpu_times()
        except psutil.Error:
            return self.cpu_when_gone
        return float(times.user + times.system)

    def alive(self) -> bool:
        if self.exit_code is not None:
            return False
        # WNOWAIT: look without reaping, so wait4 still gets the rusage later
        info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return info is None

    def sample_rss(self) -> None:
        try:
            rss = psutil.Process(self.proc.pid).memory_info().rss
        except psutil.Error:
            return
        self.sampled_rss_peak = max(self.sampled_rss_peak, rss)

    def _reap(self, block: bool) -> bool:
        pid, status, usage = os.wait4(self.proc.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        self.exit_code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.exit_code
        self.maxrss_kib = usage.ru_maxrss
        return True

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        if self.exit_code is not None:
            return
        try:
            if self.alive():
                self.proc.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + grace_s
                while time.monotonic() < deadline:
                    if self._reap(block=False):
                        return
                    time.sleep(self.stop_poll_s)
                self.proc.kill()
            self._reap(block=True)
        except ChildProcessError:
            self.exit_code = self.proc.returncode if self.proc.returncode is not None else -1
        finally:
            self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


# --- reading the outputs -----------------------------------------------------------------------


class SummaryWatcher:
    """Reads summaries and dead letters (read_committed) from the start; notes arrival times."""

    def __init__(self, bootstrap: str, catalog: TopicCatalog) -> None:
        self.summaries = catalog.summaries
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                # never joins a group or commits: partitions are assigned directly
                "group.id": f"{catalog.summaries}.bench-watcher",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 50,
            }
        )
        self.consumer.assign(
            [
                TopicPartition(topic, p, OFFSET_BEGINNING)
                for topic in (catalog.summaries, catalog.dead_letters)
                for p in range(catalog.partitions)
            ]
        )
        self.arrivals: dict[str, float] = {}  # call id → first arrival (perf_counter)
        self.events: dict[str, int] = {}  # call id → "events" of its summary
        self.duplicates = 0
        self.dead_letters: list[str] = []  # their reasons

    def poll(self, timeout_s: float) -> None:
        for msg in self.consumer.consume(num_messages=2000, timeout=timeout_s):
            if msg.error() is not None:
                continue
            now = time.perf_counter()
            data = json.loads(msg.value() or b"{}")
            if msg.topic() != self.summaries:
                self.dead_letters.append(str(data.get("reason", "?")))
                continue
            call_id = data.get("call_id", "")
            if call_id in self.arrivals:
                self.duplicates += 1
                continue
            self.arrivals[call_id] = now
            self.events[call_id] = int(data.get("events", -1))

    def wait_for(self, expected: set[str], timeout_s: float, worker: Worker, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        next_sample = 0.0
        while not expected.issubset(self.arrivals):
            if time.monotonic() > next_sample:
                worker.sample_rss()
                next_sample = time.monotonic() + 0.25
            if not worker.alive():
                raise BenchError(f"{what}: worker exited early", worker)
            if self.dead_letters:
                raise BenchError(
                    f"{what}: the worker dead-lettered {len(self.dead_letters)} messages, "
                    f"first reason: {self.dead_letters[0]}",
                    worker,
                )
            if time.monotonic() > deadline:
                missing = len(expected - self.arrivals.keys())
                raise BenchError(
                    f"{what}: {missing} of {len(expected)} summaries missing "
                    f"after {timeout_s:.0f} s",
                    worker,
                )
            self.poll(0.05)

    def close(self) -> None:
        self.consumer.close()


class BenchError(RuntimeError):
    def __init__(self, message: str, worker: Worker | None = None) -> None:
        super().__init__(message)
        self.worker = worker


def produce_all(
    producer: Producer,
    topic: str,
    messages: list[tuple[bytes, bytes]],
    between_chunks: Callable[[], None] | None = None,
    chunk: int = 1000,
) -> None:
    for start in range(0, len(messages), chunk):
        for key, value in messages[start : start + chunk]:
            while True:
                try:
                    producer.produce(topic, key=key, value=value)
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.poll(0)
        if between_chunks is not None:
            between_chunks()
    remaining = producer.flush(60)
    if remaining:
        raise BenchError(f"{remaining} input messages not delivered")


# --- one measured run --------------------------------------------------------------------------


@dataclass
class RunResult:
    mode: str
    repeat: int
    events: int
    calls: int
    seconds: float
    events_per_s: float
    produce_s: float
    first_output_s: float
    startup_s: float
    worker_cpu_s: float
    peak_rss_mib: float
    sampled_rss_peak_mib: float
    duplicate_summaries: int
    wrong_event_counts: int
    exit_code: int | None
    topic_prefix: str = field(default="")


def worker_argv(
    mode: str, args: argparse.Namespace, prefix: str, data_dir: Path, ready_file: Path
) -> list[str]:
    common = [
        "--bootstrap",
        args.bootstrap,
        "--prefix",
        prefix,
        "--partitions",
        str(args.partitions),
        "--guarantee",
        args.guarantee,
        "--ready-file",
        str(ready_file),
    ]
    if mode == "faust":
        return [
            sys.executable,
            "-m",
            "bench._faust_worker",
            *common,
            "--data-dir",
            str(data_dir),
            "--web-port",
            str(free_port()),
        ]
    argv = [sys.executable, "-m", "bench._raw_worker", *common, "--group-id", f"{prefix}raw"]
    return [*argv, "--changelog"] if args.raw_changelog else argv


def run_once(
    mode: str,
    repeat: int,
    args: argparse.Namespace,
    run_prefix: str,
    workload: Workload,
    warmup: Workload,
    scratch: Path,
    workers: list[Worker],
) -> RunResult:
    prefix = f"{run_prefix}{mode}{repeat}."
    catalog = TopicCatalog(prefix=prefix, partitions=args.partitions)
    for report in create_topics(args.bootstrap, catalog.specs):
        if report.status == "mismatch":
            raise BenchError(f"topic {report.name}: {report.detail}")
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 5, **KEY_PARTITIONER})
    produce_all(producer, catalog.call_events, warmup.messages)

    data_dir = scratch / f"{mode}{repeat}"
    data_dir.mkdir()
    ready_file = data_dir / "ready"
    watcher = SummaryWatcher(args.bootstrap, catalog)
    worker = Worker(worker_argv(mode, args, prefix, data_dir, ready_file), data_dir / "worker.log")
    workers.append(worker)
    try:
        watcher.wait_for(set(warmup.events_per_call), args.startup_timeout, worker, "warm-up")
        startup_s = time.perf_counter() - worker.started

        measured = set(workload.events_per_call)
        cpu0 = worker.cpu_s()
        t0 = time.perf_counter()
        produce_all(producer, catalog.call_events, workload.messages, lambda: watcher.poll(0))
        produce_s = time.perf_counter() - t0
        timeout = max(120.0, workload.events / 100)
        watcher.wait_for(measured, timeout, worker, "measured batch")
        cpu_s = worker.cpu_s() - cpu0
        times = [watcher.arrivals[c] for c in measured]
        seconds = max(times) - t0
        first_output_s = min(times) - t0
        expected = {**warmup.events_per_call, **workload.events_per_call}
        wrong = sum(1 for call, n in expected.items() if watcher.events[call] != n)
        duplicates = watcher.duplicates
    finally:
        watcher.close()
        worker.stop()
    return RunResult(
        mode=mode,
        repeat=repeat,
        events=workload.events,
        calls=len(workload.events_per_call),
        seconds=seconds,
        events_per_s=workload.events / seconds,
        produce_s=produce_s,
        first_output_s=first_output_s,
        startup_s=startup_s,
        worker_cpu_s=cpu_s,
        peak_rss_mib=worker.maxrss_kib / 1024,
        sampled_rss_peak_mib=worker.sampled_rss_peak / 2**20,
        duplicate_summaries=duplicates,
        wrong_event_counts=wrong,
        exit_code=worker.exit_code,
        topic_prefix=prefix,
    )


# --- cleanup, report, main ---------------------------------------------------------------------


def cleanup_broker(bootstrap: str, run_prefix: str, groups: list[str]) -> int:
    try:
        names = sorted(t for t in existing_topics(bootstrap) if t.startswith(run_prefix))
        if names:
            delete_topics(bootstrap, names)
        if groups:
            admin = AdminClient({"bootstrap.servers": bootstrap})
            for future in admin.delete_consumer_groups(groups, request_timeout=10).values():
                try:
                    future.result(timeout=10)
                except Exception as exc:  # noqa: BLE001 - report, never fail the benchmark
                    if "GROUP_ID_NOT_FOUND" not in str(exc):  # a group that never formed
                        print(f"note: consumer group not deleted: {exc}", file=sys.stderr)
        return len(names)
    except Exception as exc:  # noqa: BLE001 - cleanup must not hide the results
        print(f"warning: cleanup of {run_prefix}* failed: {exc}", file=sys.stderr)
        return 0


def median_of(results: list[RunResult], mode: str) -> dict[str, float]:
    runs = [r for r in results if r.mode == mode]
    return {
        "events": runs[0].events,
        "seconds": statistics.median(r.seconds for r in runs),
        "events_per_s": statistics.median(r.events_per_s for r in runs),
        "peak_rss_mib": max(r.peak_rss_mib for r in runs),
        "startup_s": statistics.median(r.startup_s for r in runs),
    }


def print_table(args: argparse.Namespace, results: list[RunResult]) -> dict[str, Any]:
    summary = {mode: median_of(results, mode) for mode in MODES}
    ratio = summary["faust"]["events_per_s"] / summary["raw"]["events_per_s"]
    label = "median of " + str(args.repeat) + " runs" if args.repeat > 1 else "1 run"
    print()
    print(f"results ({label}, guarantee={args.guarantee}, partitions={args.partitions})")
    header = f"{'mode':<6} {'events':>8} {'seconds':>8} {'events/s':>10} {'peak RSS MiB':>13}"
    print(header)
    print("-" * len(header))
    for mode in MODES:
        s = summary[mode]
        print(
            f"{mode:<6} {int(s['events']):>8} {s['seconds']:>8.2f} {s['events_per_s']:>10.1f}"
            f" {s['peak_rss_mib']:>13.1f}"
        )
    print(f"faust/raw ratio: {ratio:.2f}")
    return {"modes": summary, "faust_raw_ratio": ratio}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.faust_vs_raw",
        description="Events/s and peak RSS of the call tracker: the real faust app vs a raw "
        "confluent-kafka consume→process→produce loop, on the same broker in the same run.",
    )
    parser.add_argument("--events", type=int, default=20_000, help="measured input events")
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("CALLGUARD_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
        help="Kafka bootstrap servers (default: $CALLGUARD_KAFKA_BOOTSTRAP or 127.0.0.1:19092)",
    )
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic")
    parser.add_argument(
        "--guarantee", choices=("exactly_once", "at_least_once"), default="exactly_once"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per mode; the median counts")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write results")
    parser.add_argument(
        "--raw-changelog",
        action="store_true",
        help="raw side also writes every state to the table changelog, as the faust table does",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the worker logs (path printed at the end)"
    )
    parser.add_argument("--seed", type=int, default=7, help="workload random seed")
    parser.add_argument(
        "--startup-timeout", type=float, default=120.0, help="seconds for a worker to warm up"
    )
    args = parser.parse_args(argv)
    if args.events < 100:
        parser.error("--events must be at least 100")
    if args.partitions < 1 or args.repeat < 1:
        parser.error("--partitions and --repeat must be at least 1")
    return args


def check_broker(bootstrap: str) -> None:
    try:
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    except Exception as exc:  # noqa: BLE001 - turn any client error into one clear message
        raise SystemExit(
            f"no Kafka broker at {bootstrap} ({exc}); start one: docker/kafka/kafka.sh start"
        ) from None


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = sys.orig_argv if argv is None else [sys.executable, "-m", "bench.faust_vs_raw", *argv]
    print("command:", shlex.join(command))
    signal.signal(signal.SIGTERM, _raise_interrupt)
    check_broker(args.bootstrap)
    run_prefix = f"bench-{uuid.uuid4().hex[:8]}."
    workload = make_workload(args.events, args.seed)
    warmup = make_workload(WARMUP_CALLS_PER_PARTITION * args.partitions * 10, args.seed + 1)
    print(
        f"workload: {workload.events} events in {len(workload.events_per_call)} calls "
        f"(+{warmup.events} warm-up events), topics {run_prefix}*, guarantee={args.guarantee}, "
        f"partitions={args.partitions}, repeat={args.repeat}"
    )
    scratch = Path(tempfile.mkdtemp(prefix="callguard-bench-"))
    workers: list[Worker] = []
    results: list[RunResult] = []
    groups: list[str] = []
    try:
        for repeat in range(1, args.repeat + 1):
            for mode in MODES:
                prefix = f"{run_prefix}{mode}{repeat}."
                groups.append(
                    TopicCatalog(prefix=prefix).faust_app_id if mode == "faust" else f"{prefix}raw"
                )
                result = run_once(
                    mode, repeat, args, run_prefix, workload, warmup, scratch, workers
                )
                results.append(result)
                flag = ""
                if result.exit_code:
                    flag = f"  (worker exit code {result.exit_code} on SIGTERM)"
                if result.duplicate_summaries or result.wrong_event_counts:
                    flag += (
                        f"  WARNING: {result.duplicate_summaries} duplicate summaries, "
                        f"{result.wrong_event_counts} with wrong event counts"
                    )
                print(
                    f"  run {repeat} {mode:<5}: {result.seconds:6.2f} s  "
                    f"{result.events_per_s:9.1f} events/s  "
                    f"first output {result.first_output_s:5.2f} s  "
                    f"produce {result.produce_s:4.2f} s  warm-up {result.startup_s:5.1f} s  "
                    f"worker CPU {result.worker_cpu_s:5.1f} s  "
                    f"peak RSS {result.peak_rss_mib:6.1f} MiB{flag}",
                    flush=True,
                )
        report = print_table(args, results)
        if args.json is not None:
            payload = {
                "command": shlex.join(command),
                "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "topic_prefix": run_prefix,
                "runs": [asdict(r) for r in results],
                **report,
            }
            args.json.write_text(json.dumps(payload, indent=2) + "\n")
            print(f"wrote {args.json}")
        return 0
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        if exc.worker is not None:
            exc.worker.stop(grace_s=2.0)
            print(f"--- worker log tail ({exc.worker.log_path}) ---", file=sys.stderr)
            print(exc.worker.log_tail(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: stopping workers and deleting topics", file=sys.stderr)
        return 130
    finally:
        for worker in workers:
            worker.stop(grace_s=2.0)
        cleanup_broker(args.bootstrap, run_prefix, groups)
        if args.keep_logs:
            print(f"worker logs kept in {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
