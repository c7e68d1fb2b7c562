"""Abuse-detection stream figures: detection latency and concurrent live calls.

Everything real except the calls: a Kafka broker, the worker as its own process
(``python -m pipelines worker`` with ``CALLGUARD_STREAMS=abuse``: segmenter, faster-whisper,
guard, classifier, responder), fresh topics (``bench-<uuid8>.s<k>.*``, deleted at the end).
The bench plays the PBX: call events (``call_started`` with a department, ``answered``,
``bridged``) and the caller leg's audio chunks (8 kHz PCM, 200 ms), each chunk produced when
it ends, in real time, as a live feed delivers it.

SIMULATED ABUSE.  No recording of real abusive speech exists here.  The callers say the shipped
Zeroth-Korean read-speech clips (``connectors/simulator/samples``), over simulator line noise,
and the worker gets a BENCH-ONLY office term list (``abuse_local_terms_file``, as
``pipelines/config/demo_terms.toml``) naming words the clips say: 동백꽃 → threat (clip
104_003_0193), 커피 → insult (clip 104_003_0294); clip 104_003_0352 stays clean.  A detection
therefore needs Whisper to hear that word; the text model's own scores play no part.

1. **Latency** (``--calls``, staggered ``--stagger-s`` apart): each call says one "abusive" clip.
   *Utterance end* = the end of the clip's speech (its last 20 ms frame above -45 dBFS) on the
   call's audio timeline (chunk ``start_ms`` = wall clock).  Measured to the Kafka message
   timestamp of the transcript on ``calls.transcripts`` and of the warning ``PbxCommand``
   (``play abuse-warning``) on ``pbx.commands``, and to the moments the bench could read each
   (``read_committed``: after the worker's transaction commit; the responder reads the
   transcript the same way, so "transcript readable" is when the responder can see it).
2. **Concurrency** (``--concurrency``, ``--duration-s``): N calls at once, each caller saying the
   three clips back to back (0.4 s apart) for the duration.  Per clip: lag = transcript message
   timestamp - utterance end.  A level *keeps up* unless a clip is still untranscribed
   ``--drain-s`` after the audio ended, the lag trend exceeds ``SLOPE_LIMIT`` (s per s), or the
   last quarter's median lag is above twice the first quarter's.  Worker CPU% (100 = one core)
   over the audio window, the worker's peak RSS sampled during the level, worker CPU seconds
   per second of speech transcribed (the cost figure least bent by other load), host CPU% and
   the 1-minute load average.

A worker that fell behind is replaced (fresh topics, fresh process) before the next level, so
no level inherits a backlog.  Each worker is warmed up first (one clean utterance: the models
load lazily on the first one), so start-up is not in any figure.

Run: ``.venv/bin/python -m bench.abuse_detection --help``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import psutil
from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    Producer,
    TopicPartition,
)

from bench.faust_vs_raw import Worker, check_broker, cleanup_broker, free_port
from connectors.kafka.topics import TopicCatalog, create_topics
from connectors.simulator.audio import SAMPLE_RATE, Clip, load_clips, to_int16
from connectors.simulator.producer import producer_config
from connectors.simulator.scenario import DEPARTMENTS, NOISE_RMS, TURN_GAP_MS
from pipelines.app import catalog_for
from pipelines.core import abuse as core
from pipelines.core.utterances import frame_levels
from pipelines.demo import settings_env
from pipelines.settings import Settings
from schemas.codec import decode, encode
from schemas.records import AudioChunk, CallEvent, PbxCommand, Transcript

REPO = Path(__file__).resolve().parents[1]
CHUNK_MS = 200
FRAME_MS = 20
SPEECH_DBFS = -45.0  # a frame louder than this is speech (the segmenter's absolute floor)
ORIGIN = "simulator"
#: BENCH ONLY: words the Zeroth clips say, listed as an office's own abuse terms
BENCH_TERMS: dict[str, tuple[str, ...]] = {"threat": ("동백꽃",), "insult": ("커피",)}
ABUSIVE_CLIPS = ("104_003_0193", "104_003_0294")  # threat (동백꽃), insult (커피)
CLEAN_CLIP = "104_003_0352"
LEAD_MS, TRAIL_MS = 1000, 1500  # line noise before / after a latency call's clip
EVENTS_LEAD_MS = 2000  # call_started this long before the audio; answered just before it
SLOPE_LIMIT = 0.03  # lag growing faster than this (s per s of audio) = falling behind
STOP_GRACE_S = 15.0

#: one scheduled input message: (due, epoch ms), topic, key, value
Out = tuple[int, str, bytes, bytes]


class BenchError(RuntimeError):
    pass


def now_ms() -> int:
    return int(time.time() * 1000)


# --- audio and calls ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipInfo:
    clip: Clip
    speech_start_ms: int  # first frame above SPEECH_DBFS
    speech_end_ms: int  # end of the last frame above SPEECH_DBFS
    category: str  # what the bench term list makes of it ("clean": nothing)


def clip_infos(clips: list[Clip]) -> dict[str, ClipInfo]:
    category = {ABUSIVE_CLIPS[0]: "threat", ABUSIVE_CLIPS[1]: "insult"}
    out: dict[str, ClipInfo] = {}
    for clip in clips:
        levels = frame_levels(clip.samples.astype("<i2").tobytes(), clip.sample_rate, FRAME_MS)
        loud = [i for i, level in enumerate(levels) if level > SPEECH_DBFS]
        if not loud:
            raise BenchError(f"clip {clip.name}: no frame above {SPEECH_DBFS} dBFS")
        out[clip.name] = ClipInfo(
            clip, loud[0] * FRAME_MS, (loud[-1] + 1) * FRAME_MS, category.get(clip.name, "clean")
        )
    missing = {*ABUSIVE_CLIPS, CLEAN_CLIP} - out.keys()
    if missing:
        raise BenchError(f"shipped clips missing: {sorted(missing)}")
    return out


@dataclass(frozen=True)
class Speech:
    """One clip said on a call; times are epoch ms on the call's audio timeline."""

    call_id: str
    clip: str
    category: str
    start_ms: int
    end_ms: int  # the utterance end the figures count from


@dataclass
class CallPlan:
    call_id: str
    department: str
    audio_start_ms: int
    audio_end_ms: int
    speech: list[Speech]
    messages: list[Out]
    hangup: bytes


def render(
    parts: list[ClipInfo], *, lead_ms: int, gap_ms: int, trail_ms: int, seed: int
) -> tuple[np.ndarray, list[tuple[ClipInfo, int]]]:
    """Line noise with the clips laid in turn; returns int16 PCM and each clip's offset (ms)."""
    rate = SAMPLE_RATE
    pos = lead_ms * rate // 1000
    placed: list[tuple[ClipInfo, int]] = []
    for info in parts:
        placed.append((info, pos))
        pos += len(info.clip.samples) + gap_ms * rate // 1000
    total = pos - gap_ms * rate // 1000 + trail_ms * rate // 1000
    audio = np.random.default_rng(seed).normal(0.0, NOISE_RMS, total)
    for info, at in placed:
        audio[at : at + len(info.clip.samples)] += info.clip.samples
    return to_int16(audio), [(info, at * 1000 // rate) for info, at in placed]


def plan_call(
    catalog: TopicCatalog,
    call_id: str,
    department: str,
    audio_start_ms: int,
    pcm: np.ndarray,
    placed: list[tuple[ClipInfo, int]],
) -> CallPlan:
    key = call_id.encode()
    n = 0

    def event(kind: str, ts: int, leg: str = "", cause: str = "") -> CallEvent:
        nonlocal n
        n += 1
        return CallEvent(
            event_id=f"{call_id}-e{n:02d}",
            call_id=call_id,
            type=kind,
            ts_ms=ts,
            direction="inbound",
            department=department,
            caller=f"010-0000-{zlib.crc32(key) % 10_000:04d}",
            callee="2101",
            presented_caller_id="",
            attrs={"simulated": "true", "bench": "abuse_detection"}
            if kind == "call_started"
            else {},
            leg=leg,
            hangup_cause=cause,
            origin=ORIGIN,
        )

    started = audio_start_ms - EVENTS_LEAD_MS
    answered = audio_start_ms - 50
    messages: list[Out] = [
        (started, catalog.call_events, key, encode(event("call_started", started))),
        (answered, catalog.call_events, key, encode(event("answered", answered, leg="staff"))),
        (answered, catalog.call_events, key, encode(event("bridged", answered))),
    ]
    step = SAMPLE_RATE * CHUNK_MS // 1000
    count = math.ceil(len(pcm) / step)
    for seq in range(count):
        part = pcm[seq * step : (seq + 1) * step]
        chunk = AudioChunk(
            call_id=call_id,
            leg="caller",
            seq=seq,
            start_ms=audio_start_ms + seq * CHUNK_MS,
            duration_ms=len(part) * 1000 // SAMPLE_RATE,
            sample_rate=SAMPLE_RATE,
            encoding="pcm_s16le",
            channels=1,
            payload_b64=base64.b64encode(part.astype("<i2").tobytes()).decode("ascii"),
            final=seq == count - 1,
            origin=ORIGIN,
        )
        messages.append((chunk.start_ms + chunk.duration_ms, catalog.audio, key, encode(chunk)))
    audio_end = messages[-1][0]
    speech = [
        Speech(
            call_id,
            info.clip.name,
            info.category,
            audio_start_ms + at + info.speech_start_ms,
            audio_start_ms + at + info.speech_end_ms,
        )
        for info, at in placed
    ]
    hangup = encode(event("hangup", audio_end + 100, leg="caller", cause="caller_hangup"))
    return CallPlan(call_id, department, audio_start_ms, audio_end, speech, messages, hangup)


# --- processes ---------------------------------------------------------------------------------


class WorkerProc(Worker):
    """``python -m pipelines worker`` with the stage's settings (reaping and RSS sampling from
    :class:`bench.faust_vs_raw.Worker`); CPU time reads NaN once the worker is gone."""

    stop_poll_s = 0.1
    cpu_when_gone = math.nan

    def __init__(self, settings: Settings, log_path: Path) -> None:
        argv = [sys.executable, "-m", "pipelines", "worker"]
        super().__init__(argv, log_path, env=settings_env(settings))
        self.started = time.monotonic()  # start-up is timed on the monotonic clock here


# --- Kafka -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    ts_ms: int  # the message's Kafka timestamp (set when the worker produced it)
    read_ms: int  # when the bench read it (read_committed: after the worker's commit)


class Watcher:
    """Reads transcripts, PBX commands and dead letters of one stage from the beginning."""

    def __init__(self, bootstrap: str, catalog: TopicCatalog) -> None:
        self.catalog = catalog
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-abuse-watch-{uuid.uuid4().hex[:8]}",  # assign only, no commit
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 20,
            }
        )
        topics = [catalog.transcripts, catalog.commands, catalog.dead_letters]
        self.consumer.assign(
            [
                TopicPartition(t, p, OFFSET_BEGINNING)
                for t in topics
                for p in range(catalog.partitions)
            ]
        )
        self.transcripts: dict[str, list[tuple[Transcript, Seen]]] = {}
        self.commands: dict[str, list[tuple[PbxCommand, Seen]]] = {}
        self.dead_letters: list[str] = []

    def poll(self, timeout_s: float) -> None:
        for msg in self.consumer.consume(num_messages=500, timeout=timeout_s):
            if msg.error() is not None:
                continue
            read = now_ms()
            kind, ts = msg.timestamp()
            seen = Seen(read if kind == TIMESTAMP_NOT_AVAILABLE else int(ts), read)
            topic = msg.topic()
            if topic == self.catalog.transcripts:
                t = decode(Transcript, msg.value())
                self.transcripts.setdefault(t.call_id, []).append((t, seen))
            elif topic == self.catalog.commands:
                c = decode(PbxCommand, msg.value())
                self.commands.setdefault(c.call_id, []).append((c, seen))
            else:
                self.dead_letters.append(str(json.loads(msg.value() or b"{}").get("reason", "?")))

    def overlapping(self, sp: Speech) -> list[tuple[Transcript, Seen]]:
        return [
            (t, s)
            for t, s in self.transcripts.get(sp.call_id, [])
            if t.start_ms < sp.end_ms and t.end_ms > sp.start_ms
        ]

    def transcribed(self, sp: Speech) -> bool:
        # the segmenter's end = last loud frame + 200 ms tail; allow for its own frame choice
        return any(t.end_ms >= sp.end_ms - 300 for t, _ in self.overlapping(sp))

    def warning(self, call_id: str) -> tuple[PbxCommand, Seen] | None:
        found = [
            (c, s)
            for c, s in self.commands.get(call_id, [])
            if c.issued_by == core.STREAM and c.args.get("media") == core.WARNING_MEDIA
        ]
        return min(found, key=lambda item: item[1].ts_ms) if found else None

    def close(self) -> None:
        self.consumer.close()


class Feeder(threading.Thread):
    """Produces scheduled messages at their due wall-clock time (real-time playback)."""

    def __init__(self, producer: Producer, messages: list[Out]) -> None:
        super().__init__(daemon=True)
        self.producer = producer
        self.messages = sorted(messages, key=lambda m: m[0])
        self.late_ms: list[int] = []  # produce time - due, per message
        self.failures: list[str] = []
        self.error: BaseException | None = None
        self.halt = threading.Event()

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.failures.append(str(err))

    def run(self) -> None:
        try:
            for due, topic, key, value in self.messages:
                wait = due / 1000 - time.time()
                if wait > 0:
                    self.producer.poll(0)
                    if self.halt.wait(wait):
                        return
                while True:
                    try:
                        self.producer.produce(topic, value, key, on_delivery=self._on_delivery)
                        break
                    except BufferError:
                        self.producer.poll(0.05)
                self.late_ms.append(now_ms() - due)
                self.producer.poll(0)
            if self.producer.flush(30):
                self.failures.append("messages undelivered after flush")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc


def host_busy_s() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


# --- stages (one worker on its own topics) and phases ------------------------------------------


@dataclass
class Stage:
    index: int
    prefix: str
    catalog: TopicCatalog
    worker: WorkerProc
    watcher: Watcher
    startup_s: float = math.nan
    dirty: bool = False  # behind or incomplete: the next phase needs a fresh stage


@dataclass
class PhaseRun:
    audio_s: float = 0.0
    worker_cpu_pct: float = math.nan
    host_cpu_pct: float = math.nan
    peak_rss_mib: float = math.nan
    load_1m: float = math.nan
    late_p99_ms: float = math.nan
    late_max_ms: float = math.nan
    complete: bool = False
    cutoff_ms: int = 0  # when the bench stopped waiting
    worker_cpu_total_s: float = math.nan  # first audio → cutoff (audio window + drain)


class Bench:
    def __init__(self, args: argparse.Namespace, scratch: Path) -> None:
        self.args = args
        self.scratch = scratch
        self.run_prefix = f"bench-{uuid.uuid4().hex[:8]}."
        self.clips = clip_infos(load_clips())
        self.terms_file = scratch / "bench-terms.toml"
        lines = [
            f"{cat} = {json.dumps(list(ts), ensure_ascii=False)}" for cat, ts in BENCH_TERMS.items()
        ]
        self.terms_file.write_text(
            "# BENCH ONLY: words the shipped Zeroth clips say, marked as abuse\n[terms]\n"
            + "\n".join(lines)
            + "\n",
            encoding="utf-8",
        )
        self.producer = Producer(producer_config(args.bootstrap))
        self.stages: list[Stage] = []
        self.groups: list[str] = []
        self._calls = 0

    def settings(self, prefix: str, index: int) -> Settings:
        extra: dict[str, Any] = {}
        if self.args.beam_size:
            extra["asr_beam_size"] = self.args.beam_size
        data_dir = self.scratch / f"s{index}"
        data_dir.mkdir(exist_ok=True)
        return Settings(
            kafka_bootstrap=self.args.bootstrap,
            topic_prefix=prefix,
            partitions=self.args.partitions,
            processing_guarantee=self.args.guarantee,
            data_dir=data_dir,
            worker_web_port=free_port(),
            streams=["abuse"],
            abuse_local_terms_file=self.terms_file,
            log_level="info",
            **extra,
        )

    def call_id(self, tag: str) -> str:
        self._calls += 1
        return f"bench-{tag}-{self._calls}"

    # -- stages

    def start_stage(self) -> Stage:
        index = len(self.stages)
        prefix = f"{self.run_prefix}s{index}."
        settings = self.settings(prefix, index)
        catalog = catalog_for(settings)
        for report in create_topics(self.args.bootstrap, catalog.specs):
            if report.status == "mismatch":
                raise BenchError(f"topic {report.name}: {report.detail}")
        self.groups.append(catalog.faust_app_id)
        watcher = Watcher(self.args.bootstrap, catalog)
        worker = WorkerProc(settings, self.scratch / f"worker-s{index}.log")
        stage = Stage(index, prefix, catalog, worker, watcher)
        self.stages.append(stage)
        if index == 0:
            s = settings
            print(
                f"worker: python -m pipelines worker, CALLGUARD_STREAMS=abuse, ASR {s.asr_backend} "
                f"{s.asr_model_path or 'whisper-base (packaged)'} {s.asr_device}/"
                f"{s.asr_compute_type} beam {s.asr_beam_size} "
                f"threads {s.asr_cpu_threads or 'default'}, legs {','.join(s.asr_legs)}, "
                f"{s.partitions} partitions, {s.processing_guarantee}",
                flush=True,
            )
        # warm-up: one clean utterance; the models load on the first one
        info = self.clips[CLEAN_CLIP]
        pcm, placed = render([info], lead_ms=500, gap_ms=0, trail_ms=1000, seed=index)
        start = now_ms() + EVENTS_LEAD_MS + 500
        call = plan_call(catalog, self.call_id(f"s{index}-warmup"), "traffic", start, pcm, placed)
        sp = call.speech[0]
        self.run_phase(
            stage,
            [call],
            drain_s=self.args.startup_timeout,
            done=lambda: stage.watcher.transcribed(sp),
        )
        if not stage.watcher.transcribed(sp):
            raise BenchError(
                f"worker s{index}: no transcript of the warm-up utterance within "
                f"{self.args.startup_timeout:.0f} s\n{worker.log_tail()}"
            )
        stage.startup_s = time.monotonic() - worker.started
        lag = max(s.ts_ms for _, s in stage.watcher.overlapping(sp)) - sp.end_ms
        print(
            f"  stage s{index}: worker up and warm after {stage.startup_s:.1f} s "
            f"(warm-up utterance lag {lag / 1000:.1f} s, includes loading the models)",
            flush=True,
        )
        return stage

    def stage_for_next_phase(self) -> Stage:
        if self.stages and not self.stages[-1].dirty:
            return self.stages[-1]
        if self.stages:
            old = self.stages[-1]
            print(f"  stage s{old.index} fell behind: fresh worker and topics next", flush=True)
            self.stop_stage(old)
        return self.start_stage()

    def stop_stage(self, stage: Stage) -> None:
        stage.watcher.close()
        stage.worker.stop()

    # -- one phase: play calls in real time, wait for the outputs

    def run_phase(
        self, stage: Stage, calls: list[CallPlan], *, drain_s: float, done: Callable[[], bool]
    ) -> PhaseRun:
        worker, watcher = stage.worker, stage.watcher
        feeder = Feeder(self.producer, [m for c in calls for m in c.messages])
        first_audio_ms = min(c.audio_start_ms for c in calls)
        result = PhaseRun()
        cpu0 = host0 = wall0 = math.nan
        audio_end: float | None = None
        next_sample = 0.0
        feeder.start()
        try:
            while True:
                watcher.poll(0.1)
                now = time.time()
                if math.isnan(wall0) and now * 1000 >= first_audio_ms:
                    cpu0, host0, wall0 = worker.cpu_s(), host_busy_s(), now
                    worker.sampled_rss_peak = 0
                if now >= next_sample:
                    worker.sample_rss()
                    next_sample = now + 0.5
                if not worker.alive():
                    raise BenchError(f"worker s{stage.index} exited\n{worker.log_tail()}")
                if watcher.dead_letters:
                    raise BenchError(
                        f"the worker dead-lettered {len(watcher.dead_letters)} messages, "
                        f"first reason: {watcher.dead_letters[0]}"
                    )
                if feeder.error is not None:
                    raise BenchError(f"feeding the calls failed: {feeder.error!r}")
                if audio_end is None and not feeder.is_alive():
                    audio_end = now
                    if math.isnan(wall0):
                        wall0, cpu0, host0 = now, worker.cpu_s(), host_busy_s()
                    wall = max(now - wall0, 1e-3)
                    result.audio_s = wall
                    result.worker_cpu_pct = 100 * (worker.cpu_s() - cpu0) / wall
                    result.host_cpu_pct = 100 * (host_busy_s() - host0) / wall
                    result.load_1m = os.getloadavg()[0]
                if audio_end is not None:
                    if done():
                        result.complete = True
                        break
                    if now > audio_end + drain_s:
                        break
        finally:
            feeder.halt.set()
            feeder.join(5)
        if feeder.failures:
            raise BenchError(f"{len(feeder.failures)} input messages failed: {feeder.failures[0]}")
        result.cutoff_ms = now_ms()
        result.worker_cpu_total_s = worker.cpu_s() - cpu0
        worker.sample_rss()
        result.peak_rss_mib = worker.sampled_rss_peak / 2**20
        if feeder.late_ms:
            result.late_p99_ms = float(np.percentile(feeder.late_ms, 99))
            result.late_max_ms = float(max(feeder.late_ms))
        for call in calls:  # the calls end (the responder forgets them)
            self.producer.produce(stage.catalog.call_events, call.hangup, call.call_id.encode())
        self.producer.flush(10)
        return result

    # -- 1. detection latency

    def latency(self) -> dict[str, Any]:
        args = self.args
        stage = self.stage_for_next_phase()
        t0 = now_ms() + EVENTS_LEAD_MS + 1000
        calls: list[CallPlan] = []
        for i in range(args.calls):
            info = self.clips[ABUSIVE_CLIPS[i % len(ABUSIVE_CLIPS)]]
            pcm, placed = render(
                [info], lead_ms=LEAD_MS, gap_ms=0, trail_ms=TRAIL_MS, seed=args.seed + i
            )
            start = t0 + int(i * args.stagger_s * 1000)
            dept = DEPARTMENTS[i % len(DEPARTMENTS)]
            calls.append(plan_call(stage.catalog, self.call_id("lat"), dept, start, pcm, placed))
        span = (calls[-1].audio_end_ms - t0) / 1000
        print(
            f"latency: {args.calls} calls, one 'abusive' clip each, {args.stagger_s:g} s apart "
            f"(~{span:.0f} s of audio)",
            flush=True,
        )
        watcher = stage.watcher
        run = self.run_phase(
            stage,
            calls,
            drain_s=args.drain_s,
            done=lambda: all(watcher.warning(c.call_id) for c in calls),
        )
        rows: list[dict[str, Any]] = []
        for call in calls:
            sp = call.speech[0]
            heard = watcher.overlapping(sp)
            hit = next((h for h in heard if h[0].category == sp.category), None)
            hit = hit or next((h for h in heard if h[0].category != "clean"), None)
            hit = hit or (heard[-1] if heard else None)
            warn = watcher.warning(call.call_id)
            row: dict[str, Any] = {
                "call_id": call.call_id,
                "department": call.department,
                "clip": sp.clip,
                "expected": sp.category,
                "heard": f"{hit[0].category} {hit[0].score:.2f}" if hit else "-",
                "segmenter_end_minus_speech_end_ms": hit[0].end_ms - sp.end_ms if hit else None,
                "to_transcript_ms": hit[1].ts_ms - sp.end_ms if hit else None,
                "to_transcript_visible_ms": hit[1].read_ms - sp.end_ms if hit else None,
                "transcript_to_command_ms": (
                    warn[1].ts_ms - hit[1].ts_ms if hit and warn else None
                ),
                "to_command_ms": warn[1].ts_ms - sp.end_ms if warn else None,
                "to_command_visible_ms": warn[1].read_ms - sp.end_ms if warn else None,
                "warned": warn is not None,
            }
            rows.append(row)
            print(
                f"  {call.call_id:<16} {sp.clip} ({sp.category:<6}) heard {row['heard']:<12} "
                f"end→transcript {fmt_s(row['to_transcript_ms'])} s "
                f"(visible {fmt_s(row['to_transcript_visible_ms'])} s)  "
                f"→command {fmt_s(row['to_command_ms'])} s  "
                f"(visible {fmt_s(row['to_command_visible_ms'])} s)"
                + ("" if warn else "  NO WARNING"),
                flush=True,
            )
        stage.dirty = not run.complete
        stats = {
            key: summary([r[key] for r in rows if r[key] is not None])
            for key in (
                "to_command_ms",
                "to_transcript_ms",
                "to_transcript_visible_ms",
                "transcript_to_command_ms",
                "to_command_visible_ms",
            )
        }
        return {
            "calls": len(rows),
            "warned": sum(r["warned"] for r in rows),
            "stagger_s": args.stagger_s,
            "stats_ms": stats,
            "phase": asdict(run),
            "stage": stage.index,
            "rows": rows,
        }

    # -- 2. concurrent live calls

    def level(self, n: int) -> dict[str, Any]:
        args = self.args
        stage = self.stage_for_next_phase()
        order = [*ABUSIVE_CLIPS, CLEAN_CLIP]
        duration_ms = int(args.duration_s * 1000)
        t0 = now_ms() + EVENTS_LEAD_MS + 1000
        calls: list[CallPlan] = []
        for i in range(n):
            parts: list[ClipInfo] = []
            used = 500 + 1000  # lead + trail
            while True:
                info = self.clips[order[(i + len(parts)) % len(order)]]
                need = info.clip.duration_ms + (TURN_GAP_MS if parts else 0)
                if used + need > duration_ms and parts:
                    break
                parts.append(info)
                used += need
            # line noise after the last whole clip, so every call streams the full duration
            trail_ms = 1000 + max(0, duration_ms - used)
            pcm, placed = render(
                parts,
                lead_ms=500,
                gap_ms=TURN_GAP_MS,
                trail_ms=trail_ms,
                seed=args.seed + 100 * n + i,
            )
            start = t0 + i * 700  # calls start 0.7 s apart: live calls are not in lockstep
            dept = DEPARTMENTS[i % len(DEPARTMENTS)]
            calls.append(plan_call(stage.catalog, self.call_id(f"c{n}"), dept, start, pcm, placed))
        speech = sorted((sp for c in calls for sp in c.speech), key=lambda sp: sp.end_ms)
        print(
            f"concurrency N={n}: {n} calls, {len(speech)} clips back to back, "
            f"~{args.duration_s:g} s each (stage s{stage.index})",
            flush=True,
        )
        watcher = stage.watcher
        run = self.run_phase(
            stage, calls, drain_s=args.drain_s, done=lambda: all(map(watcher.transcribed, speech))
        )
        lags: list[float] = []  # seconds, by utterance end; pending ones at their lower bound
        pending = 0
        for sp in speech:
            if watcher.transcribed(sp):
                lags.append((max(s.ts_ms for _, s in watcher.overlapping(sp)) - sp.end_ms) / 1000)
            else:
                pending += 1
                lags.append((run.cutoff_ms - sp.end_ms) / 1000)
        x = np.array([(sp.end_ms - speech[0].end_ms) / 1000 for sp in speech])
        y = np.array(lags)
        slope = float(np.polyfit(x, y, 1)[0]) if len(y) >= 3 and np.ptp(x) > 0 else math.nan
        k = max(1, len(y) // 4)
        q1, q4 = float(np.median(y[:k])), float(np.median(y[-k:]))
        why: list[str] = []
        if pending:
            why.append(f"{pending} clips untranscribed {args.drain_s:g} s after the audio ended")
        if slope > SLOPE_LIMIT:
            why.append(f"lag grows {slope:+.3f} s per s")
        if q4 > 2 * q1:
            why.append(f"last-quarter lag {q4:.1f} s > 2 × first-quarter {q1:.1f} s")
        stage.dirty = bool(why) or not run.complete
        speech_s = sum(sp.end_ms - sp.start_ms for sp in speech if watcher.transcribed(sp)) / 1000
        result: dict[str, Any] = {
            "n": n,
            "stage": stage.index,
            "clips": len(speech),
            "transcribed": len(speech) - pending,
            "pending": pending,
            "lag_s": summary(list(y)),
            "lag_censored": pending > 0,
            "slope_s_per_s": slope,
            "first_quarter_lag_s": q1,
            "last_quarter_lag_s": q4,
            "keeps_up": not why,
            "speech_s_transcribed": speech_s,
            # worker CPU per second of speech transcribed (audio window + drain): the cost
            # figure least affected by other load on the machine
            "cpu_s_per_speech_s": run.worker_cpu_total_s / speech_s if speech_s else math.nan,
            "behind_because": why,
            "phase": asdict(run),
            "lags": [
                {"call_id": sp.call_id, "clip": sp.clip, "end_ms": sp.end_ms, "lag_s": lag}
                for sp, lag in zip(speech, lags, strict=True)
            ],
        }
        p = result["lag_s"]
        mark = "≥" if pending else ""
        print(
            f"  N={n}: {len(speech) - pending}/{len(speech)} transcribed, "
            f"lag p50 {mark}{p['p50']:.1f}"
            f" s p95 {mark}{p['p95']:.1f} s, slope {slope:+.3f} s/s, q1→q4 {q1:.1f}→{q4:.1f} s, "
            f"worker CPU {run.worker_cpu_pct:.0f} %, peak RSS {run.peak_rss_mib:.0f} MiB, "
            f"host CPU {run.host_cpu_pct:.0f} %, load {run.load_1m:.1f}: "
            + ("keeps up" if not why else "BEHIND (" + "; ".join(why) + ")"),
            flush=True,
        )
        return result

    def close(self) -> list[dict[str, Any]]:
        out = []
        for stage in self.stages:
            with contextlib.suppress(Exception):
                stage.watcher.close()
            stage.worker.stop()
            out.append(
                {
                    "stage": stage.index,
                    "startup_s": stage.startup_s,
                    "lifetime_peak_rss_mib": stage.worker.maxrss_kib / 1024,
                    "exit_code": stage.worker.exit_code,
                }
            )
        self.producer.flush(10)
        return out


# --- report ------------------------------------------------------------------------------------


def summary(values: list[Any]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50": math.nan, "p95": math.nan, "max": math.nan}
    arr = np.array(values, dtype=float)
    return {
        "n": len(values),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "max": float(arr.max()),
    }


def fmt_s(ms: float | None) -> str:
    return "  -  " if ms is None or math.isnan(ms) else f"{ms / 1000:5.2f}"


def print_tables(latency: dict[str, Any] | None, levels: list[dict[str, Any]]) -> None:
    print()
    print(
        "SIMULATED abuse: Zeroth-Korean read speech (no abuse) + a BENCH-ONLY office term list "
        "(동백꽃 → threat, 커피 → insult)"
    )
    if latency is not None:
        s = latency["stats_ms"]
        print(
            f"detection latency, {latency['calls']} calls ({latency['warned']} warned), "
            f"from the end of the abusive utterance (p50 / p95 / max, seconds):"
        )
        for key, label in (
            ("to_transcript_ms", "→ transcript on calls.transcripts (message ts)"),
            ("to_transcript_visible_ms", "→ transcript readable (read_committed)"),
            ("transcript_to_command_ms", "transcript → warning command (message ts)"),
            ("to_command_ms", "→ warning command on pbx.commands (message ts)"),
            ("to_command_visible_ms", "→ warning command readable (read_committed)"),
        ):
            v = s[key]
            print(f"  {label:<50} {fmt_s(v['p50'])} / {fmt_s(v['p95'])} / {fmt_s(v['max'])}")
    if levels:
        print("concurrent live calls (lag = transcript message ts − utterance end):")
        header = (
            f"{'N':>3} {'clips':>9} {'lag p50':>8} {'lag p95':>8} {'slope s/s':>10} "
            f"{'q1→q4 lag s':>12} {'keeps up':>9} {'worker CPU%':>12} {'peak RSS MiB':>13} "
            f"{'CPU s/speech s':>15} {'host CPU%':>10} {'load':>5}"
        )
        print(header)
        print("-" * len(header))
        for r in levels:
            ph, lag = r["phase"], r["lag_s"]
            mark = "≥" if r["lag_censored"] else ""
            quarters = f"{r['first_quarter_lag_s']:.1f}→{r['last_quarter_lag_s']:.1f}"
            print(
                f"{r['n']:>3} {str(r['transcribed']) + '/' + str(r['clips']):>9} "
                f"{mark + format(lag['p50'], '.1f'):>8} {mark + format(lag['p95'], '.1f'):>8} "
                f"{r['slope_s_per_s']:>+10.3f} "
                f"{quarters:>12} "
                f"{'yes' if r['keeps_up'] else 'NO':>9} {ph['worker_cpu_pct']:>12.0f} "
                f"{ph['peak_rss_mib']:>13.0f} {r['cpu_s_per_speech_s']:>15.2f} "
                f"{ph['host_cpu_pct']:>10.0f} {ph['load_1m']:>5.1f}"
            )
        kept = [r["n"] for r in levels if r["keeps_up"]]
        tried = ", ".join(str(r["n"]) for r in levels)
        print(f"largest N that keeps up: {max(kept) if kept else 'none'} (of {tried})")


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.abuse_detection",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Abuse-detection stream on a real Kafka broker and a real worker process
(python -m pipelines worker, CALLGUARD_STREAMS=abuse):
  1. detection latency from the end of an abusive utterance to the warning command on
     pbx.commands, split at the transcript on calls.transcripts (--calls, --stagger-s);
  2. transcript lag, worker CPU and memory with N concurrent live calls, and the largest N
     that keeps up (--concurrency, --duration-s).""",
        epilog="""\
SIMULATED abuse: callers say the shipped Zeroth-Korean clips (real read speech, no abuse) in
real time, and the worker gets a BENCH-ONLY office term list naming words they say
(동백꽃 → threat, 커피 → insult), as pipelines/config/demo_terms.toml does for the demo.

Utterance end = end of the clip's speech (last 20 ms frame above -45 dBFS) on the call's audio
timeline; chunks carry wall-clock start_ms and are produced when they end. Latencies use the
Kafka message timestamps of the worker's outputs; 'readable' is when this bench could read
the transcript / warning with read_committed (after the worker's exactly-once commit).

A concurrency level keeps up unless a clip is still untranscribed --drain-s after the audio
ended, the lag trend is above 0.03 s per s, or the last quarter's median lag exceeds twice the
first quarter's. A worker that fell behind is replaced (fresh topics) before the next level.
Every worker is warmed up with one clean utterance first (models load lazily).

Defaults take about 6-8 minutes on 2 cores. Needs a broker: docker/kafka/kafka.sh start.""",
    )
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("CALLGUARD_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
        help="Kafka bootstrap servers (default: $CALLGUARD_KAFKA_BOOTSTRAP or 127.0.0.1:19092)",
    )
    parser.add_argument(
        "--calls",
        type=int,
        default=10,
        help="latency calls (0 = skip the latency part; default 10)",
    )
    parser.add_argument(
        "--stagger-s", type=float, default=10.0, help="seconds between latency calls (default 10)"
    )
    parser.add_argument(
        "--concurrency",
        default="1,2,4",
        help="comma-separated numbers of simultaneous calls ('' = skip; default 1,2,4)",
    )
    parser.add_argument(
        "--duration-s", type=float, default=60.0, help="audio per call per level (default 60)"
    )
    parser.add_argument(
        "--drain-s",
        type=float,
        default=30.0,
        help="after the audio ends, wait at most this long for outstanding outputs (default 30)",
    )
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic")
    parser.add_argument(
        "--guarantee", choices=("exactly_once", "at_least_once"), default="exactly_once"
    )
    parser.add_argument(
        "--beam-size",
        type=int,
        default=0,
        help="ASR beam size for the worker (default: the worker's own setting, "
        "CALLGUARD_ASR_BEAM_SIZE or 5)",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write results")
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker logs")
    parser.add_argument("--seed", type=int, default=7, help="line-noise seed")
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=240.0,
        help="seconds for a worker to start and transcribe its warm-up utterance",
    )
    args = parser.parse_args(argv)
    try:
        args.levels = [int(n) for n in args.concurrency.split(",") if n.strip()]
    except ValueError:
        parser.error("--concurrency takes comma-separated integers, e.g. 1,2,4")
    if any(n < 1 for n in args.levels):
        parser.error("--concurrency levels must be at least 1")
    if args.calls < 0 or args.partitions < 1 or args.duration_s < 10 or args.stagger_s <= 0:
        parser.error("need --calls >= 0, --partitions >= 1, --duration-s >= 10, --stagger-s > 0")
    if not args.calls and not args.levels:
        parser.error("nothing to measure: --calls 0 and no --concurrency levels")
    return args


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = (
        sys.orig_argv if argv is None else [sys.executable, "-m", "bench.abuse_detection", *argv]
    )
    print("command:", shlex.join(command))
    signal.signal(signal.SIGTERM, _raise_interrupt)
    check_broker(args.bootstrap)
    if args.calls and args.calls < 10:
        print(f"note: p95 over {args.calls} calls is little more than the maximum", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="callguard-bench-abuse-"))
    bench = Bench(args, scratch)
    load0 = os.getloadavg()
    print(
        f"SIMULATED abuse (Zeroth clips + BENCH-ONLY terms 동백꽃 → threat, 커피 → insult); "
        f"topics {bench.run_prefix}*; load average {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f} "
        f"on {os.cpu_count()} CPUs",
        flush=True,
    )
    latency: dict[str, Any] | None = None
    levels: list[dict[str, Any]] = []
    stages: list[dict[str, Any]] = []
    t_start = time.monotonic()
    try:
        if args.calls:
            latency = bench.latency()
        for n in args.levels:
            levels.append(bench.level(n))
        stages = bench.close()
        print_tables(latency, levels)
        print(
            f"took {(time.monotonic() - t_start) / 60:.1f} min; workers started: {len(stages)}; "
            f"load average at the end {os.getloadavg()[0]:.1f}"
        )
        if args.json is not None:
            payload = {
                "command": shlex.join(command),
                "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "topic_prefix": bench.run_prefix,
                "simulated": "Zeroth-Korean clips, bench-only terms "
                + json.dumps(BENCH_TERMS, ensure_ascii=False),
                "load_average_start": load0,
                "latency": latency,
                "concurrency": levels,
                "stages": stages,
            }
            args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
            print(f"wrote {args.json}")
        return 0
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: stopping workers and deleting topics", file=sys.stderr)
        return 130
    finally:
        bench.close()
        cleanup_broker(args.bootstrap, bench.run_prefix, bench.groups)
        if args.keep_logs:
            print(f"worker logs kept in {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
