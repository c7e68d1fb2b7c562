"""The recording-consent and recording stream on real parts (issue 5).

With the real Asterisk PBX, the connector, SIP phones, Kafka, the faust worker and the sink:

1. A citizen calls traffic (full recording) and plays a WAV; staff answers and plays another.
   The caller's phone heard the consent notice, and heard it before any staff audio; the
   stored, encrypted caller-leg recording decrypts to what the caller said (cross-correlation)
   and is as long as the CDR's talk time; ClickHouse has the row; an audited access works
   and lands in ``recording_audit``.
2. Welfare is made a full-recording department here, but departments.toml plays it no consent
   notice: the call is a ``consent_missing`` violation.
3. The worker is SIGKILLed mid-call and restarted: every caller chunk the connector put on
   Kafka is in the recording.

Without the PBX (Kafka and the worker only):

4. The worker dies mid-call and its spool files are lost (as on another machine): the restarted
   worker rebuilds them from the audio topic and the recording is byte-exact.

Figures (correlation, length error, consent timing) are printed: run with ``-s`` to see them.
"""

from __future__ import annotations

import base64
import shutil
import time
import uuid
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from confluent_kafka import Producer

from connectors.kafka.topics import TopicCatalog
from connectors.recordings.crypto import open_sealed
from connectors.recordings.store import LocalRecordingStore
from connectors.recordings.wav import read_wav as wav_pcm
from pipelines.recording.keys import load_keyring
from pipelines.settings import Settings
from schemas.codec import decode, encode
from schemas.records import AudioChunk, Decision, Recording
from tests.integration.conftest import (
    REPO,
    SinkHandle,
    WorkerProcess,
    events_of,
    place_call,
    read_topic,
    wait_until,
)
from tests.integration.test_asterisk_connector import best_match, read_wav, segment_match
from tests.samples import call_event

CALLER_SAYS = REPO / "connectors" / "simulator" / "samples" / "104_003_0294.wav"
STAFF_SAYS = REPO / "connectors" / "simulator" / "samples" / "104_003_0193.wav"
CONSENT = REPO / "docker" / "asterisk" / "sounds" / "consent-notice.wav"
LENGTH_TOLERANCE_S = 1.0

POLICY = """
[defaults]
mode = "off"
consent_notice = "consent-notice"
retention_days = 90
start_tolerance_s = 2
missing_after_s = 30

[departments.traffic]
mode = "full"

[departments.welfare]
mode = "full"          # but departments.toml plays welfare no consent notice
"""


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    path = tmp_path / "recording.toml"
    path.write_text(POLICY)
    return settings.model_copy(update={"recording_policy_file": path})


def best_lag(haystack: np.ndarray, needle: np.ndarray) -> tuple[int, float]:
    """(sample offset, Pearson r) of the best alignment of ``needle`` in ``haystack``."""
    n = len(haystack) + len(needle)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(haystack, size) * np.conj(np.fft.rfft(needle, size)), size)
    lag = int(np.argmax(corr[: len(haystack)]))
    window = haystack[lag : lag + len(needle)]
    a = window - window.mean()
    b = needle[: len(window)] - needle[: len(window)].mean()
    return lag, float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def segment_start(haystack: np.ndarray, needle: np.ndarray, segment: int = 4000) -> float:
    """Where ``needle`` starts in ``haystack`` (samples), from its voiced 0.5 s segments (median
    of their aligned starts: robust to a jitter buffer's small time warps)."""
    starts = []
    for offset in range(0, len(needle) - segment + 1, segment):
        part = needle[offset : offset + segment]
        if np.abs(part).mean() > 300:
            lag, r = best_lag(haystack, part)
            if r > 0.8:
                starts.append(lag - offset)
    assert starts, "the needle is not in the haystack"
    return float(np.median(starts))


def decrypt(settings: Settings, call_id: str, leg: str) -> tuple[dict[str, Any], np.ndarray]:
    sealed = LocalRecordingStore(settings.recordings_path).get(call_id, leg)
    header, wav = open_sealed(load_keyring(settings), sealed)
    pcm, rate = wav_pcm(wav)
    assert rate == 8000
    return dict(header.meta), np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def decisions_of(bootstrap: str, catalog: TopicCatalog, call_id: str) -> list[Decision]:
    found = [decode(Decision, m.value()) for m in read_topic(bootstrap, catalog.decisions)]
    return [d for d in found if d.call_id == call_id]


def rows_of(bootstrap: str, catalog: TopicCatalog, call_id: str) -> list[Recording]:
    found = [decode(Recording, m.value()) for m in read_topic(bootstrap, catalog.recordings)]
    return [r for r in found if r.call_id == call_id]


@pytest.mark.usefixtures("pbx_free", "connector")
def test_recorded_caller_leg_matches_what_the_caller_said_and_the_cdr(
    bootstrap: str,
    catalog: TopicCatalog,
    settings: Settings,
    sink: SinkHandle,
    worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    from tests.support.phones import phone_system

    phones = phone_system()
    heard_path = tmp_path / "caller-hears.wav"
    out, staff, call_id = place_call(
        phones, bootstrap, catalog, "caller03", "staff01", "1100", heard=heard_path
    )
    out.play_wav(CALLER_SAYS)
    phones.pump(1.0)
    staff.play_wav(STAFF_SAYS)
    phones.pump(9.0)
    out.hangup()
    staff.wait_disconnected(15)

    rows = wait_until(
        lambda: (
            (
                found := sink.query(
                    "SELECT leg, duration_ms, chunk_count, missing_chunks, gap_count, "
                    "gap_duration_ms, cdr_seen, cdr_billsec_s, shortfall, sha256, mode, "
                    "department, key_id FROM recordings FINAL "
                    f"WHERE call_id = '{call_id}' ORDER BY leg"
                ).rows
            )
            and len(found) == 2
            and all(r[6] for r in found)
            and found
        ),
        120,
    )
    by_leg = {r[0]: r for r in rows}
    caller = by_leg["caller"]
    assert caller[10] == "full" and caller[11] == "traffic"
    meta, recorded = decrypt(settings, call_id, "caller")
    assert meta["sha256"] == caller[9]
    said = read_wav(CALLER_SAYS)
    lag, r = best_lag(recorded, said)
    length_error_s = caller[1] / 1000 - caller[7]
    print(
        f"\nFIGURES caller leg: r={r:.3f} at {lag / 8000:.2f} s; recorded {caller[1] / 1000:.2f} s"
        f" vs CDR billsec {caller[7]:.2f} s (error {length_error_s:+.2f} s); chunks "
        f"{caller[2]}, missing {caller[3]}, gaps {caller[4]} ({caller[5]} ms)"
    )
    assert r > 0.8, f"recorded caller leg vs the WAV the caller played: r={r:.3f}"
    assert abs(length_error_s) <= LENGTH_TOLERANCE_S
    assert not caller[8]  # no shortfall
    staff_meta, staff_recorded = decrypt(settings, call_id, "staff")
    staff_r = best_match(staff_recorded, read_wav(STAFF_SAYS))
    print(f"FIGURES staff leg: r={staff_r:.3f}; recorded {staff_meta['duration_ms'] / 1000:.2f} s")
    assert staff_r > 0.8

    # the caller heard the consent notice, before the call connected and before any staff audio
    heard = read_wav(heard_path)
    notice = read_wav(CONSENT)
    notice_at = segment_start(heard, notice)
    staff_at = segment_start(heard, read_wav(STAFF_SAYS))
    staff_heard_r = segment_match(heard, read_wav(STAFF_SAYS))
    consent_match = segment_match(heard, notice)
    print(
        f"FIGURES caller heard (0.5 s segments): consent notice r={consent_match:.3f} ending at "
        f"{(notice_at + len(notice)) / 8000:.2f} s; staff audio r={staff_heard_r:.3f} from "
        f"{staff_at / 8000:.2f} s"
    )
    assert consent_match > 0.8 and staff_heard_r > 0.8
    assert notice_at + len(notice) <= staff_at, (
        "staff audio reached the caller before the notice ended"
    )
    mine = events_of(bootstrap, catalog, call_id)
    kinds = [e.type for e in mine]
    assert kinds.index("notice_finished") < kinds.index("bridged")
    consent_kinds = [
        d.kind
        for d in decisions_of(bootstrap, catalog, call_id)
        if d.stream in ("consent", "recording")
    ]
    assert consent_kinds == [], consent_kinds

    # an authorised, audited access through the CLI (audit records via the real Kafka)
    from pipelines.recordings_cli import recordings

    out_file = tmp_path / "fetched.wav"
    result = CliRunner().invoke(
        recordings,
        [
            "get",
            call_id,
            "--role",
            "auditor",
            "--reason",
            "integration test",
            "--user",
            "it-auditor",
            "--out",
            str(out_file),
        ],
        obj={"settings": settings},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    with wave.open(str(out_file)) as w:
        assert w.getnframes() == len(recorded)
    refused = CliRunner().invoke(
        recordings,
        [
            "get",
            call_id,
            "--role",
            "clerk",
            "--reason",
            "curious",
            "--out",
            str(tmp_path / "no.wav"),
        ],
        obj={"settings": settings},
    )
    assert refused.exit_code != 0 and not (tmp_path / "no.wav").exists()
    audit = wait_until(
        lambda: (
            (
                found := sink.query(
                    "SELECT actor, role, result, reason FROM recording_audit FINAL "
                    f"WHERE call_id = '{call_id}' ORDER BY ts_ms"
                ).rows
            )
            and len(found) == 2
            and found
        ),
        60,
    )
    assert [(a[1], a[2]) for a in audit] == [("auditor", "granted"), ("clerk", "refused")]
    assert audit[0][0] == "it-auditor" and audit[0][3] == "integration test"
    assert worker.alive(), worker.log()


@pytest.mark.usefixtures("pbx_free", "connector")
def test_full_recording_department_without_a_notice_is_a_violation(
    bootstrap: str, catalog: TopicCatalog, sink: SinkHandle, worker: WorkerProcess
) -> None:
    from tests.support.phones import phone_system

    phones = phone_system()
    out, staff, call_id = place_call(phones, bootstrap, catalog, "caller05", "staff05", "1300")
    phones.pump(3.0)
    out.hangup()
    staff.wait_disconnected(15)
    rows = wait_until(
        lambda: (
            sink.query(
                "SELECT kind, reason, department, attrs['severity'] FROM decisions FINAL "
                f"WHERE call_id = '{call_id}' AND stream = 'consent'"
            ).rows
        ),
        90,
    )
    assert [(r[0], r[2], r[3]) for r in rows] == [("consent_missing", "welfare", "alert")]
    assert "without the consent notice" in rows[0][1]
    assert "notice_started" not in [e.type for e in events_of(bootstrap, catalog, call_id)]
    assert "ALERT consent consent_missing" in worker.log_path.read_text(errors="replace")


@pytest.mark.usefixtures("pbx_free", "connector")
def test_worker_killed_mid_call_loses_no_committed_chunk(
    bootstrap: str, catalog: TopicCatalog, settings: Settings, worker: WorkerProcess
) -> None:
    from tests.support.phones import phone_system

    phones = phone_system()
    out, staff, call_id = place_call(phones, bootstrap, catalog, "caller01", "staff01", "1100")
    out.play_wav(CALLER_SAYS, loop=True)

    def committed() -> bool:
        return any(
            m.key() and call_id in m.key().decode()
            for m in read_topic(bootstrap, catalog.changelog("recording"))
        )

    deadline = time.monotonic() + 60
    while not committed():
        assert time.monotonic() < deadline, "the worker never committed state for the call"
        phones.pump(0.5)
    worker.kill()  # mid-call: chunks keep flowing to Kafka while no worker runs
    phones.pump(4.0)
    worker.start()
    phones.pump(8.0)
    out.stop_playing()
    out.hangup()
    staff.wait_disconnected(15)

    row = wait_until(
        lambda: [r for r in rows_of(bootstrap, catalog, call_id) if r.leg == "caller"],
        150,
    )[-1]
    on_kafka = sorted(
        {
            c.seq
            for c in (decode(AudioChunk, m.value()) for m in read_topic(bootstrap, catalog.audio))
            if c.call_id == call_id and c.leg == "caller"
        }
    )
    _, recorded = decrypt(settings, call_id, "caller")
    r = best_match(recorded, read_wav(CALLER_SAYS))
    print(
        f"\nFIGURES after SIGKILL: {len(on_kafka)} caller chunks on Kafka, "
        f"{row.chunk_count} in the recording, missing {row.missing_chunks}, gaps {row.gap_count}; "
        f"r={r:.3f}; {row.duration_ms / 1000:.1f} s"
    )
    assert on_kafka == list(range(len(on_kafka))), "the connector itself lost chunks"
    assert row.chunk_count == len(on_kafka) and row.missing_chunks == 0
    assert r > 0.8
    assert worker.alive(), worker.log()


def test_lost_spool_is_rebuilt_from_kafka_after_a_crash(
    bootstrap: str,
    catalog: TopicCatalog,
    settings: Settings,
    worker: WorkerProcess,
    producer: Producer,
) -> None:
    call_id = f"rec-crash-{uuid.uuid4().hex[:10]}"
    with wave.open(str(CALLER_SAYS)) as w:
        pcm = w.readframes(w.getnframes())
    per = 200 * 16  # bytes per 200 ms chunk
    pieces = [pcm[i : i + per] for i in range(0, len(pcm), per)]
    t0 = int(time.time() * 1000)

    def event(n: int, type_: str, at: int, **kw: Any) -> None:
        record = call_event(call_id=call_id, event_id=f"{call_id}-{n}", type_=type_, ts_ms=at, **kw)
        producer.produce(catalog.call_events, key=call_id.encode(), value=encode(record))
        producer.flush(10)

    def audio(seq: int) -> None:
        record = AudioChunk(
            call_id=call_id,
            leg="caller",
            seq=seq,
            start_ms=t0 + 8000 + seq * 200,
            duration_ms=len(pieces[seq]) // 16,
            sample_rate=8000,
            encoding="pcm_s16le",
            channels=1,
            payload_b64=base64.b64encode(pieces[seq]).decode(),
            final=seq == len(pieces) - 1,
            origin="simulator",
        )
        producer.produce(catalog.audio, key=call_id.encode(), value=encode(record))

    event(1, "call_started", t0)
    event(2, "notice_started", t0 + 100, leg="caller", attrs={"notice": "consent-notice"})
    event(3, "notice_finished", t0 + 7000, leg="caller", attrs={"notice": "consent-notice"})
    event(4, "bridged", t0 + 8000)
    half = len(pieces) // 2
    for seq in range(half):
        audio(seq)
    producer.flush(10)
    wait_until(
        lambda: any(
            m.key() and call_id in m.key().decode()
            for m in read_topic(bootstrap, catalog.changelog("recording"))
        ),
        90,
    )
    time.sleep(2)  # let more of the first half commit
    worker.kill()
    spools = list((settings.data_dir / "recording-spool").glob(f"{call_id}.*"))
    assert spools, "the worker spooled nothing"
    shutil.rmtree(settings.data_dir / "recording-spool")  # as if on another machine
    worker.start()
    for seq in range(half, len(pieces)):
        audio(seq)
    producer.flush(10)
    row = wait_until(lambda: rows_of(bootstrap, catalog, call_id), 150)[-1]
    _, recorded = decrypt(settings, call_id, "caller")
    print(
        f"\nFIGURES rebuild: {len(pieces)} chunks sent, {row.chunk_count} recorded, "
        f"gaps {row.gap_count}; byte-exact: {recorded.astype('<i2').tobytes() == pcm}"
    )
    assert (row.chunk_count, row.missing_chunks, row.gap_count) == (len(pieces), 0, 0)
    assert recorded.astype("<i2").tobytes() == pcm  # byte-exact
    assert "rebuilding from the audio topic" in worker.log_path.read_text(errors="replace")
