"""Spool files: a running call's audio, appended chunk by chunk, encrypted at rest.

The recording stream keeps only small state in its faust table (sequence bookkeeping, the
spool's committed length, Kafka offsets); the payloads go here, one file per call leg::

    file header (72 bytes): b"CGSPOOL1" | key id, NUL-padded to 64 bytes
    record:  u32 length of the rest | seq u32 | start_ms i64 | duration_ms u32 |
             lost_packets u32 | sample_rate u32 | Kafka offset i64 | final u8 | nonce (12) |
             AES-GCM(pcm) ‖ tag

Each record is sealed with the key named in the file header (associated data: call id, leg and
the record header), so the spool is never plaintext audio on disk.  A record's size does not
depend on the key or nonce, so a spool rebuilt from Kafka has exactly the length of the one it
replaces; that is what lets the stream compare a spool with the committed length in its state:
longer = a tail the state does not know (each record names its Kafka offset, so the stream can
tell chunks Kafka will deliver again from chunks it will not), shorter = lost (rebuild it from
the audio topic).
"""

from __future__ import annotations

import contextlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connectors.recordings.crypto import NONCE_BYTES, Keyring, UnknownKey
from connectors.recordings.store import safe_name

MAGIC = b"CGSPOOL1"
KEY_ID_BYTES = 64
FILE_HEADER = len(MAGIC) + KEY_ID_BYTES
#: seq, start_ms, duration_ms, lost packets, sample rate, Kafka offset, final
_RECORD = struct.Struct(">IqIIIqB")
_LEN = struct.Struct(">I")
TAG_BYTES = 16


class SpoolCorrupt(Exception):
    """A spool that cannot be read back (the stream rebuilds it from Kafka)."""


@dataclass(frozen=True)
class SpooledChunk:
    seq: int
    start_ms: int
    duration_ms: int
    lost_packets: int
    sample_rate: int
    pcm: bytes
    offset: int = -1  # the chunk's Kafka offset
    final: bool = False


def record_size(pcm_bytes: int) -> int:
    return _LEN.size + _RECORD.size + NONCE_BYTES + pcm_bytes + TAG_BYTES


class Spool:
    def __init__(self, root: Path, keyring: Keyring) -> None:
        self.root = Path(root)
        self.keyring = keyring
        self._keys: dict[Path, tuple[str, bytes]] = {}  # open spools' keys (no re-read per chunk)

    def path(self, call_id: str, leg: str) -> Path:
        return self.root / f"{safe_name(call_id)}.{leg}.spool"

    def size(self, call_id: str, leg: str) -> int:
        try:
            return self.path(call_id, leg).stat().st_size
        except FileNotFoundError:
            return 0

    def _aad(self, call_id: str, leg: str, head: bytes) -> bytes:
        return f"{call_id}\x00{leg}\x00".encode() + head

    def _file_key(self, path: Path) -> tuple[str, bytes]:
        cached = self._keys.get(path)
        if cached is not None:
            return cached
        with path.open("rb") as f:
            head = f.read(FILE_HEADER)
        if len(head) < FILE_HEADER or head[: len(MAGIC)] != MAGIC:
            raise SpoolCorrupt("bad spool file header")
        key_id = head[len(MAGIC) :].rstrip(b"\x00").decode("utf-8", "replace")
        try:
            found = key_id, self.keyring.key(key_id)
        except UnknownKey:
            raise SpoolCorrupt("spool sealed with a key that is not in the keyring") from None
        self._keys[path] = found
        return found

    def truncate(self, call_id: str, leg: str, length: int) -> None:
        """Cut the spool to ``length`` bytes (0 removes it)."""
        path = self.path(call_id, leg)
        if length <= 0:
            self.delete(call_id, leg)
            return
        with path.open("r+b") as f:
            f.truncate(length)

    def append(self, call_id: str, leg: str, chunk: SpooledChunk) -> int:
        """Append one chunk; returns the spool's new length."""
        path = self.path(call_id, leg)
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            key_id, key = self.keyring.current
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + key_id.encode().ljust(KEY_ID_BYTES, b"\x00"))
            self._keys[path] = (key_id, key)
        else:
            key_id, key = self._file_key(path)
        head = _RECORD.pack(
            chunk.seq,
            chunk.start_ms,
            chunk.duration_ms,
            chunk.lost_packets,
            chunk.sample_rate,
            chunk.offset,
            1 if chunk.final else 0,
        )
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, chunk.pcm, self._aad(call_id, leg, head))
        body = head + nonce + sealed
        with path.open("ab") as f:
            f.write(_LEN.pack(len(body)) + body)
            return f.tell()

    def _records(
        self, call_id: str, leg: str, start: int, length: int | None, strict: bool
    ) -> list[tuple[SpooledChunk, int, int]]:
        """``(chunk, record start, record end)`` from byte ``start`` to ``length`` (None: the
        end of the file).  ``strict=False`` stops quietly at an incomplete last record."""
        path = self.path(call_id, leg)
        try:
            _, key = self._file_key(path)
            data = path.read_bytes()
        except FileNotFoundError:
            raise SpoolCorrupt("spool file missing") from None
        if length is not None:
            if len(data) < length:
                raise SpoolCorrupt("spool shorter than committed")
            data = data[:length]
        cipher = AESGCM(key)
        out: list[tuple[SpooledChunk, int, int]] = []
        pos = max(start, FILE_HEADER)
        minimum = _RECORD.size + NONCE_BYTES + TAG_BYTES
        while pos < len(data):
            if pos + _LEN.size > len(data):
                if strict:
                    raise SpoolCorrupt("truncated record")
                break
            (size,) = _LEN.unpack_from(data, pos)
            body = pos + _LEN.size
            if size < minimum or body + size > len(data):
                if strict:
                    raise SpoolCorrupt("truncated record")
                break
            head = data[body : body + _RECORD.size]
            nonce = data[body + _RECORD.size : body + _RECORD.size + NONCE_BYTES]
            sealed = data[body + _RECORD.size + NONCE_BYTES : body + size]
            try:
                pcm = cipher.decrypt(nonce, sealed, self._aad(call_id, leg, head))
            except InvalidTag:
                raise SpoolCorrupt("record failed authentication") from None
            seq, start_ms, duration_ms, lost, rate, offset, final = _RECORD.unpack(head)
            chunk = SpooledChunk(seq, start_ms, duration_ms, lost, rate, pcm, offset, bool(final))
            out.append((chunk, pos, body + size))
            pos = body + size
        return out

    def read(self, call_id: str, leg: str, length: int) -> list[SpooledChunk]:
        """The chunks in the first ``length`` bytes (the committed part)."""
        if length <= 0:
            return []
        return [c for c, _, _ in self._records(call_id, leg, FILE_HEADER, length, strict=True)]

    def tail(self, call_id: str, leg: str, start: int) -> list[tuple[SpooledChunk, int, int]]:
        """The complete records from byte ``start`` on, with where each starts and ends."""
        return self._records(call_id, leg, start, None, strict=False)

    def delete(self, call_id: str, leg: str) -> None:
        path = self.path(call_id, leg)
        self._keys.pop(path, None)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def reset(self, call_id: str, leg: str) -> None:
        """Start the leg's spool afresh (before a rebuild)."""
        self.delete(call_id, leg)
