"""``callguard recordings``: list, authorised and audited access, purge after retention.

Registered on the main command in :mod:`pipelines.cli`.  Audio and transcripts are never
printed or logged; ``get`` writes the decrypted WAV only to the file named with ``--out``.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from pipelines.settings import Settings


def _settings(ctx: click.Context) -> Settings:
    return ctx.ensure_object(dict)["settings"]  # type: ignore[no-any-return]


def now_ms() -> int:
    return int(time.time() * 1000)


def parse_instant(value: str) -> int:
    """Epoch milliseconds, or an ISO date/time (UTC unless it names a zone)."""
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("give epoch milliseconds or an ISO date/time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _outbox(settings: Settings) -> Any:
    """The Kafka outbox (tests replace this function)."""
    from connectors.recordings.kafka import KafkaOutbox

    return KafkaOutbox(
        settings.kafka_bootstrap, pending_path=settings.data_dir / "recording-audit.pending.jsonl"
    )


class _NoOutbox:
    """For a dry run: nothing may be sent (and no broker is contacted)."""

    def send(self, topic: str, key: str, record: Any) -> None:
        raise RuntimeError("a dry run sends nothing")


def _access(settings: Settings, *, with_keys: bool, dry_run: bool = False) -> Any:
    from connectors.recordings.store import LocalRecordingStore
    from pipelines.app import catalog_for
    from pipelines.recording.access import AccessPolicy, RecordingAccess
    from pipelines.recording.keys import load_keyring

    catalog = catalog_for(settings)
    outbox = _NoOutbox() if dry_run else _outbox(settings)
    resend = getattr(outbox, "resend_pending", None)
    if resend is not None:
        sent = resend()
        if sent:
            click.echo(f"sent {sent} audit record(s) left over from an earlier run", err=True)
    return RecordingAccess(
        LocalRecordingStore(settings.recordings_path),
        load_keyring(settings) if with_keys else None,
        outbox,
        audit_topic=catalog.recording_audit,
        recordings_topic=catalog.recordings,
        policy=AccessPolicy(
            roles=tuple(settings.recording_access_roles),
            members={k: tuple(v) for k, v in settings.recording_role_members.items()},
        ),
        clock=now_ms,
        host=socket.gethostname(),
    )


def _current_row(settings: Settings) -> Any:
    """Look up a recording's row in ClickHouse (for its CDR fields); None when unavailable."""

    readers: list[Any] = []

    def lookup(call_id: str, leg: str) -> Mapping[str, Any] | None:
        from connectors.clickhouse.reader import open_reader

        quoted = call_id.replace("\\", "\\\\").replace("'", "\\'")
        try:
            if not readers:
                readers.append(
                    open_reader(
                        settings.clickhouse_dsn, settings.clickhouse_database, settings.query_port
                    )
                )
            result = readers[0].query(
                "SELECT cdr_seen, cdr_billsec_s, expected_duration_ms, shortfall_duration_ms, "
                f"shortfall FROM recordings FINAL WHERE call_id = '{quoted}' AND leg = '{leg}'"
            )
        except Exception:  # noqa: BLE001 - the header's facts are enough without it
            return None
        if not result.rows:
            return None
        return dict(zip(result.columns, result.rows[0], strict=True))

    return lookup


@click.group()
def recordings() -> None:
    """Call recordings: list them, decrypt one (authorised, audited), purge expired ones.

    \b
    Files: encrypted WAV (AES-256-GCM) under CALLGUARD_RECORDINGS_DIR (default
    <data_dir>/recordings); metadata in ClickHouse `recordings`; every access and deletion in
    `recording_audit` (via the calls.recording-audit topic).
    """


@recordings.command("list")
@click.option("--call-id", help="only this call")
@click.option("--expired", is_flag=True, help="only recordings whose retention has ended")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@click.pass_context
def recordings_list(ctx: click.Context, call_id: str | None, expired: bool, as_json: bool) -> None:
    """Recordings in the store (metadata only: no audio is decrypted)."""
    from connectors.recordings.store import LocalRecordingStore
    from pipelines.cli import print_result
    from pipelines.recording.access import iso

    store = LocalRecordingStore(_settings(ctx).recordings_path)
    found = store.list_expired(now_ms()) if expired else store.list(call_id)
    if call_id:
        found = [o for o in found if o.call_id == call_id]
    rows = []
    for obj in found:
        meta = obj.header.meta
        row = {
            "call_id": obj.call_id,
            "leg": obj.leg,
            "department": meta.get("department", ""),
            "mode": meta.get("mode", ""),
            "started": iso(int(meta.get("started_ms", 0))),
            "duration_s": round(int(meta.get("duration_ms", 0)) / 1000, 1),
            "gaps": meta.get("gap_count", 0),
            "gap_s": round(int(meta.get("gap_duration_ms", 0)) / 1000, 1),
            "retention_until": iso(obj.retention_until_ms),
            "key_id": obj.header.key_id,
            "bytes": obj.size_bytes,
        }
        rows.append(row)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    columns = list(rows[0]) if rows else []
    print_result(f"{len(rows)} recording(s)", columns, [list(r.values()) for r in rows])


@recordings.command("get")
@click.argument("call_id")
@click.option("--leg", type=click.Choice(["caller", "staff"]), default="caller", show_default=True)
@click.option("--reason", required=True, help="why the recording is needed (audited)")
@click.option("--role", required=True, help="the role you act in (see recording_access_roles)")
@click.option("--user", "user", help="who is asking (default: the operating-system user)")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="where to write the decrypted WAV (created 0600; never overwritten)",
)
@click.pass_context
def recordings_get(
    ctx: click.Context, call_id: str, leg: str, reason: str, role: str, user: str | None, out: Path
) -> None:
    """Decrypt one recording to a WAV file, for an authorised role; every attempt is audited."""
    from connectors.recordings.crypto import RecordingCryptoError
    from connectors.recordings.kafka import DeliveryFailed
    from connectors.recordings.store import RecordingNotFound
    from pipelines.recording.access import AccessRefused

    if out.exists():
        raise click.ClickException(f"{out} exists; choose a new file")
    settings = _settings(ctx)
    actor = user or getpass.getuser()
    try:
        access = _access(settings, with_keys=True)
        header, audio = access.fetch(call_id, leg, actor=actor, role=role, reason=reason)
    except AccessRefused as exc:
        raise click.ClickException(f"refused (audited): {exc}") from None
    except RecordingNotFound as exc:
        raise click.ClickException(f"{exc.args[0]} (audited)") from None
    except DeliveryFailed as exc:
        raise click.ClickException(
            f"the access could not be audited ({exc}); nothing was decrypted"
        ) from None
    except RecordingCryptoError as exc:
        raise click.ClickException(f"the recording failed verification: {exc}") from None
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(audio)
    meta = header.meta
    click.echo(
        f"wrote {out} ({int(meta.get('duration_ms', 0)) / 1000:.1f} s, sha256 "
        f"{meta.get('sha256', '')}); access audited for {actor} as {role}"
    )


@recordings.command("purge")
@click.option(
    "--now",
    "now",
    help="purge what had expired by this moment (epoch ms or ISO time; not in the future "
    "unless --dry-run)",
)
@click.option("--dry-run", is_flag=True, help="list what would be destroyed; destroy nothing")
@click.option("--user", "user", help="who runs the purge (default: the operating-system user)")
@click.pass_context
def recordings_purge(ctx: click.Context, now: str | None, dry_run: bool, user: str | None) -> None:
    """Destroy every recording whose retention has ended (overwrite, unlink); each deletion is
    audited and its ClickHouse row marked deleted.  Irreversible.  Run it daily (cron/timer)."""
    from connectors.recordings.kafka import DeliveryFailed
    from pipelines.cli import print_result
    from pipelines.recording.access import iso

    settings = _settings(ctx)
    real_now = now_ms()
    cutoff = parse_instant(now) if now else real_now
    if cutoff > real_now and not dry_run:
        raise click.ClickException(
            "--now is in the future: that would destroy recordings before their retention "
            "ends (use --dry-run to preview)"
        )
    access = _access(settings, with_keys=False, dry_run=dry_run)
    actor = user or getpass.getuser()
    try:
        items = access.purge(
            expired_by_ms=cutoff,
            dry_run=dry_run,
            actor=actor,
            current_row=_current_row(settings),
        )
    except DeliveryFailed as exc:
        raise click.ClickException(
            f"stopped: a deletion could not be audited ({exc}); its record is kept in "
            f"{settings.data_dir / 'recording-audit.pending.jsonl'} for the next run"
        ) from None
    verb = "would delete" if dry_run else "deleted"
    print_result(
        f"{verb} {len(items)} recording(s) expired by {iso(cutoff)}",
        ["call_id", "leg", "retention_until", "location"],
        [[i.call_id, i.leg, iso(i.retention_until_ms), i.location] for i in items],
    )
