"""Access to recordings, and their destruction when retention ends — both audited.

* :meth:`RecordingAccess.fetch` decrypts one recording for an authorised role only.  Every
  attempt becomes a ``calls.recording-audit`` record (who, when, why, result); a granted
  access is audited *before* anything is decrypted, and when the audit record cannot be
  delivered nothing is decrypted.
* :meth:`RecordingAccess.purge` destroys every recording whose retention has ended (overwrite,
  unlink), audits each deletion and publishes a final ``calls.recordings`` version of its row
  with ``deleted_ms`` set.  A deletion whose audit record cannot be delivered stops the purge;
  the record waits in the outbox's pending file for the next run.

Roles come from the settings (``recording_access_roles``, and optionally
``recording_role_members`` to tie a role to named users).  A role named on the command line is
a claim: the real gate is who can read the key (``recording.key`` is 0600, production keys come
from a secret store); the audit trail names the operating-system user as well.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.recordings.crypto import Header, Keyring, RecordingCryptoError, open_sealed
from connectors.recordings.kafka import Outbox
from connectors.recordings.store import RecordingNotFound, RecordingStore, StoredObject
from schemas.records import Recording, RecordingAudit

ROW_DEFAULTS: dict[str, Any] = {
    "cdr_seen": False,
    "cdr_billsec_s": 0.0,
    "expected_duration_ms": 0,
    "shortfall_duration_ms": 0,
    "shortfall": False,
}


class AccessRefused(PermissionError):
    pass


@dataclass(frozen=True)
class AccessPolicy:
    roles: tuple[str, ...]
    members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def refusal(self, role: str, actor: str) -> str:
        """Why ``actor`` may not act as ``role`` ("" = allowed)."""
        if role not in self.roles:
            return f"role {role!r} may not access recordings (allowed: {', '.join(self.roles)})"
        allowed = self.members.get(role)
        if allowed and actor not in allowed:
            return f"user {actor!r} is not a member of role {role!r}"
        return ""


@dataclass(frozen=True)
class PurgeItem:
    call_id: str
    leg: str
    retention_until_ms: int
    location: str
    deleted: bool


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


class RecordingAccess:
    def __init__(
        self,
        store: RecordingStore,
        keyring: Keyring | None,
        outbox: Outbox,
        *,
        audit_topic: str,
        recordings_topic: str,
        policy: AccessPolicy,
        clock: Callable[[], int],
        host: str = "",
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.outbox = outbox
        self.audit_topic = audit_topic
        self.recordings_topic = recordings_topic
        self.policy = policy
        self.clock = clock
        self.host = host

    def _audit(
        self,
        call_id: str,
        leg: str,
        action: str,
        result: str,
        *,
        actor: str,
        role: str,
        reason: str,
        detail: str = "",
        recording_sha256: str = "",
    ) -> None:
        record = RecordingAudit(
            audit_id=str(uuid.uuid4()),
            call_id=call_id,
            leg=leg,
            action=action,
            result=result,
            actor=actor,
            role=role,
            reason=reason,
            ts_ms=self.clock(),
            host=self.host,
            detail=detail,
            recording_sha256=recording_sha256,
        )
        self.outbox.send(self.audit_topic, call_id, record)

    def fetch(
        self, call_id: str, leg: str, *, actor: str, role: str, reason: str
    ) -> tuple[Header, bytes]:
        """The decrypted audio (a WAV file's bytes) and its header; see module doc."""
        who = {"actor": actor, "role": role, "reason": reason.strip()}  # as audited
        why = "" if reason.strip() else "a reason is required"
        why = why or self.policy.refusal(role, actor)
        if why:
            self._audit(call_id, leg, "access", "refused", detail=why, **who)
            raise AccessRefused(why)
        found = self.store.head(call_id, leg)
        if found is None:
            self._audit(call_id, leg, "access", "failed", detail="no such recording", **who)
            raise RecordingNotFound(f"no {leg} recording for call {call_id}")
        sha = str(found.header.meta.get("sha256", ""))
        # granted: on the record before a single byte is decrypted (raises if undeliverable)
        self._audit(call_id, leg, "access", "granted", recording_sha256=sha, **who)
        if self.keyring is None:
            raise RecordingCryptoError("no keyring")
        try:
            return open_sealed(self.keyring, self.store.get(call_id, leg))
        except (RecordingCryptoError, RecordingNotFound) as exc:
            self._audit(
                call_id, leg, "access", "failed", detail=str(exc), recording_sha256=sha, **who
            )
            raise

    def deleted_row(
        self, obj: StoredObject, now_ms: int, current: Mapping[str, Any] | None
    ) -> Recording:
        """The last version of a purged recording's row: what its header and the table knew."""
        meta = dict(obj.header.meta)
        fields = Recording._options.fields
        data: dict[str, Any] = {k: v for k, v in meta.items() if k in fields}
        data.update({k: v for k, v in (current or {}).items() if k in ROW_DEFAULTS})
        for key, value in ROW_DEFAULTS.items():
            data.setdefault(key, value)
        data.update(
            call_id=obj.call_id,
            leg=obj.leg,
            key_id=obj.header.key_id,
            path=obj.location,
            size_bytes=obj.size_bytes,
            ts_ms=now_ms,
            deleted_ms=now_ms,
        )
        data.setdefault("origin", "asterisk")
        return Recording(**data)

    def purge(
        self,
        *,
        expired_by_ms: int,
        dry_run: bool,
        actor: str,
        current_row: Callable[[str, str], Mapping[str, Any] | None] = lambda c, leg: None,
    ) -> list[PurgeItem]:
        """Destroy every recording expired at ``expired_by_ms`` (see module doc)."""
        items: list[PurgeItem] = []
        for obj in self.store.list_expired(expired_by_ms):
            item = PurgeItem(obj.call_id, obj.leg, obj.retention_until_ms, obj.location, False)
            if dry_run:
                items.append(item)
                continue
            current = current_row(obj.call_id, obj.leg)
            if not self.store.delete(obj.call_id, obj.leg):
                continue  # gone meanwhile (another purge)
            now_ms = self.clock()
            items.append(
                PurgeItem(item.call_id, item.leg, item.retention_until_ms, item.location, True)
            )
            self._audit(
                obj.call_id,
                obj.leg,
                "delete",
                "deleted",
                actor=actor,
                role="retention",
                reason=f"retention ended {iso(obj.retention_until_ms)}",
                detail="overwritten and unlinked",
                recording_sha256=str(obj.header.meta.get("sha256", "")),
            )
            self.outbox.send(
                self.recordings_topic, obj.call_id, self.deleted_row(obj, now_ms, current)
            )
        return items
