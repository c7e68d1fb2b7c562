"""Applying ``pbx.commands`` to live calls, once per ``command_id``.

Outcomes (:class:`CommandResult` ``status``):

* ``applied`` — done (``play`` with ``wait=true``: the playback finished).
* ``duplicate`` — this ``command_id`` was handled before (by this or an earlier process); the
  PBX is not touched again.  Remembered in a SQLite file under ``data_dir``.
* ``failed`` — valid, but impossible now: unknown call, call no longer active, the PBX refused.
* ``rejected`` — unusable arguments (missing media, bad sound name …).

When the PBX cannot be reached :class:`~connectors.asterisk.ari.PbxUnavailable` propagates and
nothing is recorded, so the service does not commit the Kafka offset and retries: no command is
lost across a PBX restart.  Between the PBX acting and the outcome being stored a crash can
still apply a command twice (at-least-once); the store makes that window one SQLite write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from connectors.asterisk.ari import AriError
from connectors.asterisk.callflow import CallFlow, CommandFailed, CommandRejected
from connectors.asterisk.model import wall_ms
from schemas.records import CommandResult, PbxCommand

log = logging.getLogger(__name__)

PLAY_TARGETS = ("call", "caller", "staff")
TRUE_WORDS = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class StoredOutcome:
    command_id: str
    status: str
    detail: str
    ts_ms: int


class CommandStore:
    """``applied(command_id PRIMARY KEY, status, detail, ts_ms)`` in a SQLite file."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path))
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS applied ("
            " command_id TEXT PRIMARY KEY, status TEXT NOT NULL,"
            " detail TEXT NOT NULL, ts_ms INTEGER NOT NULL)"
        )
        self._db.commit()

    def get(self, command_id: str) -> StoredOutcome | None:
        row = self._db.execute(
            "SELECT command_id, status, detail, ts_ms FROM applied WHERE command_id = ?",
            (command_id,),
        ).fetchone()
        return StoredOutcome(*row) if row else None

    def record(self, command_id: str, status: str, detail: str, ts_ms: int) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO applied (command_id, status, detail, ts_ms) VALUES (?, ?, ?, ?)",
            (command_id, status, detail, ts_ms),
        )
        self._db.commit()

    def prune(self, older_than_ms: int) -> int:
        """Forget outcomes older than a timestamp (commands topic retention bounds replays)."""
        cursor = self._db.execute("DELETE FROM applied WHERE ts_ms < ?", (older_than_ms,))
        self._db.commit()
        return cursor.rowcount

    def close(self) -> None:
        self._db.close()


class CommandApplier:
    """Carries out :class:`PbxCommand` records through the call flow's sessions."""

    def __init__(
        self,
        flow: CallFlow,
        store: CommandStore,
        *,
        now_ms: Callable[[], int] = wall_ms,
        playback_wait_s: float = 120.0,
        max_age_s: float | None = None,
    ) -> None:
        self.flow = flow
        self.store = store
        self.now_ms = now_ms
        self.playback_wait_s = playback_wait_s
        self.max_age_s = max_age_s

    def _result(self, command: PbxCommand, status: str, detail: str) -> CommandResult:
        return CommandResult(
            command_id=command.command_id,
            call_id=command.call_id,
            action=command.action,
            status=status,
            ts_ms=self.now_ms(),
            detail=detail,
        )

    async def apply(self, command: PbxCommand) -> CommandResult:
        """Apply once; raises PbxUnavailable (retry later) and nothing else for PBX trouble."""
        prior = self.store.get(command.command_id)
        if prior is not None:
            return self._result(command, "duplicate", f"already {prior.status}")
        if self.max_age_s is not None and self.now_ms() - command.issued_ms > self.max_age_s * 1000:
            status, detail = "failed", "expired before it could be applied"
        else:
            try:
                detail = await self._dispatch(command)
                status = "applied"
            except CommandRejected as exc:
                status, detail = "rejected", str(exc)
            except CommandFailed as exc:
                status, detail = "failed", str(exc)
            except AriError as exc:
                status, detail = "failed", f"PBX refused ({exc.status}): {exc.message}"
        result = self._result(command, status, detail)
        self.store.record(command.command_id, status, detail, result.ts_ms)
        log.info(
            "command %s (%s, call %s): %s %s",
            command.command_id,
            command.action,
            command.call_id,
            status,
            detail,
        )
        return result

    async def _dispatch(self, command: PbxCommand) -> str:
        args = dict(command.args)
        if command.action == "originate":
            return await self._originate(command, args)
        session = self.flow.sessions.get(command.call_id)
        if session is None:
            raise CommandFailed(
                "call not active" if self.flow.ended(command.call_id) else "unknown call"
            )
        if command.action == "play":
            media = args.get("media", "").strip()
            if not media:
                raise CommandRejected("play needs args.media")
            target = args.get("target", "call") or "call"
            if target not in PLAY_TARGETS:
                raise CommandRejected(f"play target must be one of {', '.join(PLAY_TARGETS)}")
            wait = args.get("wait", "").strip().lower() in TRUE_WORDS
            async with session.lock:
                done = await session.command_play(
                    media, target, command.command_id, command.command_id
                )
            if not wait:
                return f"playing {media} to {target}"
            return await self._await_playback(done, media)
        if command.action == "hangup":
            async with session.lock:
                await session.command_hangup(args.get("cause", "") or "normal", command.command_id)
            return "hung up"
        if command.action == "set_ringback":
            moh_class, tone = args.get("moh_class", "").strip(), args.get("tone", "").strip()
            if not moh_class and not tone:
                raise CommandRejected("set_ringback needs args.moh_class or args.tone")
            if moh_class and not moh_class.replace("_", "").replace("-", "").isalnum():
                raise CommandRejected("moh_class must be letters, digits, - and _")
            async with session.lock:
                return await session.command_set_ringback(
                    moh_class, tone=bool(tone) and not moh_class
                )
        if command.action == "start_recording":
            async with session.lock:
                return await session.command_start_recording(command.command_id)
        if command.action == "stop_recording":
            async with session.lock:
                return await session.command_stop_recording(command.command_id)
        raise CommandRejected(f"unsupported action {command.action!r}")

    async def _await_playback(self, done: asyncio.Future[str], media: str) -> str:
        try:
            state = await asyncio.wait_for(asyncio.shield(done), self.playback_wait_s)
        except TimeoutError:
            with contextlib.suppress(asyncio.CancelledError):
                done.cancel()
            raise CommandFailed(
                f"playback did not finish within {self.playback_wait_s:.0f} s"
            ) from None
        if state == "done":
            return f"played {media}"
        raise CommandFailed(f"playback ended: {state}")

    async def _originate(self, command: PbxCommand, args: dict[str, str]) -> str:
        endpoint = args.get("endpoint", "").strip()
        if not endpoint:
            raise CommandRejected("originate needs args.endpoint")
        session = await self.flow.originate(
            command.call_id,
            endpoint=endpoint,
            caller_id_number=args.get("caller_id_number", "").strip(),
            caller_id_name=args.get("caller_id_name", "").strip(),
            staff_endpoint=args.get("staff_endpoint", "").strip(),
            department=args.get("department", "").strip(),
        )
        staff = session.legs["staff"].endpoint
        return f"ringing staff endpoint {staff}, then {endpoint}"
