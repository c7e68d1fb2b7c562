"""Thin faust wiring for recording consent and recording assembly (the rules live in
``pipelines.core.consent`` and ``pipelines.core.recording``).

One agent reads, co-partitioned by call id: audio chunks, call events, CDRs and the clock
ticks.  Two changelog-backed tables hold small per-call state: ``consent`` (the consent check)
and ``recording`` (sequence bookkeeping, the spool's committed length, Kafka offsets).  Audio
payloads never enter a table: each accepted chunk is appended, encrypted, to the leg's spool
file (:mod:`connectors.recordings.spool`); a finished leg is assembled from its spool, written
as an encrypted WAV into the recording store, and described by a ``calls.recordings`` row.

**Crash safety.**  A chunk's table update commits together with its offset (exactly-once);
the spool append does not.  So before every append (and before assembling) the spool is
compared with the committed length in the table.  A longer spool has a tail the table does
not know: each spool record names its Kafka offset, so records for offsets from the current
one on (Kafka is delivering them again) are cut, and records for earlier offsets (never
delivered again: the table fell behind) are kept and folded into the state.  A shorter or
missing spool (the partition moved to another machine, a disk was lost) is rebuilt from the
audio topic between the leg's first and last committed offsets.  Finally, before a leg with
missing sequence numbers is stored they are looked up on the audio topic (faust was seen to
skip a run of messages in the rebalance after a restart); only audio that never reached Kafka
stays a gap.  Every chunk already on Kafka is in the recording.  A finished leg's spool is kept for
``spool_keep`` so that a replay right after finishing still finds it; storing a leg twice
overwrites the same file with the same audio.

Outputs are at-least-once like every stream here: decision ids and recording ids are
deterministic, and ClickHouse keeps one row per id.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from typing import Any

import faust
import numpy as np
from faust.types import EventT, StreamT

from connectors.kafka.topics import TopicCatalog
from connectors.recordings.crypto import Keyring, seal
from connectors.recordings.kafka import ChunkReplay
from connectors.recordings.spool import FILE_HEADER, Spool, SpoolCorrupt, SpooledChunk
from connectors.recordings.store import RecordingStore
from connectors.recordings.wav import FORMAT, wav_bytes
from pipelines.core import consent
from pipelines.core import recording as rec
from pipelines.recording import wire
from pipelines.streaming import (
    Clock,
    DeadLetters,
    PartitionedState,
    guarded,
    raw_topic,
    send_record,
    split_ticks,
)
from schemas.codec import MalformedMessage, decode
from schemas.records import AudioChunk, CallEvent, Cdr

CONSUMER = "recording"
log = logging.getLogger(__name__)


def chunk_pcm(chunk: AudioChunk) -> bytes:
    """The chunk's audio as 16-bit little-endian mono PCM."""
    if chunk.channels != 1:
        raise ValueError("only mono audio chunks can be recorded")
    raw = base64.b64decode(chunk.payload_b64)
    if chunk.encoding == "pcm_s16le":
        return raw[: len(raw) - len(raw) % 2]
    from connectors.asterisk.rtp import ALAW_TO_PCM, ULAW_TO_PCM

    table = ULAW_TO_PCM if chunk.encoding == "ulaw" else ALAW_TO_PCM
    return bytes(table[np.frombuffer(raw, dtype=np.uint8)].astype("<i2").tobytes())


class LegWriter:
    """The blocking half (spool files, replay, assembly, the store); runs in threads."""

    def __init__(
        self,
        spool: Spool,
        store: RecordingStore,
        keyring: Keyring,
        replay: ChunkReplay,
    ) -> None:
        self.spool = spool
        self.store = store
        self.keyring = keyring
        self.replay = replay
        self.rebuilds = 0
        self.cut_tails = 0
        self.folded = 0
        self.repaired = 0
        self.repair_max_messages = 2_000_000

    def sync(
        self,
        call_id: str,
        leg: str,
        committed: int,
        where: tuple[int, int, int],
        before_offset: int | None,
    ) -> list[tuple[SpooledChunk, int]]:
        """Make the spool agree with the committed length in the table (see module doc).

        Shorter: rebuilt from the audio topic.  Longer: records for offsets at or after
        ``before_offset`` (Kafka delivers those again, starting now) and an incomplete last
        record are cut; records for earlier offsets will never be delivered again, so they are
        kept and returned, with where each ends, for the stream to fold into its state.
        ``before_offset`` None keeps every complete record.
        """
        actual = self.spool.size(call_id, leg)
        if actual == committed:
            return []
        if actual < committed:
            self.rebuild(call_id, leg, committed, *where)
            return []
        start = max(committed, FILE_HEADER)
        try:
            records = self.spool.tail(call_id, leg, start)
        except SpoolCorrupt as exc:
            log.error("call %s %s: unreadable spool tail dropped (%s)", call_id, leg, exc)
            records = []
        kept = []
        for chunk, _, end in records:
            if before_offset is not None and chunk.offset >= before_offset:
                break
            kept.append((chunk, end))
        keep_to = kept[-1][1] if kept else committed
        if keep_to < actual:
            log.info(
                "call %s %s: cutting %d spool bytes Kafka delivers again",
                call_id,
                leg,
                actual - keep_to,
            )
            self.spool.truncate(call_id, leg, keep_to if keep_to > FILE_HEADER else 0)
            self.cut_tails += 1
        if kept:
            log.warning(
                "call %s %s: the table was %d chunk(s) behind the spool, for offsets Kafka will "
                "not deliver again; kept them",
                call_id,
                leg,
                len(kept),
            )
            self.folded += len(kept)
        return kept

    def rebuild(
        self, call_id: str, leg: str, committed: int, partition: int, first: int, last: int
    ) -> None:
        log.warning(
            "call %s %s: spool has %d of %d committed bytes; rebuilding from the audio topic "
            "(partition %d, offsets %d-%d)",
            call_id,
            leg,
            self.spool.size(call_id, leg),
            committed,
            partition,
            first,
            last,
        )
        self.spool.reset(call_id, leg)
        self.rebuilds += 1
        if first < 0:
            return
        state: rec.RecordingState | None = None
        for offset, value in self.replay.read(partition, first, last):
            try:
                chunk = decode(AudioChunk, value)
            except MalformedMessage:
                continue
            if chunk.call_id != call_id or chunk.leg != leg:
                continue
            seen = wire.chunk_seen(chunk, offset)
            state, verdict = rec.on_chunk(state, seen, 0, chunk.sample_rate)
            if verdict == rec.APPEND:
                size = self.spool.append(call_id, leg, spooled(chunk, offset))
                state, _ = rec.appended(state, seen, size)
        rebuilt = self.spool.size(call_id, leg)
        track = state.leg(leg) if state is not None else None
        count = track.chunks if track is not None else 0
        log.info("call %s %s: rebuilt %d chunk(s), %d bytes", call_id, leg, count, rebuilt)
        if rebuilt != committed:
            log.error(
                "call %s %s: rebuilt spool has %d bytes, the table says %d",
                call_id,
                leg,
                rebuilt,
                committed,
            )

    def repair(
        self,
        call_id: str,
        leg: str,
        holes: tuple[tuple[int, int], ...],
        partition: int,
        low: int,
        high: int,
    ) -> list[tuple[SpooledChunk, int]]:
        """Look for the leg's missing sequence numbers on the audio topic between two offsets
        and append what is there to the spool (returned, with where each ends, for the state).

        A hole at finishing time is either audio that never reached Kafka (a real gap, kept
        and reported) or a chunk this worker never got from its consumer: faust (0.15) was seen
        to skip a run of messages in the rebalance after a restart.  Reading Kafka tells the
        two apart.  Bounded by ``repair_max_messages``.
        """
        wanted = {seq for start, end in holes for seq in range(start, end)}
        if not wanted or high < low:
            return []
        if high - low + 1 > self.repair_max_messages:
            log.warning(
                "call %s %s: %d chunk(s) missing; %d messages to search is over the limit, "
                "not searched",
                call_id,
                leg,
                len(wanted),
                high - low + 1,
            )
            return []
        found: list[tuple[SpooledChunk, int]] = []
        for offset, value in self.replay.read(partition, low, high):
            try:
                chunk = decode(AudioChunk, value)
            except MalformedMessage:
                continue
            if chunk.call_id != call_id or chunk.leg != leg or chunk.seq not in wanted:
                continue
            wanted.discard(chunk.seq)
            piece = spooled(chunk, offset)
            found.append((piece, self.spool.append(call_id, leg, piece)))
        self.repaired += len(found)
        log.warning(
            "call %s %s: %d missing chunk(s) found on the audio topic and added; %d not on Kafka",
            call_id,
            leg,
            len(found),
            len(wanted),
        )
        return found

    def store_leg(
        self,
        plan: rec.FinishPlan,
        partition: int,
        meta: dict[str, Any],
        now_ms: int,
    ) -> rec.StoredLeg | None:
        """Assemble the leg from its spool and store it sealed; None when there is no audio.
        The stream has folded the spool's tail into its state already (``sync``)."""
        where = (partition, plan.first_offset, plan.last_offset)
        if self.spool.size(plan.call_id, plan.leg) < plan.spool_bytes:
            self.rebuild(plan.call_id, plan.leg, plan.spool_bytes, *where)
        try:
            chunks = self.spool.read(plan.call_id, plan.leg, plan.spool_bytes)
        except SpoolCorrupt as exc:
            log.warning("call %s %s: spool unreadable (%s)", plan.call_id, plan.leg, exc)
            self.rebuild(plan.call_id, plan.leg, plan.spool_bytes, *where)
            rebuilt = self.spool.size(plan.call_id, plan.leg)
            chunks = self.spool.read(plan.call_id, plan.leg, rebuilt)
        assembled = rec.assemble(
            (rec.Piece(c.seq, c.start_ms, c.duration_ms, c.lost_packets, c.pcm) for c in chunks),
            sample_rate=plan.sample_rate,
            window_start_ms=plan.window_start_ms,
        )
        if assembled.duration_ms <= 0:
            return None
        audio = wav_bytes(assembled.pcm, assembled.sample_rate)
        digest = hashlib.sha256(audio).hexdigest()
        retention_until = assembled.started_ms + plan.retention_ms
        header = {
            **meta,
            "recording_id": rec.recording_id(plan.call_id, plan.leg),
            "call_id": plan.call_id,
            "leg": plan.leg,
            "mode": plan.mode,
            "started_ms": assembled.started_ms,
            "duration_ms": assembled.duration_ms,
            "sample_rate": assembled.sample_rate,
            "chunk_count": assembled.chunk_count,
            "duplicate_chunks": assembled.duplicate_chunks + plan.duplicate_chunks,
            "missing_chunks": assembled.missing_chunks,
            "lost_packets": assembled.lost_packets,
            "gap_count": len(assembled.gaps),
            "gap_duration_ms": assembled.gap_duration_ms,
            "gaps": assembled.gaps_json(),
            "finish_reason": plan.reason,
            "sha256": digest,
            "format": FORMAT,
            "retention_until_ms": retention_until,
            "stored_ms": now_ms,
        }
        stored = self.store.put(plan.call_id, plan.leg, seal(self.keyring, header, audio))
        log.info(
            "call %s %s: stored %.1f s (%d chunks, %d gaps, %d ms missing) at %s",
            plan.call_id,
            plan.leg,
            assembled.duration_ms / 1000,
            assembled.chunk_count,
            len(assembled.gaps),
            assembled.gap_duration_ms,
            stored.location,
        )
        return rec.stored_leg(
            assembled,
            sha256=digest,
            key_id=stored.header.key_id,
            path=stored.location,
            size_bytes=stored.size_bytes,
            fmt=FORMAT,
            retention_ms=plan.retention_ms,
            now_ms=now_ms,
            dropped_duplicates=plan.duplicate_chunks,
        )


def spooled(chunk: AudioChunk, offset: int) -> SpooledChunk:
    return SpooledChunk(
        seq=chunk.seq,
        start_ms=chunk.start_ms,
        duration_ms=chunk.duration_ms,
        lost_packets=chunk.lost_packets,
        sample_rate=chunk.sample_rate,
        pcm=chunk_pcm(chunk),
        offset=offset,
        final=chunk.final,
    )


def register(
    app: faust.App,
    catalog: TopicCatalog,
    dead_letters: DeadLetters,
    clock: Clock,
    *,
    book: consent.PolicyBook,
    writer: LegWriter,
    timing: rec.Timing,
    idle_limit_ms: int,
) -> Any:
    source = raw_topic(
        app,
        catalog.audio,
        catalog.call_events,
        catalog.cdr,
        catalog.ticks,
        partitions=catalog.partitions,
    )
    decisions = raw_topic(app, catalog.decisions)
    rows = raw_topic(app, catalog.recordings)
    consents = PartitionedState(
        app,
        "consent",
        catalog.partitions,
        consent.ConsentState.to_dict,
        consent.ConsentState.from_dict,
    )
    recordings = PartitionedState(
        app,
        "recording",
        catalog.partitions,
        rec.RecordingState.to_dict,
        rec.RecordingState.from_dict,
    )

    async def emit_consent(out: list[consent.ConsentDecision]) -> None:
        for made in out:
            if made.violation:
                # an alert: ids and the rule only, never audio or what was said
                log.warning(
                    "ALERT consent %s: call %s department %s%s: %s",
                    made.kind,
                    made.call_id,
                    made.department or "?",
                    f" leg {made.leg}" if made.leg else "",
                    made.reason,
                )
            await send_record(decisions, made.call_id, wire.consent_decision(made))

    async def emit_recording(out: list[rec.Output]) -> None:
        for item in out:
            if isinstance(item, rec.RecordingRow):
                await send_record(rows, item.call_id, wire.recording(item))
            else:
                if item.kind == rec.RECORDING_SHORTFALL:
                    log.warning("ALERT recording shortfall: call %s: %s", item.call_id, item.reason)
                await send_record(decisions, item.call_id, wire.recording_decision(item))

    def save_consent(partition: int, call_id: str, state: consent.ConsentState | None) -> None:
        if state is None:
            consents.delete(call_id)
        else:
            consents.put(partition, call_id, state)

    async def consent_step(partition: int, obs: consent.Observation, now_ms: int) -> None:
        old = consents.get(obs.call_id)
        new, out = consent.step(old, obs, now_ms, book)
        if new is not old:
            save_consent(partition, obs.call_id, new)
        for made in out:
            if made.kind == consent.START_RECORDING:
                window = rec.WindowSeen(made.call_id, made.window_start_ms)
                state = rec.on_window(recordings.get(made.call_id), window, now_ms)
                recordings.put(partition, made.call_id, state)
        await emit_consent(out)

    async def reconcile(
        partition: int,
        state: rec.RecordingState | None,
        call_id: str,
        leg: str,
        before_offset: int | None,
        now_ms: int,
    ) -> tuple[rec.RecordingState | None, list[str]]:
        """The leg's spool and its committed state made to agree (``LegWriter.sync``); records
        kept from the spool's tail are folded into the state.  Returns the state and the legs
        whose first audio this brought (for the consent check)."""
        track = state.leg(leg) if state is not None else None
        if track is not None and track.finished:
            return state, []  # stored already; its spool may be gone on purpose
        committed = track.spool_bytes if track is not None else 0
        if writer.spool.size(call_id, leg) == committed:
            return state, []
        where = (partition, track.first_offset, track.last_offset) if track else (partition, -1, -1)
        kept = await asyncio.to_thread(writer.sync, call_id, leg, committed, where, before_offset)
        first: list[str] = []
        for chunk, end in kept:
            seen = rec.ChunkSeen(
                call_id,
                leg,
                chunk.seq,
                chunk.start_ms,
                chunk.duration_ms,
                chunk.lost_packets,
                chunk.final,
                chunk.offset,
                state.origin if state is not None else "",
            )
            state, verdict = rec.on_chunk(state, seen, now_ms, chunk.sample_rate)
            if verdict == rec.APPEND:
                state, is_first = rec.appended(state, seen, end)
                first += [leg] if is_first else []
            else:
                state = rec.spool_length(state, leg, end)
        if state is not None and kept:
            recordings.put(partition, call_id, state)
        return state, first

    async def announce_audio(
        partition: int, state: rec.RecordingState, legs: list[str], now_ms: int
    ) -> None:
        for leg in legs:
            track = state.leg(leg)
            if track is not None and track.first_audio_ms:
                audio = consent.AudioSeen(state.call_id, leg, track.first_audio_ms)
                await consent_step(partition, audio, now_ms)

    async def repair(
        partition: int, state: rec.RecordingState, leg: str, now_ms: int
    ) -> tuple[rec.RecordingState, list[str]]:
        """Fill the leg's holes from Kafka where the chunks are there (``LegWriter.repair``)."""
        track = state.leg(leg)
        if track is None or not track.holes or track.first_offset < 0:
            return state, []
        low = track.first_offset
        if track.holes[0][0] == 0 and track.first_audio_ms:
            # the leg's first chunks are missing: they were produced before the first one seen
            earlier = track.first_audio_ms - 60_000
            low = min(
                low, await asyncio.to_thread(writer.replay.offset_for_time, partition, earlier)
            )
        found = await asyncio.to_thread(
            writer.repair, state.call_id, leg, track.holes, partition, low, track.last_offset
        )
        first: list[str] = []
        for chunk, end in found:
            seen = rec.ChunkSeen(
                state.call_id,
                leg,
                chunk.seq,
                chunk.start_ms,
                chunk.duration_ms,
                chunk.lost_packets,
                chunk.final,
                chunk.offset,
                state.origin,
            )
            state, verdict = rec.on_chunk(state, seen, now_ms, chunk.sample_rate)
            if verdict == rec.APPEND:
                state, is_first = rec.appended(state, seen, end)
                first += [leg] if is_first else []
            else:
                state = rec.spool_length(state, leg, end)
        if found:
            recordings.put(partition, state.call_id, state)
        return state, first

    async def finish(partition: int, call_id: str, leg: str, reason: str, now_ms: int) -> None:
        state, first = await reconcile(
            partition, recordings.get(call_id), call_id, leg, None, now_ms
        )
        if state is None:
            return
        if rec.finish_plan(state, leg, reason, book).store:
            state, more = await repair(partition, state, leg, now_ms)
            first += more
        await announce_audio(partition, state, first, now_ms)
        plan = rec.finish_plan(state, leg, reason, book)
        stored = None
        if plan.store:
            meta = {"department": state.department, "origin": state.origin or "asterisk"}
            stored = await asyncio.to_thread(writer.store_leg, plan, partition, meta, now_ms)
        state, out = rec.leg_finished(state, leg, reason, stored, now_ms, book)
        recordings.put(partition, call_id, state)
        await emit_recording(out)

    async def on_chunk(event: EventT, chunk: AudioChunk) -> None:
        now_ms = clock()
        partition, offset = event.message.partition, event.message.offset
        seen = wire.chunk_seen(chunk, offset)
        before, first = await reconcile(
            partition, recordings.get(chunk.call_id), chunk.call_id, chunk.leg, offset, now_ms
        )
        state, verdict = rec.on_chunk(before, seen, now_ms, chunk.sample_rate)
        out: list[rec.Output] = []
        if verdict == rec.APPEND:
            # a small append (one sealed chunk): done inline, no thread hop per chunk
            size = writer.spool.append(chunk.call_id, chunk.leg, spooled(chunk, offset))
            state, is_first = rec.appended(state, seen, size)
            first += [chunk.leg] if is_first else []
        elif verdict == rec.LATE:
            state, out = rec.late_chunk_report(state, chunk.leg, now_ms)
        if verdict in (rec.DUPLICATE, rec.LATE):
            log.info(
                "call %s %s: chunk %d at offset %d is a %s",
                chunk.call_id,
                chunk.leg,
                chunk.seq,
                offset,
                "repeat" if verdict == rec.DUPLICATE else "late arrival, after the leg was stored",
            )
        recordings.put(partition, chunk.call_id, state)
        await emit_recording(out)
        await announce_audio(partition, state, first, now_ms)
        if verdict != rec.LATE:
            for leg, reason in rec.ready(state, now_ms, timing):
                if leg == chunk.leg and reason == "final_chunk":
                    try:
                        await finish(partition, chunk.call_id, leg, reason, now_ms)
                    except Exception:  # the chunk itself is safe; the next tick retries
                        log.exception(
                            "call %s %s: storing the recording failed", chunk.call_id, leg
                        )

    async def on_call_event(event: EventT, record: CallEvent) -> None:
        now_ms = clock()
        partition = event.message.partition
        await consent_step(partition, wire.consent_seen(record), now_ms)
        old = recordings.get(record.call_id)
        new = rec.on_call(old, wire.call_seen(record), now_ms, book)
        if new is not old:
            recordings.put(partition, record.call_id, new)

    async def on_cdr(event: EventT, record: Cdr) -> None:
        now_ms = clock()
        state, out = rec.on_cdr(recordings.get(record.call_id), wire.cdr_seen(record), now_ms, book)
        recordings.put(event.message.partition, record.call_id, state)
        await emit_recording(out)

    async def on_tick(partition: int, now_ms: int) -> None:
        for call_id in consents.keys_in(partition):
            state = consents.get(call_id)
            if state is None:
                consents.delete(call_id)
                continue
            new, out = consent.due(state, now_ms)
            await emit_consent(out)
            save_consent(partition, call_id, consent.expire(new, now_ms, idle_limit_ms))
        for call_id in recordings.keys_in(partition):
            current = recordings.get(call_id)
            if current is None:
                recordings.delete(call_id)
                continue
            for leg, reason in rec.ready(current, now_ms, timing):
                try:
                    await finish(partition, call_id, leg, reason, now_ms)
                except Exception:  # e.g. a full disk: retried on the next tick
                    log.exception("call %s %s: storing the recording failed", call_id, leg)
            current = recordings.get(call_id) or current
            gone = rec.spools_to_delete(current, now_ms, timing)
            for leg in gone:
                writer.spool.delete(call_id, leg)
                current = rec.spool_deleted(current, leg)
            kept = rec.expire(current, now_ms, timing)
            if kept is None:
                recordings.delete(call_id)
            elif gone:
                recordings.put(partition, call_id, kept)

    def dispatch(event: EventT) -> Any:
        """Decode (MalformedMessage for a bad message) and return the message's work."""
        topic = event.message.topic
        if topic == catalog.audio:
            return on_chunk(event, decode(AudioChunk, event.value))
        if topic == catalog.cdr:
            return on_cdr(event, decode(Cdr, event.value))
        return on_call_event(event, decode(CallEvent, event.value))

    @app.agent(source, name="callguard.recording")
    async def record_calls(stream: StreamT) -> None:
        async for event in split_ticks(stream, catalog.ticks, on_tick):
            try:
                work = dispatch(event)
            except MalformedMessage as error:
                await dead_letters.reject(event, CONSUMER, error)
                continue
            await guarded(event, dead_letters, CONSUMER, work)

    return record_calls
