"""Timer accuracy of the timeout rule with many open calls: command time − deadline.

SIMULATED: ``--calls`` (10,000) answered calls are opened at once, in ``--partitions``
partitions, through the pure rule (``pipelines.core.timeout.step``).  Their answers are spread
over ``--spread-s`` seconds in the past so that their notice deadlines (``notice_after_s =
spread``) and then their limit deadlines (``limit_s = 2 · spread``) fall due in real time over
the next ``2 · spread`` seconds; ``--key-share`` of the calls get the staff key as soon as they
are armed and never see the announcement's result, so their hangup safety timer
(``hangup_safety_s = spread / 2``) fires too.

A clock ticks every ``--tick-ms`` per partition, as ``callguard.ticks`` does for the stream.  On a
tick the partition's due calls are handled exactly as ``pipelines/timeout/agents.py`` does:

- ``index`` (what the stream runs): ``DeadlineIndex.pop_due`` → state from the table (a dict of
  ``to_dict`` values, as the faust table stores them) → ``due`` → ``expire`` → state back →
  new deadline into the index.  A tick costs O(due calls · log n).
- ``scan`` (the alternative, for comparison): every open call of the partition is read and
  ``due`` is run on it, the pattern the call tracker uses for its idle expiry.

For every timer-driven decision the lateness is ``wall time when the decision was produced −
the deadline it served``; the program prints its p50/p99/max per mode, the tick cost
(p50/p99/max of one partition's tick), the number of decisions, and the process's peak RSS
(``ru_maxrss``) plus the peak of Python allocations during the run (``tracemalloc``, slows the
run a little; ``--no-tracemalloc`` turns it off).  No Kafka is involved: this measures the rule,
the index and the tick loop, not the broker round trip (which adds one produce/commit, ~1 s with
exactly-once commits every second).

Run: ``python -m bench.timeout_timers --help``.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.core import timeout as core
from pipelines.core.deadlines import DeadlineIndex

IDLE_LIMIT_MS = 4 * 3600 * 1000
VIRTUAL_T0 = 10**12  # calls are opened on a virtual clock, then shifted to the wall clock


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Result:
    mode: str
    calls: int
    partitions: int
    tick_ms: int
    decisions: dict[str, int] = field(default_factory=dict)
    lateness_ms: dict[str, float] = field(default_factory=dict)
    tick_cost_ms: dict[str, float] = field(default_factory=dict)
    ticks: int = 0
    peak_rss_mib: float = 0.0
    traced_peak_mib: float | None = None
    seconds: float = 0.0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": pct(values, 50),
        "p99": pct(values, 99),
        "max": max(values) if values else float("nan"),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


def run(args: argparse.Namespace, mode: str) -> Result:
    rng = random.Random(args.seed)
    spread_ms = int(args.spread_s * 1000)
    policy = core.Policy(
        notice_after_s=args.spread_s,
        limit_s=2 * args.spread_s,
        hangup_safety_s=args.spread_s / 2,
    )
    book = core.PolicyBook(default=policy)
    if args.tracemalloc:
        tracemalloc.start()
    table: dict[str, dict[str, Any]] = {}  # call id → {"partition", "state"} (the faust table)
    partition_of: dict[str, int] = {}
    index = DeadlineIndex()
    keyed: set[str] = set()
    # Open the calls on a virtual clock (answers spread over `spread` before VIRTUAL_T0), then
    # shift them onto the wall clock so that no deadline has passed when the ticking starts.
    opened: list[tuple[str, int, core.TimeoutState]] = []
    build_began = time.monotonic()
    for n in range(args.calls):
        call_id = f"bench-{n}"
        answered = VIRTUAL_T0 - rng.randrange(spread_ms)
        state: core.TimeoutState | None = None
        for i, (type_, ts) in enumerate(
            (("call_started", answered - 5000), ("answered", answered))
        ):
            obs = core.CallSeen(f"{call_id}-{i}", call_id, type_, ts, "traffic", "010", "1100")
            state, _ = core.step(state, obs, VIRTUAL_T0, book)
        assert state is not None
        opened.append((call_id, n % args.partitions, state))
        if rng.random() < args.key_share:
            keyed.add(call_id)
    # the shifting below costs less than the building above: with that much margin no
    # deadline is already past when the first tick comes
    t0 = now_ms() + 200 + int((time.monotonic() - build_began) * 1000)
    shift = t0 - VIRTUAL_T0
    for call_id, partition, state in opened:
        state = replace(
            state,
            answered_ts_ms=state.answered_ts_ms + shift,
            started_ms=state.started_ms + shift,
            updated_ms=state.updated_ms + shift,
        )
        table[call_id] = {"partition": partition, "state": state.to_dict()}
        partition_of[call_id] = partition
        index.set(partition, call_id, core.wake_at(state, IDLE_LIMIT_MS))
    del opened

    lateness: list[float] = []
    tick_costs: list[float] = []
    counts: dict[str, int] = {}
    key_n = 0

    def handle(partition: int, call_id: str, tick_now: int) -> None:
        nonlocal key_n
        data = table.get(call_id)
        if data is None:
            return
        state = core.TimeoutState.from_dict(data["state"])
        deadline = core.next_deadline(state)
        new, out = core.due(state, tick_now)
        if call_id in keyed and any(isinstance(d, core.Armed) for d in out):
            # staff press *9 right after the limit (an event, not a timer): the announcement's
            # result never comes, so the hangup safety timer must fire
            for digit in "*9":
                key_n += 1
                obs = core.CallSeen(
                    f"k{key_n}", call_id, "dtmf", tick_now, "traffic", leg="staff", digit=digit
                )
                stepped, more = core.step(new, obs, tick_now, book)
                assert stepped is not None
                new, out = stepped, out + more
        if out:
            produced = time.time() * 1000  # "command time": when it would be sent
            for decision in out:
                counts[decision.kind] = counts.get(decision.kind, 0) + 1
                if deadline is not None and not isinstance(decision, core.Terminate):
                    lateness.append(produced - deadline)
        kept = core.expire(new, tick_now, IDLE_LIMIT_MS)
        if kept is None:
            table.pop(call_id, None)
            partition_of.pop(call_id, None)
            index.discard(call_id)
        else:
            if kept is not state:
                table[call_id] = {"partition": partition, "state": kept.to_dict()}
            if mode == "index":
                index.set(partition, call_id, core.wake_at(kept, IDLE_LIMIT_MS))

    end = t0 + 2 * spread_ms + int(policy.hangup_safety_s * 1000) + 2 * args.tick_ms
    next_tick = time.monotonic()
    ticks = 0
    started = time.monotonic()
    while now_ms() <= end:
        next_tick += args.tick_ms / 1000
        for partition in range(args.partitions):
            tick_now = now_ms()
            began = time.perf_counter()
            if mode == "index":
                for call_id in index.pop_due(partition, tick_now):
                    handle(partition, call_id, tick_now)
            else:
                for call_id in [k for k, p in partition_of.items() if p == partition]:
                    handle(partition, call_id, tick_now)
            tick_costs.append((time.perf_counter() - began) * 1000)
            ticks += 1
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    result = Result(
        mode=mode,
        calls=args.calls,
        partitions=args.partitions,
        tick_ms=args.tick_ms,
        decisions=dict(sorted(counts.items())),
        lateness_ms=summary(lateness),
        tick_cost_ms=summary(tick_costs),
        ticks=ticks,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        seconds=time.monotonic() - started,
    )
    if args.tracemalloc:
        result.traced_peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    expected = {
        "notice": args.calls,
        "armed": args.calls,
        "terminate": len(keyed),
        "hangup": len(keyed),
    }
    missing = {k: v - counts.get(k, 0) for k, v in expected.items() if counts.get(k, 0) != v}
    if missing:
        print(f"  !! {mode}: decision counts off by {missing}", file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.timeout_timers",
        description=(
            "Timer accuracy of the timeout rule (pure core + deadline index, no Kafka): "
            "distribution of (command time - deadline) with many SIMULATED open calls."
        ),
    )
    parser.add_argument("--calls", type=int, default=10_000, help="open calls (default 10000)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions (default 4)")
    parser.add_argument(
        "--tick-ms", type=int, default=100, help="tick interval per partition (default 100 ms)"
    )
    parser.add_argument(
        "--spread-s",
        type=float,
        default=10.0,
        help="deadlines of each kind spread over this many seconds (default 10)",
    )
    parser.add_argument(
        "--key-share",
        type=float,
        default=0.3,
        help="share of calls whose staff press *9 at the limit (default 0.3)",
    )
    parser.add_argument(
        "--mode",
        choices=("index", "scan", "both"),
        default="both",
        help="index: the stream's deadline heap; scan: every call on every tick (default both)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-tracemalloc", dest="tracemalloc", action="store_false")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    print(
        "SIMULATED open calls: python -m bench.timeout_timers "
        + " ".join(argv if argv is not None else sys.argv[1:])
    )
    modes = ("index", "scan") if args.mode == "both" else (args.mode,)
    results = []
    for mode in modes:
        print(f"  running {mode}: {args.calls} calls, ~{3 * args.spread_s:.0f} s …", flush=True)
        results.append(run(args, mode))
    header = (
        f"{'mode':6} {'calls':>6} {'decisions':>9} {'late p50':>9} {'late p99':>9} "
        f"{'late max':>9} {'tick p50':>9} {'tick p99':>9} {'tick max':>9} {'RSS MiB':>8} "
        f"{'py peak':>8}"
    )
    print(header)
    for r in results:
        traced = f"{r.traced_peak_mib:8.1f}" if r.traced_peak_mib is not None else f"{'-':>8}"
        print(
            f"{r.mode:6} {r.calls:6d} {sum(r.decisions.values()):9d} "
            f"{r.lateness_ms['p50']:7.1f}ms {r.lateness_ms['p99']:7.1f}ms "
            f"{r.lateness_ms['max']:7.1f}ms {r.tick_cost_ms['p50']:7.2f}ms "
            f"{r.tick_cost_ms['p99']:7.2f}ms {r.tick_cost_ms['max']:7.2f}ms "
            f"{r.peak_rss_mib:8.1f} {traced}"
        )
    print(
        "late = wall time the decision was produced - its deadline (tick interval "
        f"{args.tick_ms} ms bounds the quantisation); tick = one partition's tick; "
        "decisions: " + ", ".join(f"{r.mode} {r.decisions}" for r in results)
    )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
