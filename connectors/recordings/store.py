"""Where sealed recordings live: the :class:`RecordingStore` protocol and a local folder.

A store keeps opaque sealed bytes (:mod:`connectors.recordings.crypto`) per call and leg; it
never sees a key.  It reads only the plaintext header, which is enough to list recordings and
find expired ones.  An S3 store would implement the same protocol with one object per
recording (``<call_id>/<leg>.cgrec``), the header's retention in object metadata for
``list_expired``, and ``DeleteObject`` (with versioning off, or the version deleted too).

:class:`LocalRecordingStore` writes ``<root>/<call_id>/<leg>.cgrec`` atomically (temporary
file, fsync, rename), files 0600 and folders 0700.  ``delete`` overwrites the file with random
bytes, syncs, then unlinks it.  On journaling or copy-on-write file systems and on SSDs an
overwrite cannot guarantee the old blocks are gone; the encryption is what makes a deleted
recording unreadable once its key is retired.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from connectors.recordings.crypto import Header, RecordingCryptoError, read_header, read_header_from

SUFFIX = ".cgrec"
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_LEGS = ("caller", "staff", "mixed")


class RecordingNotFound(KeyError):
    pass


@dataclass(frozen=True)
class StoredObject:
    call_id: str
    leg: str
    location: str
    size_bytes: int
    header: Header

    @property
    def retention_until_ms(self) -> int:
        return int(self.header.meta.get("retention_until_ms", 0))


class RecordingStore(Protocol):
    def put(self, call_id: str, leg: str, sealed: bytes) -> StoredObject: ...

    def get(self, call_id: str, leg: str) -> bytes: ...

    def head(self, call_id: str, leg: str) -> StoredObject | None: ...

    def delete(self, call_id: str, leg: str) -> bool: ...

    def list(self, call_id: str | None = None) -> builtins.list[StoredObject]: ...

    def list_expired(self, now_ms: int) -> builtins.list[StoredObject]: ...


def safe_name(call_id: str) -> str:
    """A call id as a folder name: itself when harmless, else a hash of it."""
    if _SAFE.match(call_id) and ".." not in call_id:
        return call_id
    return "h-" + hashlib.sha256(call_id.encode()).hexdigest()[:32]


def _check_leg(leg: str) -> str:
    if leg not in _LEGS:
        raise ValueError(f"unknown leg {leg!r}")
    return leg


class LocalRecordingStore:
    """Sealed recordings in a folder (see module doc)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(self.root, 0o700)

    def path(self, call_id: str, leg: str) -> Path:
        return self.root / safe_name(call_id) / f"{_check_leg(leg)}{SUFFIX}"

    def _object(self, call_id: str, leg: str, path: Path) -> StoredObject:
        with path.open("rb") as f:
            header = read_header_from(f)
            size = os.fstat(f.fileno()).st_size
        return StoredObject(call_id, leg, path.resolve().as_uri(), size, header)

    def put(self, call_id: str, leg: str, sealed: bytes) -> StoredObject:
        header = read_header(sealed)  # refuse to store what could never be read back
        self._ensure_root()
        target = self.path(call_id, leg)
        target.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(sealed)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return StoredObject(call_id, leg, target.resolve().as_uri(), len(sealed), header)

    def get(self, call_id: str, leg: str) -> bytes:
        path = self.path(call_id, leg)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise RecordingNotFound(f"no {leg} recording for call {call_id}") from None

    def head(self, call_id: str, leg: str) -> StoredObject | None:
        path = self.path(call_id, leg)
        try:
            return self._object(call_id, leg, path)
        except FileNotFoundError:
            return None

    def delete(self, call_id: str, leg: str) -> bool:
        """Overwrite with random bytes, sync, unlink; False when there was nothing to delete."""
        path = self.path(call_id, leg)
        try:
            fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            return False
        try:
            remaining = os.fstat(fd).st_size
            while remaining > 0:
                block = min(remaining, 1 << 20)
                os.write(fd, os.urandom(block))
                remaining -= block
            os.fsync(fd)
        finally:
            os.close(fd)
        path.unlink()
        with contextlib.suppress(OSError):  # the call's folder, once it is empty
            path.parent.rmdir()
        return True

    def _walk(self, call_id: str | None) -> Iterator[StoredObject]:
        if not self.root.is_dir():
            return
        folders = [self.root / safe_name(call_id)] if call_id else sorted(self.root.iterdir())
        for folder in folders:
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob(f"*{SUFFIX}")):
                leg = path.name[: -len(SUFFIX)]
                if leg not in _LEGS:
                    continue
                try:
                    obj = self._object("", leg, path)
                except (OSError, RecordingCryptoError):
                    continue  # a file being replaced, or not ours
                real_id = str(obj.header.meta.get("call_id") or folder.name)
                if call_id and real_id != call_id:
                    continue
                yield StoredObject(real_id, leg, obj.location, obj.size_bytes, obj.header)

    def list(self, call_id: str | None = None) -> builtins.list[StoredObject]:
        return builtins.list(self._walk(call_id))

    def list_expired(self, now_ms: int) -> builtins.list[StoredObject]:
        """Recordings whose retention ended at or before ``now_ms``."""
        return [o for o in self._walk(None) if 0 < o.retention_until_ms <= now_ms]
