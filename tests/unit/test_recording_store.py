"""The recording store: sealed files (AES-256-GCM) and tamper detection, the local folder store
(atomic writes, overwrite-then-unlink deletion), encrypted spools, keys, and audited access."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from connectors.recordings.crypto import (
    Keyring,
    TamperedRecording,
    UnknownKey,
    open_sealed,
    read_header,
    seal,
)
from connectors.recordings.kafka import DeliveryFailed
from connectors.recordings.spool import Spool, SpoolCorrupt, SpooledChunk
from connectors.recordings.store import LocalRecordingStore, RecordingNotFound
from connectors.recordings.wav import read_wav, wav_bytes
from pipelines.recording.access import AccessPolicy, AccessRefused, RecordingAccess
from pipelines.recording.keys import KeyFileError, load_keyring, local_key
from pipelines.settings import Settings
from schemas.records import Recording, RecordingAudit, WireRecord
from tests.samples import T0

KEY = bytes(range(32))
KEYRING = Keyring("k-test", {"k-test": KEY})
DAY = 86_400_000


def audio(seconds: float = 1.0) -> bytes:
    pcm = b"".join(
        int(1000 * ((i % 40) - 20)).to_bytes(2, "little", signed=True)
        for i in range(int(8000 * seconds))
    )
    return wav_bytes(pcm, 8000)


def meta(
    call_id: str = "c-1",
    leg: str = "caller",
    retention_until: int = T0 + DAY,
    plaintext: bytes | None = None,
) -> dict[str, Any]:
    data = audio() if plaintext is None else plaintext
    return {
        "recording_id": f"r-{call_id}-{leg}",
        "call_id": call_id,
        "leg": leg,
        "department": "traffic",
        "mode": "full",
        "started_ms": T0,
        "duration_ms": 1000,
        "sample_rate": 8000,
        "chunk_count": 5,
        "duplicate_chunks": 0,
        "missing_chunks": 0,
        "lost_packets": 0,
        "gap_count": 0,
        "gap_duration_ms": 0,
        "gaps": "[]",
        "finish_reason": "final_chunk",
        "sha256": hashlib.sha256(data).hexdigest(),
        "format": "wav",
        "retention_until_ms": retention_until,
        "stored_ms": T0 + 2000,
        "origin": "simulator",
    }


# --- the sealed format -------------------------------------------------------------------------


def test_seal_round_trip_with_key_id_and_fresh_nonce() -> None:
    plaintext = audio()
    sealed = seal(KEYRING, meta(plaintext=plaintext), plaintext)
    again = seal(KEYRING, meta(plaintext=plaintext), plaintext)
    header = read_header(sealed)
    assert header.key_id == "k-test" and header.meta["call_id"] == "c-1"
    assert header.nonce != read_header(again).nonce and sealed != again
    assert plaintext not in sealed and plaintext[44:1000] not in sealed  # not plaintext at rest
    opened_header, opened = open_sealed(KEYRING, sealed)
    assert opened == plaintext and opened_header.meta == header.meta
    pcm, rate = read_wav(opened)
    assert rate == 8000 and len(pcm) == 16000


@pytest.mark.parametrize("where", ["ciphertext", "tag", "header"])
def test_any_change_is_detected(where: str) -> None:
    plaintext = audio()
    sealed = bytearray(seal(KEYRING, meta(plaintext=plaintext), plaintext))
    header = read_header(bytes(sealed))
    if where == "ciphertext":
        sealed[header.length + 100] ^= 0x01
    elif where == "tag":
        sealed[-1] ^= 0x80
    else:  # extend the retention in the plaintext header: authenticated, so refused
        text = bytes(sealed).replace(str(T0 + DAY).encode(), str(T0 + 9 * DAY).encode())
        sealed = bytearray(text)
        assert read_header(bytes(sealed)).meta["retention_until_ms"] == T0 + 9 * DAY
    with pytest.raises(TamperedRecording):
        open_sealed(KEYRING, bytes(sealed))


def test_wrong_or_missing_key_and_hash_mismatch() -> None:
    plaintext = audio()
    sealed = seal(KEYRING, meta(plaintext=plaintext), plaintext)
    with pytest.raises(UnknownKey):
        open_sealed(Keyring("other", {"other": bytes(32)}), sealed)
    impostor = Keyring("k-test", {"k-test": bytes(32)})  # same id, another key
    with pytest.raises(TamperedRecording, match="authentication"):
        open_sealed(impostor, sealed)
    lying = seal(KEYRING, {**meta(), "sha256": "0" * 64}, plaintext)
    with pytest.raises(TamperedRecording, match="hash"):
        open_sealed(KEYRING, lying)
    assert "k-test" in repr(KEYRING) and KEY.hex() not in repr(KEYRING)
    with pytest.raises(TamperedRecording):
        read_header(b"RIFF....WAVEfmt ")


# --- the local store -----------------------------------------------------------------------------


def store_one(
    store: LocalRecordingStore,
    call_id: str = "c-1",
    leg: str = "caller",
    retention_until: int = T0 + DAY,
) -> bytes:
    plaintext = audio()
    sealed = seal(KEYRING, meta(call_id, leg, retention_until, plaintext), plaintext)
    store.put(call_id, leg, sealed)
    return sealed


def test_store_put_get_list_and_permissions(tmp_path: Path) -> None:
    store = LocalRecordingStore(tmp_path / "rec")
    sealed = store_one(store)
    store_one(store, "c-1", "staff")
    store_one(store, "c/../2", "caller")  # an unsafe call id becomes a hashed folder name
    assert store.get("c-1", "caller") == sealed
    path = store.path("c-1", "caller")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "rec").stat().st_mode) == 0o700
    assert ".." not in str(store.path("c/../2", "caller").relative_to(tmp_path))
    listed = {(o.call_id, o.leg) for o in store.list()}
    assert listed == {("c-1", "caller"), ("c-1", "staff"), ("c/../2", "caller")}
    assert [o.leg for o in store.list("c-1")] == ["caller", "staff"]
    head = store.head("c-1", "caller")
    assert head is not None and head.size_bytes == len(sealed) and head.location.startswith("file:")
    assert store.head("c-9", "caller") is None
    with pytest.raises(RecordingNotFound):
        store.get("c-9", "caller")
    assert not list(path.parent.glob("*.tmp"))
    with pytest.raises(TamperedRecording):
        store.put("c-3", "caller", b"not sealed")


def test_list_expired_and_delete_overwrites_before_unlinking(tmp_path: Path) -> None:
    store = LocalRecordingStore(tmp_path / "rec")
    old = store_one(store, "old", retention_until=T0 - 1)
    store_one(store, "new", retention_until=T0 + DAY)
    assert [o.call_id for o in store.list_expired(T0)] == ["old"]
    assert [o.call_id for o in store.list_expired(T0 - 1)] == ["old"]
    assert store.list_expired(T0 - 2) == []
    # a second name for the same inode shows what happened to the bytes on disk
    path = store.path("old", "caller")
    witness = tmp_path / "witness"
    os.link(path, witness)
    assert store.delete("old", "caller")
    assert not path.exists() and not path.parent.exists()
    left = witness.read_bytes()
    assert len(left) == len(old) and left != old
    assert old[-200:] not in left  # overwritten, not just unlinked
    assert not store.delete("old", "caller")
    assert [o.call_id for o in store.list()] == ["new"]


# --- spool ---------------------------------------------------------------------------------------


def spooled(seq: int) -> SpooledChunk:
    return SpooledChunk(seq, T0 + 200 * seq, 200, seq % 2, 8000, bytes([seq % 256]) * 3200)


def test_spool_round_trip_truncate_and_encryption(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", KEYRING)
    sizes = [spool.append("c-1", "caller", spooled(i)) for i in range(5)]
    assert sizes == sorted(sizes) and spool.size("c-1", "caller") == sizes[-1]
    assert spool.read("c-1", "caller", sizes[-1]) == [spooled(i) for i in range(5)]
    assert spool.read("c-1", "caller", sizes[2]) == [spooled(i) for i in range(3)]
    raw = spool.path("c-1", "caller").read_bytes()
    assert bytes([3]) * 3200 not in raw  # the audio is not plaintext on disk
    assert stat.S_IMODE(spool.path("c-1", "caller").stat().st_mode) == 0o600
    spool.truncate("c-1", "caller", sizes[1])  # an uncommitted tail is cut
    assert spool.read("c-1", "caller", spool.size("c-1", "caller")) == [spooled(0), spooled(1)]
    with pytest.raises(SpoolCorrupt):
        spool.read("c-1", "caller", sizes[3])  # shorter than committed
    # a rebuilt spool under a rotated key has exactly the same length
    rotated = Spool(
        tmp_path / "spool2", Keyring("k-new-and-longer-id", {"k-new-and-longer-id": bytes(32)})
    )
    assert [rotated.append("c-1", "caller", spooled(i)) for i in range(5)] == sizes
    data = bytearray(raw)
    data[sizes[0] + 50] ^= 1
    spool.path("c-1", "caller").write_bytes(bytes(data))
    with pytest.raises(SpoolCorrupt, match="authentication"):
        spool.read("c-1", "caller", sizes[-1])


# --- keys ----------------------------------------------------------------------------------------


def test_local_key_is_generated_once_with_0600_and_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key_id, key = local_key(tmp_path)
    path = tmp_path / "recording.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert local_key(tmp_path) == (key_id, key)
    assert key_id in caplog.text and str(path) in caplog.text
    assert base64.b64encode(key).decode() not in caplog.text and key.hex() not in caplog.text
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        local_key(tmp_path)


def test_configured_keys_and_rotation(tmp_path: Path) -> None:
    new, old = os.urandom(32), os.urandom(32)
    settings = Settings(
        data_dir=tmp_path,
        recording_key=base64.b64encode(new).decode(),
        recording_key_id="2026-11",
        recording_previous_keys={"2026-05": base64.b64encode(old).decode()},
    )
    keyring = load_keyring(settings)
    assert keyring.current == ("2026-11", new) and keyring.key("2026-05") == old
    assert not (tmp_path / "recording.key").exists()  # no development key when one is set
    assert settings.public_dict()["recording_key"] == "***"
    assert base64.b64encode(new).decode() not in str(settings.public_dict())
    with pytest.raises(ValueError, match="32 bytes"):
        Settings(recording_key=base64.b64encode(b"short").decode())


# --- audited access ------------------------------------------------------------------------------


@dataclass
class MemoryOutbox:
    sent: list[tuple[str, str, WireRecord]] = field(default_factory=list)
    fail: bool = False

    def send(self, topic: str, key: str, record: WireRecord) -> None:
        if self.fail:
            raise DeliveryFailed(f"{topic}: broker down")
        self.sent.append((topic, key, record))

    def audits(self) -> list[RecordingAudit]:
        return [r for t, _, r in self.sent if isinstance(r, RecordingAudit)]


class CountingStore(LocalRecordingStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gets = 0

    def get(self, call_id: str, leg: str) -> bytes:
        self.gets += 1
        return super().get(call_id, leg)


def access_for(
    store: LocalRecordingStore, outbox: MemoryOutbox, **members: tuple[str, ...]
) -> RecordingAccess:
    return RecordingAccess(
        store,
        KEYRING,
        outbox,
        audit_topic="calls.recording-audit",
        recordings_topic="calls.recordings",
        policy=AccessPolicy(roles=("supervisor", "auditor"), members=members),
        clock=lambda: T0 + 5 * DAY,
        host="test-host",
    )


def test_access_needs_a_role_and_a_reason_and_every_attempt_is_audited(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "rec")
    store_one(store)
    outbox = MemoryOutbox()
    access = access_for(store, outbox, auditor=("kim",))
    with pytest.raises(AccessRefused, match="role 'staff'"):
        access.fetch("c-1", "caller", actor="lee", role="staff", reason="curious")
    with pytest.raises(AccessRefused, match="not a member"):
        access.fetch("c-1", "caller", actor="lee", role="auditor", reason="complaint 118")
    with pytest.raises(AccessRefused, match="reason"):
        access.fetch("c-1", "caller", actor="kim", role="auditor", reason="  ")
    assert store.gets == 0  # nothing was even read
    header, wav = access.fetch("c-1", "caller", actor="kim", role="auditor", reason="complaint 118")
    assert hashlib.sha256(wav).hexdigest() == header.meta["sha256"]
    with pytest.raises(RecordingNotFound):
        access.fetch("c-9", "caller", actor="kim", role="auditor", reason="complaint 118")
    audits = outbox.audits()
    assert [(a.action, a.result, a.actor, a.role) for a in audits] == [
        ("access", "refused", "lee", "staff"),
        ("access", "refused", "lee", "auditor"),
        ("access", "refused", "kim", "auditor"),
        ("access", "granted", "kim", "auditor"),
        ("access", "failed", "kim", "auditor"),
    ]
    assert all(a.host == "test-host" and a.ts_ms == T0 + 5 * DAY for a in audits)
    assert (
        audits[3].reason == "complaint 118" and audits[3].recording_sha256 == header.meta["sha256"]
    )
    assert {t for t, _, _ in outbox.sent} == {"calls.recording-audit"}


def test_no_audit_no_access(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "rec")
    store_one(store)
    access = access_for(store, MemoryOutbox(fail=True))
    with pytest.raises(DeliveryFailed):
        access.fetch("c-1", "caller", actor="kim", role="supervisor", reason="complaint 118")
    assert store.gets == 0


def test_a_tampered_file_is_refused_and_the_failure_audited(tmp_path: Path) -> None:
    store = LocalRecordingStore(tmp_path / "rec")
    store_one(store)
    path = store.path("c-1", "caller")
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF
    path.write_bytes(bytes(data))
    outbox = MemoryOutbox()
    with pytest.raises(TamperedRecording):
        access_for(store, outbox).fetch("c-1", "caller", actor="kim", role="auditor", reason="x")
    assert [a.result for a in outbox.audits()] == ["granted", "failed"]
    assert "authentication failed" in outbox.audits()[1].detail


def test_purge_destroys_only_expired_recordings_and_audits_each(tmp_path: Path) -> None:
    store = LocalRecordingStore(tmp_path / "rec")
    store_one(store, "old", "caller", retention_until=T0 + DAY)
    store_one(store, "old", "staff", retention_until=T0 + DAY)
    store_one(store, "young", "caller", retention_until=T0 + 30 * DAY)
    outbox = MemoryOutbox()
    access = access_for(store, outbox)
    preview = access.purge(expired_by_ms=T0 + 2 * DAY, dry_run=True, actor="ops")
    assert [(i.call_id, i.leg, i.deleted) for i in preview] == [
        ("old", "caller", False),
        ("old", "staff", False),
    ]
    assert outbox.sent == [] and len(store.list()) == 3
    cdr = {
        "cdr_seen": True,
        "cdr_billsec_s": 1.0,
        "expected_duration_ms": 1000,
        "shortfall_duration_ms": 0,
        "shortfall": False,
    }
    done = access.purge(
        expired_by_ms=T0 + 2 * DAY,
        dry_run=False,
        actor="ops",
        current_row=lambda call_id, leg: cdr if leg == "caller" else None,
    )
    assert [(i.call_id, i.leg, i.deleted) for i in done] == [
        ("old", "caller", True),
        ("old", "staff", True),
    ]
    assert [o.call_id for o in store.list()] == ["young"]
    audits = outbox.audits()
    assert [(a.call_id, a.leg, a.action, a.result, a.actor, a.role) for a in audits] == [
        ("old", "caller", "delete", "deleted", "ops", "retention"),
        ("old", "staff", "delete", "deleted", "ops", "retention"),
    ]
    assert all(a.recording_sha256 and "retention ended" in a.reason for a in audits)
    rows = [r for _, _, r in outbox.sent if isinstance(r, Recording)]
    assert [(r.leg, r.deleted_ms, r.cdr_seen) for r in rows] == [
        ("caller", T0 + 5 * DAY, True),
        ("staff", T0 + 5 * DAY, False),
    ]
    assert rows[0].department == "traffic" and rows[0].retention_until_ms == T0 + DAY
    assert access.purge(expired_by_ms=T0 + 2 * DAY, dry_run=False, actor="ops") == []


def test_purge_stops_when_a_deletion_cannot_be_audited(tmp_path: Path) -> None:
    store = LocalRecordingStore(tmp_path / "rec")
    store_one(store, "a", retention_until=T0)
    store_one(store, "b", retention_until=T0)
    with pytest.raises(DeliveryFailed):
        access_for(store, MemoryOutbox(fail=True)).purge(
            expired_by_ms=T0, dry_run=False, actor="ops"
        )
    assert [o.call_id for o in store.list()] == ["b"]  # stopped after the first


def test_the_sealed_header_is_a_complete_row(tmp_path: Path) -> None:
    """What purge rebuilds from a header decodes as a valid row (the wire schema agrees)."""
    from schemas.codec import decode, encode

    store = LocalRecordingStore(tmp_path / "rec")
    store_one(store, "a", retention_until=T0)
    outbox = MemoryOutbox()
    access_for(store, outbox).purge(expired_by_ms=T0, dry_run=False, actor="ops")
    (row,) = [r for _, _, r in outbox.sent if isinstance(r, Recording)]
    again = decode(Recording, encode(row))
    assert json.loads(again.gaps) == [] and again.deleted_ms > 0


def test_spool_tail_names_offsets_and_stops_at_an_incomplete_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", KEYRING)
    chunks = [
        SpooledChunk(i, T0 + 200 * i, 200, 0, 8000, bytes(3200), offset=100 + i, final=i == 3)
        for i in range(4)
    ]
    sizes = [spool.append("c-1", "caller", c) for c in chunks]
    with spool.path("c-1", "caller").open("ab") as f:
        f.write(b"\x00\x00\x10\x00half a record")  # a write cut short by a crash
    tail = spool.tail("c-1", "caller", sizes[1])
    assert [(c.seq, c.offset, c.final, start, end) for c, start, end in tail] == [
        (2, 102, False, sizes[1], sizes[2]),
        (3, 103, True, sizes[2], sizes[3]),
    ]
    with pytest.raises(SpoolCorrupt):
        spool.read("c-1", "caller", sizes[3] + 5)
