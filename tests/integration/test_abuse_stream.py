"""The abuse-detection stream on real parts: Asterisk, SIP phones, Kafka, faust, Whisper, chDB.

The caller's phone speaks real Korean speech (Zeroth-Korean clips) into a call; the connector
streams both legs' audio to Kafka; the worker cuts utterances, transcribes them with the
packaged Whisper base model, scores them and applies the response policy.  The clips contain no
abuse, so the office's own term list (a product feature: ``abuse_local_terms_file``) names
words the clips say: the first clip is then a "threat", the second an "insult".

Expected: the first detection plays the warning to the caller (the caller's phone records it);
the second plays the termination announcement, after which the PBX hangs up (BYE); the CDR
says ``abuse``; incidents (warn, end) and masked transcripts land in ClickHouse.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from connectors.kafka.topics import TopicCatalog
from pipelines.core import abuse as core
from pipelines.settings import Settings
from schemas.codec import decode
from schemas.records import Cdr, PbxCommand
from tests.integration.conftest import (
    REPO,
    SinkHandle,
    WorkerProcess,
    place_call,
    read_topic,
    wait_until,
)
from tests.integration.test_asterisk_connector import read_wav, segment_match

SAMPLES = REPO / "connectors" / "simulator" / "samples"
THREAT_CLIP = SAMPLES / "104_003_0193.wav"  # … 노란 동백꽃 속으로 폭 파묻혀 버렸다
INSULT_CLIP = SAMPLES / "104_003_0294.wav"  # 한 잔 의 커피 가 소비자 에게 …

pytest.importorskip("faster_whisper", reason="the asr extra is not installed")


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    terms = tmp_path / "terms.toml"
    terms.write_text(
        "[terms]\n"
        'threat = ["동백꽃", "파묻혀", "쓰러지"]\n'
        'insult = ["커피", "소비자", "공정을"]\n',
        encoding="utf-8",
    )
    policy = tmp_path / "abuse.toml"
    policy.write_text(
        "[defaults]\nwarn_window_s = 600\nhangup_safety_s = 40\n", encoding="utf-8"
    )
    return settings.model_copy(
        update={
            "streams": ["calls", "abuse"],
            "abuse_local_terms_file": terms,
            "abuse_policy_file": policy,
            "asr_beam_size": 1,
        }
    )


def keep(path: Path) -> str:
    """Copy a test recording where a failed CI run leaves it for a look."""
    target = Path(tempfile.gettempdir()) / "callguard-test-artifacts" / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    return f"kept as {target}"


def abuse_commands(bootstrap: str, catalog: TopicCatalog, call_id: str) -> list[PbxCommand]:
    return [
        c
        for c in (decode(PbxCommand, m.value()) for m in read_topic(bootstrap, catalog.commands))
        if c.call_id == call_id and c.issued_by == "abuse"
    ]


@pytest.mark.usefixtures("pbx_free", "connector")
def test_real_call_warned_then_ended_for_abuse(
    bootstrap: str,
    catalog: TopicCatalog,
    sink: SinkHandle,
    worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    from tests.support.phones import phone_system

    phones = phone_system()
    out, ringing, call_id = place_call(
        phones, bootstrap, catalog, "caller05", "staff05", "1300", ring_timeout_s=30
    )
    heard = out.record_to(tmp_path / "caller-hears.wav")

    def wait_for(media: str, timeout_s: float) -> PbxCommand:
        deadline = time.monotonic() + timeout_s
        while True:
            found = [
                c
                for c in abuse_commands(bootstrap, catalog, call_id)
                if c.args.get("media") == media
            ]
            if found:
                return found[0]
            assert time.monotonic() < deadline, (media, worker.log())
            phones.pump(0.5)

    time.sleep(1.0)
    out.play_wav(THREAT_CLIP)  # 8.8 s of speech, then silence ends the utterance
    warning = wait_for(core.WARNING_MEDIA, 120)
    assert warning.args["target"] == "caller"
    phones.pump(8.0)  # let the caller hear the warning (about 6 s)
    out.play_wav(INSULT_CLIP)
    terminate = wait_for(core.TERMINATION_MEDIA, 120)
    assert terminate.command_id == core.command_id(call_id, "terminate")
    out.wait_disconnected(90)  # the BYE, after the termination announcement
    ringing.wait_disconnected(15)

    sounds = REPO / "docker" / "asterisk" / "sounds"
    recording = read_wav(heard)
    for name in ("abuse-warning", "abuse-termination"):
        score = segment_match(recording, read_wav(sounds / f"{name}.wav"))
        # unrelated audio scores below 0.1; a loaded machine's jitter buffer costs some frames
        assert score > 0.6, f"caller's recording vs {name}: r={score:.3f} ({keep(heard)})"

    hangups = [c for c in abuse_commands(bootstrap, catalog, call_id) if c.action == "hangup"]
    assert [c.args for c in hangups] == [{"cause": "abuse"}]
    cdr = wait_until(
        lambda: [
            c
            for c in (decode(Cdr, m.value()) for m in read_topic(bootstrap, catalog.cdr))
            if c.call_id == call_id
        ],
        30,
    )[-1]
    assert cdr.hangup_cause == "abuse", cdr

    incidents = wait_until(
        lambda: (
            rows
            if len(
                rows := sink.query(
                    "SELECT category, action, leg, model_version, evidence, department "
                    f"FROM incidents FINAL WHERE call_id = '{call_id}' ORDER BY ts_ms"
                ).rows
            )
            >= 2
            else None
        ),
        60,
    )
    assert [(r[0], r[1], r[2]) for r in incidents] == [
        ("threat", "warn", "caller"),
        ("insult", "end", "caller"),
    ], incidents
    assert all(r[3].endswith("+local") and r[4] and r[5] == "welfare" for r in incidents)
    transcripts = wait_until(
        lambda: sink.query(
            "SELECT leg, asr_backend, category FROM transcripts FINAL "
            f"WHERE call_id = '{call_id}' ORDER BY start_ms"
        ).rows,
        60,
    )
    assert ("caller", "faster-whisper", "threat") in [tuple(r) for r in transcripts]
    decisions = sink.query(
        "SELECT kind FROM decisions FINAL "
        f"WHERE call_id = '{call_id}' AND stream = 'abuse' ORDER BY ts_ms, kind = 'alert'"
    ).rows  # an alert shares its warning's or termination's instant: list it second
    assert [r[0] for r in decisions] == ["warn", "alert", "terminate", "alert", "hangup"]
