"""One phone-driver process for ``bench.asterisk_calls``: up to 2 citizen/staff phone pairs.

pjsua2 allows one Endpoint, 8 phones and 4 simultaneous calls per process
(``tests/support/phones.py``).  A call through the PBX is two calls for pjsua when both
phones live in one process (the citizen's outgoing one and the staff phone's incoming one;
a 5th is refused with 486 Busy), so one driver carries 2 PBX calls and the benchmark runs
one driver per 2 calls.

    python -m bench._phone_driver --pairs caller01:staff01:1101,caller02:staff02:1102 \\
        --rtp-port-base 40000 --wav a.wav --wav b.wav

Protocol.  stdout carries one JSON object per line (``{"ev": ..., "t": wall time}``);
stdin takes ``go`` (place every call at once) and ``quit`` (hang up everything and exit).
SIGTERM / SIGINT count as ``quit``.

* ``ready``        every phone registered
* ``dialed``       a caller sent its INVITE (``line``)
* ``confirmed``    the PBX answered the caller (the connector answers at once)
* ``answered``     the staff phone rang and was answered (200 OK acknowledged)
* ``bye``          a phone saw its call end (``leg`` caller|staff, ``status``, ``t`` = the
                   first pass of the event loop that saw DISCONNECTED: ~10 ms resolution)
* ``error``        something failed (``msg``); the driver carries on where it can
* ``done``         every call ended, phones unregistered; the process exits next

Each caller loops its WAV into the call from the moment the PBX answers it; staff phones
send silence (pjsua keeps sending RTP: no VAD).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# imported by name, not statically: mypy would otherwise check tests/support/phones.py, which
# the project's mypy configuration leaves out (tests/ is excluded)
phones = importlib.import_module("tests.support.phones")
MAX_CALLS: int = phones.MAX_CALLS
MAX_PAIRS = MAX_CALLS // 2  # each pair holds two pjsua calls: caller out, staff in
PhoneError: type[Exception] = phones.PhoneError
PhoneSystem: Any = phones.PhoneSystem

_out_lock = threading.Lock()


def emit(ev: str, **fields: Any) -> None:
    line = json.dumps({"ev": ev, "t": time.time(), **fields})
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


@dataclass
class Pair:
    caller_name: str
    staff_name: str
    line: str
    wav: Path
    caller: Any = None  # tests.support.phones.Phone
    staff: Any = None
    out: Any = None  # the citizen's call (tests.support.phones.Call)
    incoming: Any = None  # the staff phone's call
    playing: bool = False
    caller_bye: bool = False
    staff_bye: bool = False
    failed: bool = False

    def ended(self) -> bool:
        """Both phones saw the end (a staff phone that never rang has nothing to end)."""
        caller_done = self.out is None or self.caller_bye
        staff_done = self.incoming is None or self.staff_bye
        return caller_done and staff_done


class Control:
    """stdin commands and signals, read by a daemon thread / signal handler."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.quit = threading.Event()

    def read_stdin(self) -> None:
        for raw in sys.stdin:
            word = raw.strip()
            if word == "go":
                self.go.set()
            elif word == "quit":
                self.quit.set()
        self.quit.set()  # parent gone: stop

    def on_signal(self, _signum: int, _frame: object) -> None:
        self.quit.set()


def parse_pairs(text: str, wavs: list[Path]) -> list[Pair]:
    pairs = []
    for i, item in enumerate(p for p in text.split(",") if p):
        caller, staff, line = item.split(":")
        pairs.append(Pair(caller, staff, line, wavs[i % len(wavs)]))
    return pairs


def step(pair: Pair) -> None:
    """Advance one pair: answer the staff phone, start the caller's audio, note BYEs."""
    assert pair.caller is not None and pair.staff is not None
    if pair.incoming is None and pair.staff.incoming:
        pair.incoming = pair.staff.incoming.popleft()
        try:
            pair.incoming.answer(200, timeout=10)  # pumps until the ACK arrives
            emit("answered", line=pair.line, phone=pair.staff_name)
        except PhoneError as exc:
            pair.failed = True
            emit("error", line=pair.line, msg=f"staff answer: {exc}")
    out = pair.out
    if out is not None and not pair.playing and out.confirmed:
        pair.playing = True
        try:
            out.play_wav(pair.wav, loop=True)
            emit("confirmed", line=pair.line, phone=pair.caller_name)
        except PhoneError as exc:
            emit("error", line=pair.line, msg=f"caller audio: {exc}")
    now = time.time()
    if out is not None and not pair.caller_bye and out.disconnected:
        pair.caller_bye = True
        emit("bye", line=pair.line, leg="caller", status=out.last_status, t=now)
        if pair.incoming is None:
            pair.failed = True
    inc = pair.incoming
    if inc is not None and not pair.staff_bye and inc.disconnected:
        pair.staff_bye = True
        emit("bye", line=pair.line, leg="staff", status=inc.last_status, t=now)


def run(args: argparse.Namespace) -> int:
    wavs = [Path(w) for w in args.wav]
    pairs = parse_pairs(args.pairs, wavs)
    if not 1 <= len(pairs) <= MAX_PAIRS:
        emit("error", msg=f"1..{MAX_PAIRS} pairs per driver, got {len(pairs)}")
        return 2
    control = Control()
    signal.signal(signal.SIGTERM, control.on_signal)
    signal.signal(signal.SIGINT, control.on_signal)
    threading.Thread(target=control.read_stdin, daemon=True).start()
    with PhoneSystem(
        rtp_port_base=args.rtp_port_base, rtp_port_range=args.rtp_port_range
    ) as system:
        try:
            for pair in pairs:
                pair.caller = system.register(pair.caller_name)
                pair.staff = system.register(pair.staff_name)
            emit("ready", phones=len(system.phones))
            while not control.go.is_set():
                if control.quit.is_set():
                    return 0
                system.pump(0.05)
            for pair in pairs:
                assert pair.caller is not None
                try:
                    pair.out = pair.caller.call(pair.line)
                    emit("dialed", line=pair.line, phone=pair.caller_name)
                except PhoneError as exc:
                    pair.failed = True
                    emit("error", line=pair.line, msg=str(exc))
            deadline = time.monotonic() + args.max_s
            while not control.quit.is_set():
                system.pump(0)  # one pass: handles whatever arrived, waits ≤ 10 ms
                for pair in pairs:
                    step(pair)
                if all(p.ended() for p in pairs):
                    break
                if time.monotonic() > deadline:
                    emit("error", msg=f"calls still up after {args.max_s:.0f} s; hanging up")
                    break
        except PhoneError as exc:
            emit("error", msg=str(exc))
        finally:
            # whatever is still up: the phones hang up themselves (BYE / CANCEL)
            for pair in pairs:
                for call in (pair.out, pair.incoming):
                    if call is not None and not call.disconnected:
                        with contextlib.suppress(PhoneError):
                            call.hangup(timeout=5)
    emit("done")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._phone_driver", description=__doc__)
    parser.add_argument(
        "--pairs",
        required=True,
        help="caller:staff:line,... (at most 2), e.g. caller01:staff01:1101",
    )
    parser.add_argument("--wav", action="append", required=True, help="WAV a caller loops")
    parser.add_argument("--rtp-port-base", type=int, default=40000)
    parser.add_argument("--rtp-port-range", type=int, default=200)
    parser.add_argument(
        "--max-s", type=float, default=300.0, help="hang up everything after this long"
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
