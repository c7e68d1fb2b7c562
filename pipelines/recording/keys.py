"""The recording keyring from the settings.

Production sets ``recording_key`` (base64 of 32 random bytes, from a secret store) and
``recording_key_id``; after a rotation the older keys go to ``recording_previous_keys`` so old
files stay readable until they are purged.  The embedded default has no key configured: a key
file is generated once at ``<data_dir>/recording.key`` (mode 0600) and the log says so, with its
id and path.  Nothing ever logs a key.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path
from typing import Any

from connectors.recordings.crypto import KEY_BYTES, Keyring, key_fingerprint

log = logging.getLogger(__name__)

KEY_FILE = "recording.key"


class KeyFileError(RuntimeError):
    pass


def _decode(value: str, what: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except ValueError:
        raise KeyFileError(f"{what}: not base64") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{what}: not {KEY_BYTES} bytes")
    return key


def _read_key_file(path: Path) -> tuple[str, bytes]:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyFileError(f"{path} is readable by others (mode {mode:o}); chmod 600 it before use")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return str(data["key_id"]), _decode(str(data["key"]), str(path))
    except (ValueError, KeyError, TypeError):
        raise KeyFileError(f"{path} is not a recording key file") from None


def local_key(data_dir: Path) -> tuple[str, bytes]:
    """The development key: read ``<data_dir>/recording.key``, creating it once (0600)."""
    path = Path(data_dir) / KEY_FILE
    if path.exists():
        return _read_key_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(KEY_BYTES)
    key_id = key_fingerprint(key)
    body = json.dumps({"key_id": key_id, "key": base64.b64encode(key).decode("ascii")})
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it a moment ago
        return _read_key_file(path)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(body + "\n")
        f.flush()
        os.fsync(f.fileno())
    log.warning(
        "generated a recording key (id %s) at %s (mode 0600): recordings cannot be decrypted "
        "without it; set CALLGUARD_RECORDING_KEY in production",
        key_id,
        path,
    )
    return key_id, key


def load_keyring(settings: Any) -> Keyring:
    """From ``pipelines.settings.Settings`` (read by attribute name)."""
    keys: dict[str, bytes] = {}
    for key_id, value in dict(getattr(settings, "recording_previous_keys", {}) or {}).items():
        keys[str(key_id)] = _decode(str(value), f"recording_previous_keys[{key_id}]")
    configured = str(getattr(settings, "recording_key", "") or "")
    data_dir = Path(settings.data_dir)
    if configured:
        key = _decode(configured, "recording_key")
        current = str(getattr(settings, "recording_key_id", "") or "") or key_fingerprint(key)
        keys[current] = key
        # files sealed earlier with the development key stay readable
        if (data_dir / KEY_FILE).exists():
            dev_id, dev_key = _read_key_file(data_dir / KEY_FILE)
            keys.setdefault(dev_id, dev_key)
    else:
        current, key = local_key(data_dir)
        keys[current] = key
    return Keyring(current_id=current, keys=keys)
