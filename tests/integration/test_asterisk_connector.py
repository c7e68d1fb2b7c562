"""The Asterisk connector against the real PBX, real SIP phones and a real Kafka broker.

One inbound call, caller01 → department line 1100 (traffic) → staff01, proves the issue's
list: call events and the CDR reach Kafka; the caller leg's audio chunks match what the
caller's phone sent (cross-correlation); a staff DTMF key arrives as an event; an
announcement command is heard on the caller's phone; a duplicate command is applied once;
a hangup command ends the call on both phones.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
import uuid
import wave
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from connectors.kafka.topics import TopicCatalog
from schemas.codec import decode, encode
from schemas.records import AudioChunk, CallEvent, Cdr, CommandResult, PbxCommand
from tests.integration.conftest import REPO, read_topic, wait_until
from tests.support.phones import PhoneSystem, phone_system

SAMPLE = REPO / "connectors" / "simulator" / "samples" / "104_003_0294.wav"
WARNING = REPO / "docker" / "asterisk" / "sounds" / "abuse-warning.wav"

pytestmark = pytest.mark.skipif(
    os.environ.get("CALLGUARD_ASTERISK_RUNNING") != "1",
    reason="needs the PBX: scripts/test.sh integration starts it",
)


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == 8000 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def best_match(haystack: np.ndarray, needle: np.ndarray) -> float:
    """Pearson correlation of ``needle`` with the best-aligned stretch of ``haystack``."""
    n = len(haystack) + len(needle)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(haystack, size) * np.conj(np.fft.rfft(needle, size)), size)
    lag = int(np.argmax(corr[: len(haystack)]))
    window = haystack[lag : lag + len(needle)]
    if len(window) < len(needle) // 2:
        return 0.0
    a = window - window.mean()
    b = needle[: len(window)] - needle[: len(window)].mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def segment_match(haystack: np.ndarray, needle: np.ndarray, segment: int = 4000) -> float:
    """Median best-match of the needle's voiced 0.5 s segments: robust to the small time warps
    a phone's jitter buffer adds, where one long alignment is not."""
    scores = [
        best_match(haystack, part)
        for start in range(0, len(needle) - segment + 1, segment)
        if np.abs(part := needle[start : start + segment]).mean() > 300  # skip silence
    ]
    return float(np.median(scores)) if scores else 0.0


@pytest.fixture
def phones() -> PhoneSystem:
    return phone_system()


def command(call_id: str, action: str, **args: str) -> PbxCommand:
    return PbxCommand(
        command_id=f"cmd-{uuid.uuid4().hex[:12]}",
        call_id=call_id,
        action=action,
        issued_ms=int(time.time() * 1000),
        issued_by="test",
        reason="integration test",
        args=args,
    )


def test_inbound_call_events_audio_dtmf_and_commands(
    bootstrap: str,
    catalog: TopicCatalog,
    connector: Path,
    phones: PhoneSystem,
    producer: Producer,
    tmp_path: Path,
) -> None:
    caller = phones.register("caller01")
    staff = phones.register("staff01")
    out = caller.call("1100")
    out.wait_confirmed(15)  # the connector answers to play the consent notice
    heard = out.record_to(tmp_path / "caller-hears.wav")
    ringing = staff.wait_incoming(30)  # rings only after the notice has finished
    ringing.answer()
    ringing.wait_confirmed(10)
    phones.pump(1.0)

    def events() -> list[CallEvent]:
        return [decode(CallEvent, m.value()) for m in read_topic(bootstrap, catalog.call_events)]

    bridged = wait_until(lambda: [e for e in events() if e.type == "bridged"], 20)
    call_id = bridged[0].call_id

    out.play_wav(SAMPLE)
    phones.pump(8.0)
    ringing.send_dtmf("*9")
    phones.pump(1.5)

    # announcement command, then the same command again: applied once
    play = command(call_id, "play", media="abuse-warning", target="caller", wait="true")
    for _ in range(2):
        producer.produce(catalog.commands, key=call_id.encode(), value=encode(play))
    producer.flush(10)

    def results() -> list[CommandResult]:
        return [
            decode(CommandResult, m.value()) for m in read_topic(bootstrap, catalog.command_results)
        ]

    def wait_results(n: int) -> list[CommandResult]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = results()
            if len(found) >= n:
                return found
            phones.pump(0.5)
        raise AssertionError(f"fewer than {n} command results: {results()}")

    statuses = sorted(r.status for r in wait_results(2) if r.command_id == play.command_id)
    assert statuses == ["applied", "duplicate"], statuses
    phones.pump(1.0)
    out.stop_recording()

    # hangup command: both phones see the call end
    hangup = command(call_id, "hangup", cause="normal")
    producer.produce(catalog.commands, key=call_id.encode(), value=encode(hangup))
    producer.flush(10)
    out.wait_disconnected(15)
    ringing.wait_disconnected(15)
    assert any(r.command_id == hangup.command_id and r.status == "applied" for r in wait_results(3))

    # --- the call's events, in order
    mine = wait_until(
        lambda: (
            (found := [e for e in events() if e.call_id == call_id])
            and found[-1].type == "hangup"
            and found
        ),
        20,
    )
    kinds = [e.type for e in mine]
    for earlier, later in [
        ("call_started", "notice_started"),
        ("notice_started", "notice_finished"),
        ("notice_finished", "ringing"),
        ("ringing", "answered"),
        ("answered", "bridged"),
        ("bridged", "dtmf"),
        ("dtmf", "hangup"),
    ]:
        assert kinds.index(earlier) < kinds.index(later), kinds
    started = mine[0]
    assert started.type == "call_started" and started.department == "traffic"
    assert started.direction == "inbound" and started.callee == "1100"
    assert started.origin == "asterisk"
    digits = [e.digit for e in mine if e.type == "dtmf" and e.leg == "staff"]
    assert "".join(digits) == "*9"

    # --- the CDR carries our call id
    cdrs = wait_until(
        lambda: [
            c
            for c in (decode(Cdr, m.value()) for m in read_topic(bootstrap, catalog.cdr))
            if c.call_id == call_id
        ],
        30,
    )
    assert cdrs[-1].disposition == "ANSWERED" and cdrs[-1].department == "traffic"
    assert cdrs[-1].billsec_s > 5

    # --- the caller leg's audio is what the caller's phone sent
    chunks = sorted(
        (
            c
            for c in (decode(AudioChunk, m.value()) for m in read_topic(bootstrap, catalog.audio))
            if c.call_id == call_id and c.leg == "caller"
        ),
        key=lambda c: c.seq,
    )
    assert chunks and chunks[-1].final
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    pcm = np.frombuffer(
        b"".join(base64.b64decode(c.payload_b64) for c in chunks), dtype="<i2"
    ).astype(np.float64)
    sent = best_match(pcm, read_wav(SAMPLE))
    assert sent > 0.8, f"caller leg vs the WAV the caller played: r={sent:.3f}"
    assert any(
        c.leg == "staff"
        for c in (decode(AudioChunk, m.value()) for m in read_topic(bootstrap, catalog.audio))
    )

    # --- the announcement was heard on the caller's phone
    heard_r = segment_match(read_wav(heard), read_wav(WARNING))
    assert heard_r > 0.8, f"caller's recording vs the announcement: r={heard_r:.3f}"


def test_originate_presents_the_office_number_to_the_citizen(
    bootstrap: str,
    catalog: TopicCatalog,
    connector: Path,
    phones: PhoneSystem,
    producer: Producer,
) -> None:
    staff = phones.register("staff02")
    citizen = phones.register("caller02")
    call_id = f"call-{uuid.uuid4().hex}"
    originate = command(
        call_id,
        "originate",
        endpoint="PJSIP/caller02",
        staff_endpoint="staff02",
        department="traffic",
    )
    producer.produce(catalog.commands, key=call_id.encode(), value=encode(originate))
    producer.flush(10)
    staff_leg = staff.wait_incoming(30)  # click-to-call rings the staff phone first
    staff_leg.answer()
    citizen_leg = citizen.wait_incoming(30)
    # SIP carries the number as digits: 02-120-1100 is presented as 021201100
    assert citizen_leg.remote_number == "021201100", citizen_leg.headers
    assert citizen_leg.remote_name == "교통과"
    citizen_leg.answer()
    citizen_leg.wait_confirmed(10)

    def call_kinds() -> list[str]:
        return [
            e.type
            for e in (
                decode(CallEvent, m.value()) for m in read_topic(bootstrap, catalog.call_events)
            )
            if e.call_id == call_id
        ]

    # the department's consent notice plays to the citizen first, then the legs are bridged
    deadline = time.monotonic() + 30
    while "bridged" not in call_kinds() and time.monotonic() < deadline:
        phones.pump(0.5)
    citizen_leg.hangup()
    staff_leg.wait_disconnected(15)
    kinds = wait_until(
        lambda: (
            (
                found := [
                    e.type
                    for e in (
                        decode(CallEvent, m.value())
                        for m in read_topic(bootstrap, catalog.call_events)
                    )
                    if e.call_id == call_id
                ]
            )
            and found[-1] == "hangup"
            and found
        ),
        20,
    )
    assert kinds[0] == "call_started" and "bridged" in kinds
    started = next(
        e
        for e in (decode(CallEvent, m.value()) for m in read_topic(bootstrap, catalog.call_events))
        if e.call_id == call_id
    )
    assert started.direction == "outbound" and started.presented_caller_id == "02-120-1100"


def test_a_command_sent_while_the_pbx_is_down_is_applied_after_it_restarts(
    bootstrap: str,
    catalog: TopicCatalog,
    connector: Path,
    producer: Producer,
) -> None:
    asterisk = REPO / "docker" / "asterisk" / "asterisk.sh"
    subprocess.run([str(asterisk), "stop"], check=True, timeout=60)
    try:
        # a hangup for a call the connector does not know: once the PBX answers again the
        # command must be processed (result "failed: call not active"), not dropped
        lost = command(f"call-{uuid.uuid4().hex}", "hangup")
        producer.produce(catalog.commands, key=lost.call_id.encode(), value=encode(lost))
        producer.flush(10)
        time.sleep(3)
    finally:
        subprocess.run([str(asterisk), "start"], check=True, timeout=120)
    result = wait_until(
        lambda: [
            r
            for r in (
                decode(CommandResult, m.value())
                for m in read_topic(bootstrap, catalog.command_results)
            )
            if r.command_id == lost.command_id
        ],
        60,
    )
    assert len(result) == 1
    assert result[0].status in {"applied", "failed"}, result[0]
