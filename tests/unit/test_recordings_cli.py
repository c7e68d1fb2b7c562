"""``callguard recordings``: list, get (authorised, audited, 0600 output), purge (never early)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connectors.recordings.crypto import seal
from connectors.recordings.store import LocalRecordingStore
from pipelines import recordings_cli
from pipelines.cli import main
from pipelines.recording.keys import load_keyring
from pipelines.settings import Settings
from schemas.records import RecordingAudit
from tests.samples import T0
from tests.unit.test_recording_store import MemoryOutbox, audio, meta

DAY = 86_400_000


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("CALLGUARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CALLGUARD_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setenv("CALLGUARD_QUERY_PORT", "1")
    outbox = MemoryOutbox()
    monkeypatch.setattr(recordings_cli, "_outbox", lambda settings: outbox)
    settings = Settings()
    keyring = load_keyring(settings)
    store = LocalRecordingStore(settings.recordings_path)
    for call_id, until in (("expired-call", T0), ("kept-call", 2**41)):
        plaintext = audio()
        store.put(
            call_id, "caller", seal(keyring, meta(call_id, "caller", until, plaintext), plaintext)
        )
    return {"outbox": outbox, "store": store, "tmp": tmp_path}


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["recordings", *args], catch_exceptions=False)


def test_list_shows_metadata(env: dict[str, Any]) -> None:
    result = run("list", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert sorted(r["call_id"] for r in rows) == ["expired-call", "kept-call"]
    assert all(r["department"] == "traffic" and r["duration_s"] == 1.0 for r in rows)
    expired = run("list", "--expired", "--json")
    assert [json.loads(line)["call_id"] for line in expired.output.splitlines()] == ["expired-call"]


def test_get_writes_a_private_file_for_an_allowed_role(env: dict[str, Any]) -> None:
    out = env["tmp"] / "out.wav"
    result = run(
        "get",
        "kept-call",
        "--reason",
        "complaint 118",
        "--role",
        "auditor",
        "--user",
        "kim",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"RIFF" and stat.S_IMODE(out.stat().st_mode) == 0o600
    again = run("get", "kept-call", "--reason", "x", "--role", "auditor", "--out", str(out))
    assert again.exit_code != 0 and "exists" in again.output
    refused = run(
        "get", "kept-call", "--reason", "x", "--role", "clerk", "--out", str(env["tmp"] / "no.wav")
    )
    assert refused.exit_code != 0 and "refused (audited)" in refused.output
    assert not (env["tmp"] / "no.wav").exists()
    audits = [r for _, _, r in env["outbox"].sent if isinstance(r, RecordingAudit)]
    assert (audits[0].result, audits[0].actor) == ("granted", "kim")
    assert audits[-1].result == "refused" and audits[-1].role == "clerk"


def test_purge_refuses_a_future_now_and_destroys_only_expired(env: dict[str, Any]) -> None:
    future = run("purge", "--now", "2999-01-01T00:00:00")
    assert future.exit_code != 0 and "future" in future.output
    preview = run("purge", "--now", "2999-01-01", "--dry-run")
    assert preview.exit_code == 0 and "would delete 2" in preview.output
    assert len(env["store"].list()) == 2
    done = run("purge", "--user", "ops")
    assert done.exit_code == 0, done.output
    assert "deleted 1" in done.output
    assert [o.call_id for o in env["store"].list()] == ["kept-call"]
    audits = [r for _, _, r in env["outbox"].sent if isinstance(r, RecordingAudit)]
    assert [(a.call_id, a.action, a.actor) for a in audits] == [("expired-call", "delete", "ops")]


def test_instants() -> None:
    assert recordings_cli.parse_instant("1795000000000") == 1_795_000_000_000
    midnight_utc = recordings_cli.parse_instant("2026-11-20")
    assert midnight_utc == 1_795_132_800_000
    assert recordings_cli.parse_instant("2026-11-20T09:00:00+09:00") == midnight_utc
    with pytest.raises(Exception, match="ISO"):
        recordings_cli.parse_instant("next tuesday")
