"""Concurrent calls through the real Asterisk PBX and the Asterisk connector.

For each concurrency level N (``--calls 2,4,8``): fresh topics (prefix
``bench-<uuid8>.astN.``), the real connector (``python -m pipelines connector asterisk``) as a
subprocess, and ceil(N/2) phone-driver processes (``bench/_phone_driver.py``: pjsua2 allows 4
simultaneous calls per process, and a PBX call is two of them there: the citizen's and the
staff phone's) that place N citizen calls at once.  Call k is ``callerKK`` dialling line
``11KK`` of a benchmark department directory (written to a temp dir, passed with
``CALLGUARD_DEPARTMENTS_FILE``) whose only staff endpoint is ``staffKK`` and which plays no
notice; the staff phone answers, the caller loops a sample WAV for ``--talk-s`` seconds, then
the benchmark sends a ``hangup`` PbxCommand per call (call ids from the ``call_started`` events,
matched by the dialled line).

Measured per level:

* **audio completeness** per leg from the audio topic: sequence numbers 0..last contiguous,
  the last one ``final``, ``lost_packets`` summed; audio duration against the call's talk time
  (``bridged`` → ``hangup`` event times).  A leg is ok when it has no missing sequence number,
  a final chunk and no lost packets; a level has zero loss when every leg is ok.
* **connector / Asterisk CPU %** (user+system over the talk phase, 100 % = one core) and the
  connector's peak RSS (sampled every 0.25 s during the talk phase), with psutil.
* **command latency**: from ``produce()`` of the hangup command to the moment each phone saw
  the BYE (reported by the drivers; 2 samples per call) and to the arrival of the
  ``CommandResult`` on the command-results topic at this process's consumer.

Needs the PBX (``docker/asterisk/asterisk.sh start``) and Kafka (``docker/kafka/kafka.sh
start``).  Run: ``python -m bench.asterisk_calls --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import os
import queue
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.faust_vs_raw import check_broker
from connectors.kafka.topics import (
    KEY_PARTITIONER,
    TopicCatalog,
    create_topics,
    delete_topics,
    existing_topics,
)
from pipelines.demo import settings_env
from pipelines.settings import Settings
from schemas.codec import decode, encode
from schemas.records import AudioChunk, CallEvent, CommandResult, PbxCommand

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "connectors" / "simulator" / "samples"
# pjsua2-python: 4 simultaneous calls per process; a PBX call with both phones in one driver
# process is 2 of them (caller out + staff in): a third pair's staff phone would answer 486
CALLS_PER_DRIVER = 2
MAX_CALLS = 16  # test phones caller01..16 / staff01..16 in docker/asterisk/conf
FIRST_LINE = 1100  # call k dials 1100 + k
DRIVER_RTP_BASE = 40000
DRIVER_RTP_RANGE = 200
LEGS = ("caller", "staff")


class BenchError(RuntimeError):
    pass


# --- processes ---------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Child pre-exec: SIGTERM when the benchmark dies without cleaning up (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_process(proc: subprocess.Popen[Any], grace_s: float) -> int | None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
    return proc.returncode


class Connector:
    """``python -m pipelines connector asterisk`` with the level's settings."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        env = settings_env(settings)
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines", "connector", "asterisk"],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        self.ps = psutil.Process(self.proc.pid)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"connector exited ({self.proc.returncode}):\n{self.log_tail()}")
            if b"ARI events connected" in self.log_path.read_bytes():
                time.sleep(0.5)  # the command consumer joins its group meanwhile
                return
            time.sleep(0.1)
        raise BenchError(f"connector not connected to ARI in {timeout_s:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> int | None:
        code = stop_process(self.proc, 20.0)
        self._log.close()
        return code


class Driver:
    """One ``bench._phone_driver`` process; its JSON lines go to a shared queue."""

    def __init__(
        self,
        index: int,
        calls: list[int],
        events: queue.Queue[tuple[int, dict[str, Any]]],
        log_path: Path,
        max_s: float,
    ) -> None:
        self.index = index
        self.calls = calls
        self.log_path = log_path
        self._log = log_path.open("wb")
        wavs = sorted(SAMPLES.glob("*.wav"))
        if not wavs:
            raise BenchError(f"no sample WAVs in {SAMPLES}")
        pairs = ",".join(f"caller{k:02d}:staff{k:02d}:{line_of(k)}" for k in calls)
        argv = [
            sys.executable,
            "-m",
            "bench._phone_driver",
            "--pairs",
            pairs,
            "--rtp-port-base",
            str(DRIVER_RTP_BASE + index * DRIVER_RTP_RANGE),
            "--rtp-port-range",
            str(DRIVER_RTP_RANGE),
            "--max-s",
            str(max_s),
        ]
        for k in calls:  # call k plays sample k mod len(samples)
            argv += ["--wav", str(wavs[k % len(wavs)])]
        self.proc: subprocess.Popen[str] = subprocess.Popen(
            argv,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            preexec_fn=_die_with_parent,
        )
        self.ps = psutil.Process(self.proc.pid)
        self._events = events
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                event = json.loads(raw)
            except json.JSONDecodeError:
                continue
            self._events.put((self.index, event))
        self._events.put((self.index, {"ev": "exit", "t": time.time()}))

    def send(self, word: str) -> None:
        stdin: IO[str] | None = self.proc.stdin
        if stdin is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            stdin.write(word + "\n")
            stdin.flush()

    def stop(self, grace_s: float = 15.0) -> None:
        """Ask it to hang up and exit; SIGTERM (also a hang-up) and SIGKILL if it does not."""
        self.send("quit")
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            stop_process(self.proc, 5.0)
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        self._reader.join(2)
        self._log.close()


def line_of(k: int) -> str:
    return str(FIRST_LINE + k)


def asterisk_process() -> psutil.Process | None:
    run_dir = Path(os.environ.get("ASTERISK_RUN_DIR", REPO / "var" / "asterisk"))
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        proc = psutil.Process(int((run_dir / "asterisk.pid").read_text().strip()))
        if proc.name() == "asterisk":
            return proc
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == "asterisk":
            return proc
    return None


def cpu_s(proc: psutil.Process | None) -> float:
    if proc is None:
        return math.nan
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return math.nan
    return float(times.user + times.system)


# --- Kafka -------------------------------------------------------------------------------------


class Follower:
    """Reads call events and command results (from the beginning) in a thread."""

    def __init__(self, bootstrap: str, catalog: TopicCatalog) -> None:
        self.events: list[CallEvent] = []
        self.results: list[tuple[float, CommandResult]] = []  # (arrival wall time, result)
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-follow-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 20,
                "isolation.level": "read_uncommitted",
            }
        )
        topics = [catalog.call_events, catalog.command_results]
        metadata = self._consumer.list_topics(timeout=10).topics
        self._consumer.assign(
            [TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in metadata[t].partitions]
        )
        self._results_topic = catalog.command_results
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._consumer.poll(0.05)
            if msg is None or msg.error():
                continue
            now = time.time()
            with self.lock:
                if msg.topic() == self._results_topic:
                    self.results.append((now, decode(CommandResult, msg.value())))
                else:
                    self.events.append(decode(CallEvent, msg.value()))

    def snapshot(self) -> tuple[list[CallEvent], list[tuple[float, CommandResult]]]:
        with self.lock:
            return list(self.events), list(self.results)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()


def read_audio(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[AudioChunk]:
    """Every chunk now on the audio topic (all partitions, from the beginning to the end)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-audio-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    try:
        parts = [
            TopicPartition(topic, p, OFFSET_BEGINNING)
            for p in consumer.list_topics(timeout=10).topics[topic].partitions
        ]
        ends = {}
        for tp in parts:
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            ends[tp.partition] = high if high > low else -(10**9)
        consumer.assign(parts)
        out: list[AudioChunk] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.2):
                if not msg.error():
                    out.append(decode(AudioChunk, msg.value()))
            if all(tp.offset >= ends[tp.partition] for tp in consumer.position(parts)):
                return out
        raise BenchError(f"could not read {topic} to its end in {timeout_s:.0f} s")
    finally:
        consumer.close()


def write_departments(path: Path, n: int) -> None:
    """One department per call: line 11KK, staff endpoint staffKK, no notice."""
    blocks = ["# bench.asterisk_calls: one line per staff phone, no consent notice (short calls)\n"]
    for k in range(1, n + 1):
        blocks.append(
            f"[departments.bench{k:02d}]\n"
            f'name = "bench desk {k:02d}"\n'
            f'line = "{line_of(k)}"\n'
            f'office_number = "02-120-{line_of(k)}"\n'
            f'staff_endpoints = ["staff{k:02d}"]\n'
            "notices = []\n"
            'ringback = "default"\n'
        )
    path.write_text("\n".join(blocks), encoding="utf-8")


# --- one level ---------------------------------------------------------------------------------


@dataclass
class LegCheck:
    chunks: int = 0
    missing: int = 0
    duplicates: int = 0
    lost_packets: int = 0
    final: bool = False
    audio_ms: int = 0
    talk_ms: int = 0
    start_lag_ms: int | None = None  # bridged event → first captured sample
    end_gap_ms: int | None = None  # end of the last captured sample → hangup event

    @property
    def ok(self) -> bool:
        return self.chunks > 0 and self.final and not self.missing and not self.lost_packets


@dataclass
class LevelResult:
    calls: int
    bridged: int = 0
    legs: dict[tuple[str, str], LegCheck] = field(default_factory=dict)
    connector_cpu_pct: float = math.nan
    connector_peak_rss_mib: float = math.nan
    asterisk_cpu_pct: float = math.nan
    host_cpu_pct: float = math.nan
    talk_s: float = 0.0
    bye_ms: list[float] = field(default_factory=list)
    result_ms: list[float] = field(default_factory=list)
    results_applied: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def legs_ok(self) -> int:
        return sum(leg.ok for leg in self.legs.values())

    @property
    def legs_total(self) -> int:
        return 2 * self.calls

    @property
    def missing(self) -> int:
        return sum(leg.missing for leg in self.legs.values())

    @property
    def lost(self) -> int:
        return sum(leg.lost_packets for leg in self.legs.values())

    @property
    def zero_loss(self) -> bool:
        return self.bridged == self.calls and self.legs_ok == self.legs_total

    @property
    def audio_pct(self) -> float:
        talk = sum(leg.talk_ms for leg in self.legs.values())
        return 100.0 * sum(leg.audio_ms for leg in self.legs.values()) / talk if talk else math.nan

    def lags(self) -> tuple[list[float], list[float]]:
        starts = [float(g.start_lag_ms) for g in self.legs.values() if g.start_lag_ms is not None]
        ends = [float(g.end_gap_ms) for g in self.legs.values() if g.end_gap_ms is not None]
        return starts, ends

    @property
    def chunks_per_leg(self) -> float:
        counts = [leg.chunks for leg in self.legs.values()]
        return statistics.median(counts) if counts else 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def check_legs(
    chunks: list[AudioChunk], call_ids: dict[str, str], events: list[CallEvent]
) -> dict[tuple[str, str], LegCheck]:
    """Completeness per (line, leg) of the calls in ``call_ids`` (line → call id)."""
    by_leg: dict[tuple[str, str], list[AudioChunk]] = {}
    for chunk in chunks:
        by_leg.setdefault((chunk.call_id, chunk.leg), []).append(chunk)
    out: dict[tuple[str, str], LegCheck] = {}
    for line, call_id in call_ids.items():
        mine = [e for e in events if e.call_id == call_id]
        bridged = next((e.ts_ms for e in mine if e.type == "bridged"), None)
        ended = next((e.ts_ms for e in mine if e.type == "hangup"), None)
        talk_ms = ended - bridged if bridged is not None and ended is not None else 0
        for leg in LEGS:
            got = by_leg.get((call_id, leg), [])
            seqs = [c.seq for c in got]
            distinct = set(seqs)
            last = max(seqs) if seqs else -1
            final = [c for c in got if c.final]
            first = min(got, key=lambda c: c.seq) if got else None
            last_chunk = max(got, key=lambda c: c.seq) if got else None
            out[(line, leg)] = LegCheck(
                chunks=len(distinct),
                missing=(last + 1 - len(distinct)) if seqs else 0,
                duplicates=len(seqs) - len(distinct),
                lost_packets=sum(c.lost_packets for c in got),
                final=bool(final) and max(c.seq for c in final) == last,
                audio_ms=sum(c.duration_ms for c in {c.seq: c for c in got}.values()),
                talk_ms=talk_ms,
                start_lag_ms=(
                    first.start_ms - bridged if first is not None and bridged is not None else None
                ),
                end_gap_ms=(
                    ended - (last_chunk.start_ms + last_chunk.duration_ms)
                    if last_chunk is not None and ended is not None
                    else None
                ),
            )
    return out


def run_level(
    n: int, args: argparse.Namespace, run_prefix: str, scratch: Path, groups: list[str]
) -> LevelResult:
    result = LevelResult(calls=n)
    prefix = f"{run_prefix}ast{n}."
    level_dir = scratch / f"calls{n}"
    level_dir.mkdir()
    settings = Settings(
        kafka_bootstrap=args.bootstrap,
        topic_prefix=prefix,
        data_dir=level_dir / "data",
        departments_file=scratch / "departments.toml",
        audio_chunk_ms=args.chunk_ms,
        log_level="info",
    )
    catalog = TopicCatalog(
        prefix=prefix,
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
        app_id=settings.app_id,
    )
    groups.append(f"{catalog.faust_app_id}-asterisk-connector")
    create_topics(args.bootstrap, catalog.specs)
    connector: Connector | None = None
    drivers: list[Driver] = []
    follower: Follower | None = None
    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "enable.idempotence": True,
            "linger.ms": 0,
            **KEY_PARTITIONER,
        }
    )
    events: queue.Queue[tuple[int, dict[str, Any]]] = queue.Queue()
    lines = [line_of(k) for k in range(1, n + 1)]
    answered: set[str] = set()
    byes: dict[tuple[str, str], float] = {}
    errors: list[str] = []

    def drain(timeout_s: float = 0.0) -> None:
        """Take the drivers' reports that are there (waiting up to ``timeout_s`` for one)."""
        block = timeout_s > 0
        while True:
            try:
                index, ev = events.get(block, timeout_s) if block else events.get_nowait()
            except queue.Empty:
                return
            block = False
            kind = ev.get("ev")
            if kind == "answered":
                answered.add(ev["line"])
            elif kind == "bye":
                byes.setdefault((ev["line"], ev["leg"]), float(ev["t"]))
            elif kind == "error":
                errors.append(f"driver {index}: {ev.get('line', '')} {ev.get('msg')}".strip())
            elif kind == "ready":
                ready.add(index)
            elif kind == "exit":
                exited.add(index)

    ready: set[int] = set()
    exited: set[int] = set()
    try:
        follower = Follower(args.bootstrap, catalog)
        connector = Connector(settings, level_dir / "connector.log")
        connector.wait_ready(30)
        max_s = args.talk_s + 120
        for d in range(math.ceil(n / CALLS_PER_DRIVER)):
            calls = list(range(d * CALLS_PER_DRIVER + 1, min(n, (d + 1) * CALLS_PER_DRIVER) + 1))
            drivers.append(Driver(d, calls, events, level_dir / f"driver{d}.log", max_s))
        deadline = time.monotonic() + 30
        while len(ready) < len(drivers):
            if exited or time.monotonic() > deadline:
                raise BenchError(f"phone drivers not ready ({sorted(ready)}): {errors}")
            drain(0.2)
        for driver in drivers:  # every call at the same moment
            driver.send("go")

        # ---- set-up: every call bridged (or ended without being bridged)
        call_ids: dict[str, str] = {}
        bridged: set[str] = set()
        ended: set[str] = set()
        deadline = time.monotonic() + 30
        while len(bridged | ended) < n and time.monotonic() < deadline:
            drain(0.1)
            seen, _ = follower.snapshot()
            for e in seen:
                if e.type == "call_started" and e.callee in lines:
                    call_ids.setdefault(e.callee, e.call_id)
            by_call = {cid: line for line, cid in call_ids.items()}
            for e in seen:
                if e.call_id in by_call and e.type in ("bridged", "hangup"):
                    (bridged if e.type == "bridged" else ended).add(by_call[e.call_id])
        result.bridged = len(bridged)
        if len(bridged) < n:
            result.notes.append(
                f"only {len(bridged)}/{n} calls bridged (staff answered {len(answered)}, "
                f"{len(ended - bridged)} ended before the bridge)"
            )
        if not bridged:
            if errors:
                result.notes.append("; ".join(errors[:3]))
            return result

        # ---- talk phase: CPU and RSS of the connector and Asterisk
        asterisk = asterisk_process()
        if asterisk is None:
            result.notes.append("asterisk process not found: no Asterisk CPU figure")
        conn_cpu0, ast_cpu0 = cpu_s(connector.ps), cpu_s(asterisk)
        psutil.cpu_percent(None)
        t0 = time.monotonic()
        peak_rss = 0
        while (elapsed := time.monotonic() - t0) < args.talk_s:
            with contextlib.suppress(psutil.Error):
                peak_rss = max(peak_rss, connector.ps.memory_info().rss)
            drain(min(0.25, max(0.01, args.talk_s - elapsed)))
        talk = time.monotonic() - t0
        result.talk_s = talk
        result.host_cpu_pct = psutil.cpu_percent(None) * psutil.cpu_count()
        result.connector_cpu_pct = 100.0 * (cpu_s(connector.ps) - conn_cpu0) / talk
        result.asterisk_cpu_pct = 100.0 * (cpu_s(asterisk) - ast_cpu0) / talk
        result.connector_peak_rss_mib = peak_rss / 2**20
        if connector.proc.poll() is not None:
            raise BenchError(f"connector died during the calls:\n{connector.log_tail()}")

        # ---- hangup commands
        sent: dict[str, tuple[str, float]] = {}  # command id → (line, produce wall time)
        for line, call_id in call_ids.items():
            if line not in bridged:
                continue
            cmd = PbxCommand(
                command_id=f"bench-{uuid.uuid4().hex[:12]}",
                call_id=call_id,
                action="hangup",
                issued_ms=int(time.time() * 1000),
                issued_by="bench.asterisk_calls",
                reason="benchmark end of call",
                args={"cause": "normal"},
            )
            value = encode(cmd)
            produced = time.time()
            producer.produce(catalog.commands, key=call_id.encode(), value=value)
            producer.poll(0)
            sent[cmd.command_id] = (line, produced)
        producer.flush(10)
        deadline = time.monotonic() + 20
        wanted = {(line, leg) for line in bridged for leg in LEGS}
        while time.monotonic() < deadline:
            drain(0.1)
            _, results = follower.snapshot()
            done = {r.command_id for _, r in results if r.command_id in sent}
            if wanted <= set(byes) and done >= set(sent):
                break
        _, results = follower.snapshot()
        for arrived, r in results:
            if r.command_id in sent:
                result.result_ms.append(1000 * (arrived - sent[r.command_id][1]))
                result.results_applied += r.status == "applied"
        produced_at = {line: t for line, t in sent.values()}
        early = 0
        for (line, _leg), seen_at in byes.items():
            if line not in produced_at:
                continue
            if seen_at < produced_at[line]:
                early += 1  # the call ended before its hangup command: no latency sample
            else:
                result.bye_ms.append(1000 * (seen_at - produced_at[line]))
        if early:
            result.notes.append(f"{early} phone(s) saw the call end before the hangup command")
        if len(result.bye_ms) + early < len(wanted):
            missing_byes = len(wanted) - len(result.bye_ms) - early
            result.notes.append(f"{missing_byes} phone(s) saw no BYE within 20 s")
        if result.results_applied < len(sent):
            result.notes.append(f"{result.results_applied}/{len(sent)} hangups 'applied'")

        # ---- audio completeness: wait until every leg's final chunk is there
        deadline = time.monotonic() + 20
        while True:
            seen, _ = follower.snapshot()
            chunks = read_audio(args.bootstrap, catalog.audio)
            result.legs = check_legs(chunks, call_ids, seen)
            if all(leg.final for leg in result.legs.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if len(result.legs) < result.legs_total:
            result.notes.append(f"audio checked on {len(result.legs)} legs (no call id for some)")
        dups = sum(leg.duplicates for leg in result.legs.values())
        if dups:
            result.notes.append(f"{dups} duplicate chunks")
        if errors:
            result.notes.append("; ".join(errors[:3]))
        return result
    finally:
        for driver in drivers:
            driver.stop()
        if follower is not None:
            follower.close()
        if connector is not None:
            code = connector.stop()
            if code not in (0, None):
                result.notes.append(f"connector exit code {code}")
        producer.flush(5)
        with contextlib.suppress(Exception):
            delete_topics(args.bootstrap, [s.name for s in catalog.specs])


# --- report, main ------------------------------------------------------------------------------


def fmt(value: float, spec: str = ".0f") -> str:
    return "-" if math.isnan(value) else format(value, spec)


def print_table(args: argparse.Namespace, results: list[LevelResult]) -> None:
    expected = args.talk_s * 1000 / args.chunk_ms
    print()
    print(
        f"results (talk {args.talk_s:g} s, chunk {args.chunk_ms} ms: "
        f"≈{expected:.0f} chunks expected per leg; CPU % over the talk phase, 100 = one core)"
    )
    header = (
        f"{'calls':>5} {'legs ok':>8} {'chunks/leg':>10} {'missing':>7} {'lost pkts':>9}"
        f" {'audio/talk':>10} {'conn CPU%':>9} {'conn RSS MiB':>12} {'ast CPU%':>8}"
        f" {'host CPU%':>9} {'cmd→BYE p50/p95 ms':>18} {'cmd→result p50 ms':>17}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        legs = f"{r.legs_ok}/{r.legs_total}"
        bye = f"{fmt(pct(r.bye_ms, 0.5))}/{fmt(pct(r.bye_ms, 0.95))}"
        print(
            f"{r.calls:>5} {legs:>8} {r.chunks_per_leg:>10.0f} {r.missing:>7} {r.lost:>9}"
            f" {fmt(r.audio_pct, '.1f') + ' %':>10} {fmt(r.connector_cpu_pct, '.1f'):>9}"
            f" {fmt(r.connector_peak_rss_mib, '.1f'):>12} {fmt(r.asterisk_cpu_pct, '.1f'):>8}"
            f" {fmt(r.host_cpu_pct, '.0f'):>9} {bye:>18} {fmt(pct(r.result_ms, 0.5)):>17}"
        )
    print(
        "audio/talk = captured audio ÷ (bridged → hangup event) over all legs; capture starts "
        "after the bridge (snoop + externalMedia set-up) and stops at the hangup:"
    )
    for r in results:
        starts, ends = r.lags()
        print(
            f"  {r.calls:2d} calls: bridged→first sample p50/max {fmt(pct(starts, 0.5))}/"
            f"{fmt(max(starts, default=math.nan))} ms, last sample→hangup p50/max "
            f"{fmt(pct(ends, 0.5))}/{fmt(max(ends, default=math.nan))} ms"
        )
    for r in results:
        for note in r.notes:
            print(f"  note ({r.calls} calls): {note}")
    clean = [r.calls for r in results if r.zero_loss]
    print(
        "largest N with zero loss: "
        + (str(max(clean)) if clean else "none")
        + f" (of {', '.join(str(r.calls) for r in results)})"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.asterisk_calls",
        description="N concurrent calls through the real Asterisk PBX and the Asterisk "
        "connector: audio chunk completeness per leg, connector and Asterisk CPU, "
        "connector peak RSS, hangup command latency.",
    )
    parser.add_argument(
        "--calls",
        default="2,4,8",
        help=f"concurrency levels, comma-separated, each 1..{MAX_CALLS} (default 2,4,8)",
    )
    parser.add_argument(
        "--talk-s", type=float, default=10.0, help="seconds of bridged talk per level"
    )
    parser.add_argument(
        "--chunk-ms", type=int, default=200, help="connector audio chunk length (ms)"
    )
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("CALLGUARD_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
        help="Kafka bootstrap servers (default: $CALLGUARD_KAFKA_BOOTSTRAP or 127.0.0.1:19092)",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep connector and driver logs (path printed)"
    )
    args = parser.parse_args(argv)
    try:
        args.levels = [int(x) for x in args.calls.split(",") if x.strip()]
    except ValueError:
        parser.error("--calls: comma-separated integers, e.g. 2,4,8")
    if not args.levels or not all(1 <= n <= MAX_CALLS for n in args.levels):
        parser.error(f"--calls: each level between 1 and {MAX_CALLS} (test phones)")
    if args.talk_s <= 0:
        parser.error("--talk-s must be positive")
    if not 20 <= args.chunk_ms <= 5000:
        parser.error("--chunk-ms must be 20..5000")
    return args


def check_services(bootstrap: str) -> None:
    check_broker(bootstrap)
    if asterisk_process() is None:
        raise SystemExit("no Asterisk running; start it: docker/asterisk/asterisk.sh start")


def cleanup_broker(bootstrap: str, run_prefix: str, groups: list[str]) -> None:
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
                    if "GROUP_ID_NOT_FOUND" not in str(exc):
                        print(f"note: consumer group not deleted: {exc}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - cleanup must not hide the results
        print(f"warning: cleanup of {run_prefix}* failed: {exc}", file=sys.stderr)


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = (
        sys.orig_argv if argv is None else [sys.executable, "-m", "bench.asterisk_calls", *argv]
    )
    print("command:", shlex.join(command), flush=True)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    check_services(args.bootstrap)
    run_prefix = f"bench-{uuid.uuid4().hex[:8]}."
    scratch = Path(tempfile.mkdtemp(prefix="callguard-asterisk-bench-"))
    write_departments(scratch / "departments.toml", max(args.levels))
    print(
        f"levels {args.levels}, talk {args.talk_s:g} s, chunk {args.chunk_ms} ms, "
        f"topics {run_prefix}*, departments {FIRST_LINE + 1}..{FIRST_LINE + max(args.levels)} "
        f"(one staff phone each, no notice)",
        flush=True,
    )
    results: list[LevelResult] = []
    groups: list[str] = []
    try:
        for n in args.levels:
            started = time.monotonic()
            r = run_level(n, args, run_prefix, scratch, groups)
            results.append(r)
            print(
                f"  {n:2d} calls: bridged {r.bridged}/{n}, legs ok {r.legs_ok}/{r.legs_total}, "
                f"missing {r.missing}, lost {r.lost}, connector CPU "
                f"{fmt(r.connector_cpu_pct, '.1f')} %, level took "
                f"{time.monotonic() - started:.0f} s",
                flush=True,
            )
        print_table(args, results)
        return 0 if all(r.bridged == r.calls for r in results) else 1
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        if results:
            print_table(args, results)
        return 1
    except KeyboardInterrupt:
        print("interrupted: phones hung up, connector stopped, topics deleted", file=sys.stderr)
        return 130
    finally:
        cleanup_broker(args.bootstrap, run_prefix, groups)
        if args.keep_logs:
            print(f"logs kept in {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
