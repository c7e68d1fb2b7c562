"""The sealed-file format: AES-256-GCM with the key id and a fresh nonce in an authenticated
header.

::

    b"CGREC01\\n" | u32 header length | header (JSON, UTF-8) | ciphertext ‖ 16-byte GCM tag

The header (``v``, ``alg``, ``key_id``, ``nonce``, ``meta``) is plaintext so the store can list
files and find expired ones without a key, but it is the GCM *associated data*: changing one
byte of it, or of the ciphertext, makes :func:`open_sealed` fail.  ``meta`` carries what is not
secret (call id, leg, durations, the SHA-256 of the plaintext audio, retention); no audio and
no transcript is ever in it.  A new random 96-bit nonce per file; keys are 32 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"CGREC01\n"
ALG = "AES-256-GCM"
NONCE_BYTES = 12
KEY_BYTES = 32
_LEN = struct.Struct(">I")
MAX_HEADER = 1 << 20


class RecordingCryptoError(Exception):
    """A sealed file that cannot be opened (reason safe to log: no content)."""


class UnknownKey(RecordingCryptoError):
    pass


class TamperedRecording(RecordingCryptoError):
    pass


@dataclass(frozen=True)
class Keyring:
    """The key new files are sealed with, and every key old files may need."""

    current_id: str
    keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if self.current_id not in self.keys:
            raise ValueError("keyring: the current key id has no key")
        for key_id, key in self.keys.items():
            if len(key) != KEY_BYTES:
                raise ValueError(f"keyring: key {key_id} is not {KEY_BYTES} bytes")
            if not key_id or len(key_id.encode()) > 64:
                raise ValueError("keyring: key ids must be 1-64 bytes")

    @property
    def current(self) -> tuple[str, bytes]:
        return self.current_id, self.keys[self.current_id]

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise UnknownKey(f"no key with id {key_id!r} in the keyring") from None

    def __repr__(self) -> str:
        return f"Keyring(current_id={self.current_id!r}, key_ids={sorted(self.keys)!r})"


@dataclass(frozen=True)
class Header:
    key_id: str
    nonce: bytes
    meta: Mapping[str, Any]
    length: int  # bytes before the ciphertext (magic + length + header)


def key_fingerprint(key: bytes) -> str:
    """A key id derived from the key (one-way; identifies, never reveals)."""
    return "k-" + hashlib.sha256(b"callguard-recording-key\x00" + key).hexdigest()[:12]


def seal(keyring: Keyring, meta: Mapping[str, Any], plaintext: bytes) -> bytes:
    key_id, key = keyring.current
    nonce = os.urandom(NONCE_BYTES)
    header = {
        "v": 1,
        "alg": ALG,
        "key_id": key_id,
        "nonce": base64.b64encode(nonce).decode("ascii"),
        "meta": dict(meta),
    }
    body = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    prefix = MAGIC + _LEN.pack(len(body)) + body
    return prefix + AESGCM(key).encrypt(nonce, plaintext, prefix)


def _parse(prefix: bytes, body: bytes) -> Header:
    try:
        data = json.loads(body)
        nonce = base64.b64decode(data["nonce"], validate=True)
        key_id = str(data["key_id"])
        meta = dict(data.get("meta") or {})
        ok = data.get("v") == 1 and data.get("alg") == ALG and len(nonce) == NONCE_BYTES
    except (ValueError, KeyError, TypeError):
        raise TamperedRecording("unreadable header") from None
    if not ok:
        raise TamperedRecording("unsupported header version or algorithm")
    return Header(key_id=key_id, nonce=nonce, meta=meta, length=len(prefix) + len(body))


def read_header(data: bytes) -> Header:
    """The header of a sealed file (from its bytes, or at least its first bytes)."""
    if data[: len(MAGIC)] != MAGIC:
        raise TamperedRecording("not a CallGuard recording")
    (size,) = _LEN.unpack_from(data, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    if size > MAX_HEADER or len(data) < start + size:
        raise TamperedRecording("truncated header")
    return _parse(data[:start], data[start : start + size])


def read_header_from(stream: BinaryIO) -> Header:
    head = stream.read(len(MAGIC) + _LEN.size)
    if head[: len(MAGIC)] != MAGIC or len(head) < len(MAGIC) + _LEN.size:
        raise TamperedRecording("not a CallGuard recording")
    (size,) = _LEN.unpack_from(head, len(MAGIC))
    if size > MAX_HEADER:
        raise TamperedRecording("truncated header")
    body = stream.read(size)
    if len(body) < size:
        raise TamperedRecording("truncated header")
    return _parse(head, body)


def open_sealed(keyring: Keyring, sealed: bytes) -> tuple[Header, bytes]:
    """Decrypt and authenticate; also check the plaintext against ``meta.sha256``."""
    header = read_header(sealed)
    key = keyring.key(header.key_id)
    try:
        plaintext = AESGCM(key).decrypt(
            header.nonce, sealed[header.length :], sealed[: header.length]
        )
    except InvalidTag:
        raise TamperedRecording("authentication failed: file altered or wrong key") from None
    expected = header.meta.get("sha256")
    if expected and hashlib.sha256(plaintext).hexdigest() != expected:
        raise TamperedRecording("content hash does not match the header")
    return header, plaintext
