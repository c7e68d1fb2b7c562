"""The recording agent: audio chunks + call events + CDRs + ticks → encrypted recordings,
``calls.recordings`` rows, consent and completeness decisions; crash recovery of the spool."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest

from connectors.recordings.crypto import open_sealed
from connectors.recordings.store import LocalRecordingStore
from connectors.recordings.wav import read_wav
from pipelines.recording.keys import load_keyring
from pipelines.settings import Settings
from pipelines.ticks import encode_tick
from schemas.codec import encode
from schemas.records import AudioChunk, Cdr, DeadLetter, Decision, Recording
from tests.agents.conftest import Clock, Sent, put_on_topic
from tests.samples import T0, call_event

AGENT = "callguard.recording"
S = 1000
MS = 200
PER = MS * 8  # samples per chunk


def pcm(seq: int, leg: str) -> bytes:
    value = seq + 1 if leg == "caller" else -(seq + 1)
    return struct.pack(f"<{PER}h", *([value] * PER))


def chunk(
    call_id: str, seq: int, leg: str = "caller", final: bool = False, **kw: Any
) -> AudioChunk:
    start = kw.pop("start_ms", T0 + 10 * S + seq * MS)
    return AudioChunk(
        call_id=call_id,
        leg=leg,
        seq=seq,
        start_ms=start,
        duration_ms=MS,
        sample_rate=8000,
        encoding="pcm_s16le",
        channels=1,
        payload_b64=base64.b64encode(pcm(seq, leg)).decode(),
        final=final,
        origin="simulator",
        **kw,
    )


class Call:
    """Drives one call through the agent the way the PBX connector would."""

    def __init__(
        self, ctx: Any, catalog: Any, clock: Clock, call_id: str, department: str = "traffic"
    ) -> None:
        self.ctx, self.catalog, self.clock = ctx, catalog, clock
        self.call_id, self.department = call_id, department
        self.n = 0
        self.audio_log: list[tuple[int, bytes]] = []  # (offset, value) of every audio message

    async def event(self, type_: str, at: int, **kw: Any) -> None:
        self.n += 1
        self.clock.now_ms = max(self.clock.now_ms, at)
        record = call_event(
            call_id=self.call_id, event_id=f"{self.call_id}-{self.n}", type_=type_, ts_ms=at, **kw
        )
        record.department = self.department
        await self.ctx.put(key=self.call_id.encode(), value=encode(record))

    async def connect(self, notice: bool = True, bridged_at: int = T0 + 10 * S) -> None:
        await self.event("call_started", T0)
        if notice:
            await self.event(
                "notice_started", T0 + 100, leg="caller", attrs={"notice": "consent-notice"}
            )
            await self.event(
                "notice_finished", T0 + 6 * S, leg="caller", attrs={"notice": "consent-notice"}
            )
        await self.event("answered", bridged_at, leg="staff")
        await self.event("bridged", bridged_at)

    async def audio(self, record: AudioChunk) -> None:
        value = encode(record)
        self.audio_log.append((self.ctx.sent_offset, value))
        self.clock.now_ms = max(self.clock.now_ms, record.start_ms + MS)
        await put_on_topic(self.ctx, self.catalog.audio, self.call_id.encode(), value)
        await self.settle()

    async def settle(self) -> None:
        """faust's test context returns once the agent *took* a message, not when it finished
        with it (storing a leg awaits a thread); one more message, a tick for a partition
        without calls, waits for that."""
        tick = encode_tick(self.clock.now_ms)
        await put_on_topic(self.ctx, self.catalog.ticks, b"tick", tick, partition=1)

    async def cdr(self, billsec_s: float, end: int) -> None:
        record = Cdr(
            call_id=self.call_id,
            direction="inbound",
            department=self.department,
            caller="010-0000-1234",
            callee="1100",
            presented_caller_id="",
            start_ms=T0,
            answer_ms=T0 + 10 * S,
            end_ms=end,
            duration_s=(end - T0) / 1000,
            billsec_s=billsec_s,
            disposition="ANSWERED",
            origin="simulator",
        )
        await put_on_topic(self.ctx, self.catalog.cdr, self.call_id.encode(), encode(record))
        await self.settle()

    async def tick(self, at: int) -> None:
        self.clock.now_ms = at
        await put_on_topic(self.ctx, self.catalog.ticks, b"tick", encode_tick(at))
        await self.settle()


class FakeReplay:
    """The audio topic as the rebuild path reads it back."""

    def __init__(self) -> None:
        self.log: list[tuple[int, bytes]] = []
        self.reads: list[tuple[int, int, int]] = []

    def read(self, partition: int, first: int, last: int) -> Iterator[tuple[int, bytes | None]]:
        self.reads.append((partition, first, last))
        yield from ((o, v) for o, v in self.log if first <= o <= last)

    def offset_for_time(self, partition: int, ts_ms: int) -> int:
        return 0


@pytest.fixture(autouse=True)
def writer(app: faust.App) -> Any:
    """The app's writer, reading "Kafka" from a fake (agent tests have no broker)."""
    app.conf.recording_writer.replay = FakeReplay()
    return app.conf.recording_writer


def stored(settings: Settings, call_id: str, leg: str = "caller") -> tuple[dict[str, Any], bytes]:
    sealed = LocalRecordingStore(settings.recordings_path).get(call_id, leg)
    header, wav = open_sealed(load_keyring(settings), sealed)
    samples, rate = read_wav(wav)
    assert rate == 8000
    return dict(header.meta), samples


def kinds(sent: Sent, catalog: Any) -> list[str]:
    return [
        f"{d.stream}:{d.kind}" + (f"/{d.attrs['leg']}" if "leg" in d.attrs else "")
        for d in sent.records(catalog.decisions, Decision)
    ]


async def test_a_full_mode_call_is_stored_encrypted_with_its_gaps_reported(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock, settings: Settings
) -> None:
    async with app.agents[AGENT].test_context() as ctx:
        call = Call(ctx, catalog, clock, "rec-1")
        await call.connect()
        for seq in (0, 1, 3, 2, 2, 5, 6):  # 2 late, 2 again, 4 never
            await call.audio(chunk("rec-1", seq))
        await call.audio(chunk("rec-1", 7, final=True))
        for seq in range(8):
            await call.audio(chunk("rec-1", seq, "staff", final=seq == 7))
        await call.event("hangup", T0 + 12 * S)
        await call.cdr(billsec_s=1.6, end=T0 + 11_600)
    rows = sent.records(catalog.recordings, Recording)
    caller = [r for r in rows if r.leg == "caller"]
    assert [r.cdr_seen for r in caller] == [False, True]  # stored, then completed by the CDR
    first, final = caller
    assert first.recording_id == final.recording_id and final.ts_ms >= first.ts_ms
    assert (final.chunk_count, final.duplicate_chunks, final.missing_chunks) == (7, 1, 1)
    assert (final.gap_count, final.gap_duration_ms, final.duration_ms) == (1, 200, 1600)
    assert final.gaps == '[[800,200,200,"missing",1]]'
    assert (
        final.mode == "full"
        and final.department == "traffic"
        and final.finish_reason == "final_chunk"
    )
    assert (final.expected_duration_ms, final.shortfall_duration_ms, final.shortfall) == (
        1600,
        200,
        False,
    )
    assert final.retention_until_ms == final.started_ms + 90 * 86_400_000
    meta, samples = stored(settings, "rec-1")
    assert meta["sha256"] == final.sha256 and final.path.endswith("rec-1/caller.cgrec")
    expected = b"".join(pcm(s, "caller") if s != 4 else bytes(2 * PER) for s in range(8))
    assert samples == expected  # in order, the missing chunk silent, nothing twice
    assert stored(settings, "rec-1", "staff")[1] == b"".join(pcm(s, "staff") for s in range(8))
    assert kinds(sent, catalog) == ["recording:recording_gaps/caller"]  # no consent violation
    assert sent.on(catalog.dead_letters) == []


async def test_no_consent_notice_and_late_or_missing_audio_are_alerts(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock
) -> None:
    async with app.agents[AGENT].test_context() as ctx:
        call = Call(ctx, catalog, clock, "rec-2")
        await call.connect(notice=False)
        await call.audio(chunk("rec-2", 0, start_ms=T0 + 15 * S))  # 5 s after the bridge
        await call.tick(T0 + 10 * S + 31 * S)  # no staff audio 30 s after the bridge
    decisions = sent.records(catalog.decisions, Decision)
    assert kinds(sent, catalog) == [
        "consent:consent_missing",
        "consent:recording_late/caller",
        "consent:recording_missing/staff",
    ]
    assert all(d.attrs["severity"] == "alert" and d.department == "traffic" for d in decisions)
    assert decisions[1].attrs["late_ms"] == "5000"


async def test_key_press_department_keeps_audio_from_the_staff_key_only(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock, settings: Settings
) -> None:
    async with app.agents[AGENT].test_context() as ctx:
        call = Call(ctx, catalog, clock, "rec-3", department="welfare")
        await call.connect(notice=False)
        for seq in range(3):
            await call.audio(chunk("rec-3", seq))
        key_at = T0 + 10 * S + 3 * MS  # = start of chunk 3
        await call.event("dtmf", key_at - 300, leg="staff", digit="*")
        await call.event("dtmf", key_at, leg="staff", digit="1")
        for seq in range(3, 6):
            await call.audio(chunk("rec-3", seq, final=seq == 5))
    (start,) = sent.records(catalog.decisions, Decision)
    assert (start.stream, start.kind, start.actor) == ("consent", "start_recording", "staff")
    (row,) = sent.records(catalog.recordings, Recording)
    assert row.mode == "key_press" and row.started_ms == key_at and row.duration_ms == 600
    assert stored(settings, "rec-3")[1] == b"".join(pcm(s, "caller") for s in range(3, 6))


async def test_departments_that_do_not_record_store_nothing(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock, settings: Settings, writer: Any
) -> None:
    async with app.agents[AGENT].test_context() as ctx:
        for call_id, department in (("rec-4", "tax"), ("rec-5", "welfare")):
            call = Call(ctx, catalog, clock, call_id, department=department)
            await call.connect(notice=False)  # welfare: key never pressed
            for seq in range(3):
                await call.audio(chunk(call_id, seq, final=seq == 2))
        await call.tick(clock.now_ms + 31 * S)  # the spools' keep time is over
    assert sent.on(catalog.recordings) == [] and sent.on(catalog.decisions) == []
    assert LocalRecordingStore(settings.recordings_path).list() == []
    assert not writer.spool.path("rec-4", "caller").exists()  # tax: never spooled
    assert not writer.spool.path("rec-5", "caller").exists()  # welfare: spooled, then deleted


async def test_an_uncommitted_spool_tail_is_cut_when_the_chunk_is_replayed(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock, settings: Settings, writer: Any
) -> None:
    """A worker died after appending chunk 3 to the spool but before its table update
    committed: the restarted worker gets chunk 3 again (same offset), with the table saying
    'up to 2'.  The spool's record for it is cut and written again: once."""
    table = app.tables["recording"]
    async with app.agents[AGENT].test_context() as ctx:
        call = Call(ctx, catalog, clock, "rec-6")
        await call.connect()
        for seq in range(3):
            await call.audio(chunk("rec-6", seq))
        committed = dict(table.data["rec-6"])
        offset = ctx.sent_offset
        await call.audio(chunk("rec-6", 3))
        spool_after_3 = writer.spool.size("rec-6", "caller")
        table.data["rec-6"] = committed  # the changelog had only the first three
        ctx.sent_offset = offset  # Kafka delivers chunk 3 again, at its own offset
        await call.audio(chunk("rec-6", 3))
        assert writer.spool.size("rec-6", "caller") == spool_after_3  # cut, then appended again
        await call.audio(chunk("rec-6", 4, final=True))
    (row,) = sent.records(catalog.recordings, Recording)
    assert (row.chunk_count, row.duplicate_chunks, row.gap_count) == (5, 0, 0)
    assert stored(settings, "rec-6")[1] == b"".join(pcm(s, "caller") for s in range(5))
    assert (writer.cut_tails, writer.folded, writer.rebuilds) == (1, 0, 0)


async def test_a_table_behind_its_spool_keeps_chunks_kafka_will_not_deliver_again(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock, settings: Settings, writer: Any
) -> None:
    """The table lost chunk 3's update but its offset is past (not delivered again): the spool
    record is the only copy, so it is kept and folded into the state, not cut."""
    table = app.tables["recording"]
    async with app.agents[AGENT].test_context() as ctx:
        call = Call(ctx, catalog, clock, "rec-12")
        await call.connect()
        for seq in range(3):
            await call.audio(chunk("rec-12", seq))
        committed = dict(table.data["rec-12"])
        await call.audio(chunk("rec-12", 3))
        table.data["rec-12"] = committed
        await call.audio(chunk("rec-12", 4, final=True))  # chunk 3 never comes again
    (row,) = sent.records(catalog.recordings, Recording)
    assert (row.chunk_count, row.missing_chunks, row.gap_count) == (5, 0, 0)
    assert stored(settings, "rec-12")[1] == b"".join(pcm(s, "caller") for s in range(5))
    assert (writer.cut_tails, writer.folded) == (0, 1)


async def test_a_lost_spool_is_rebuilt_from_the_audio_topic(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock, settings: Settings, writer: Any
) -> None:
    """The partition moved to a machine without the spool: every committed chunk comes back
    from Kafka (between the leg's first and last committed offsets)."""
    replay = FakeReplay()
    writer.replay = replay
    async with app.agents[AGENT].test_context() as ctx:
        call = Call(ctx, catalog, clock, "rec-7")
        other = Call(ctx, catalog, clock, "rec-other")  # interleaved on the same partition
        await call.connect()
        for seq in range(4):
            await call.audio(chunk("rec-7", seq))
            await other.audio(chunk("rec-other", seq))
        await call.audio(chunk("rec-7", 2))  # a duplicate stays a duplicate after rebuilding
        replay.log = sorted(call.audio_log + other.audio_log)
        writer.spool.delete("rec-7", "caller")
        await call.audio(chunk("rec-7", 4))
        await call.audio(chunk("rec-7", 5, final=True))
    ((partition, first, last),) = replay.reads
    assert partition == 0 and first == call.audio_log[0][0] and last == call.audio_log[3][0]
    (row,) = sent.records(catalog.recordings, Recording)
    assert (row.chunk_count, row.gap_count) == (6, 0)
    assert stored(settings, "rec-7")[1] == b"".join(pcm(s, "caller") for s in range(6))
    assert writer.rebuilds == 1


async def test_legs_without_a_final_chunk_finish_after_the_hangup_grace(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock
) -> None:
    async with app.agents[AGENT].test_context() as ctx:
        call = Call(ctx, catalog, clock, "rec-8")
        await call.connect()
        for seq in range(3):
            await call.audio(chunk("rec-8", seq))
            await call.audio(chunk("rec-8", seq, "staff"))
        await call.event("hangup", T0 + 11 * S)
        await call.tick(T0 + 11 * S + 4 * S)
        assert sent.on(catalog.recordings) == []
        await call.tick(T0 + 11 * S + 6 * S)
        await call.audio(chunk("rec-8", 3))  # after it was stored: reported, not hidden
    rows = sent.records(catalog.recordings, Recording)
    assert sorted((r.leg, r.finish_reason) for r in rows) == [
        ("caller", "hangup"),
        ("staff", "hangup"),
    ]
    assert kinds(sent, catalog) == ["recording:recording_late_chunks/caller"]


async def test_a_short_recording_against_the_cdr_is_an_alert(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock
) -> None:
    async with app.agents[AGENT].test_context() as ctx:
        call = Call(ctx, catalog, clock, "rec-9")
        await call.connect()
        await call.cdr(billsec_s=30.0, end=T0 + 40 * S)  # the CDR first this time
        for seq in range(5):
            await call.audio(chunk("rec-9", seq, final=seq == 4))
    (row,) = sent.records(catalog.recordings, Recording)
    assert row.cdr_seen and row.shortfall and row.shortfall_duration_ms == 29_000
    (alert,) = sent.records(catalog.decisions, Decision)
    assert (alert.stream, alert.kind, alert.attrs["severity"]) == (
        "recording",
        "recording_shortfall",
        "alert",
    )


async def test_malformed_messages_are_dead_lettered_and_the_stream_carries_on(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock
) -> None:
    async with app.agents[AGENT].test_context() as ctx:
        await put_on_topic(ctx, catalog.audio, b"x", b"not json")
        await put_on_topic(ctx, catalog.cdr, b"x", b'{"call_id": 1}')
        await ctx.put(key=b"x", value=b"")
        stereo = chunk("rec-10", 0)
        stereo.channels = 2
        call = Call(ctx, catalog, clock, "rec-10")
        await call.connect()
        await call.audio(stereo)  # decodes, but cannot be recorded: processing failure
        await call.audio(chunk("rec-10", 1, final=True))
    letters = sent.records(catalog.dead_letters, DeadLetter)
    assert [d.consumer for d in letters] == ["recording"] * 4
    assert [d.error_type for d in letters] == ["json", "schema", "empty", "processing"]
    (row,) = sent.records(catalog.recordings, Recording)
    assert row.chunk_count == 1 and row.missing_chunks == 1  # seq 0 never made it: reported


def test_the_writer_is_reachable_for_tests(app: faust.App, tmp_path: Path) -> None:
    assert app.conf.recording_writer.store.root == Path(tmp_path) / "recordings"


async def test_a_failed_store_is_retried_on_the_next_tick(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock, settings: Settings, writer: Any
) -> None:
    real_put = writer.store.put
    failures: list[str] = []

    def full_disk(call_id: str, leg: str, sealed: bytes) -> Any:
        if not failures:
            failures.append(call_id)
            raise OSError(28, "No space left on device")
        return real_put(call_id, leg, sealed)

    writer.store.put = full_disk
    async with app.agents[AGENT].test_context() as ctx:
        call = Call(ctx, catalog, clock, "rec-11")
        await call.connect()
        for seq in range(3):
            await call.audio(chunk("rec-11", seq, final=seq == 2))
        assert sent.on(catalog.recordings) == [] and failures == ["rec-11"]
        await call.tick(clock.now_ms + 5 * S)
    (row,) = sent.records(catalog.recordings, Recording)
    assert row.chunk_count == 3 and row.finish_reason == "final_chunk"
    assert stored(settings, "rec-11")[1] == b"".join(pcm(s, "caller") for s in range(3))
    assert sent.on(catalog.dead_letters) == []  # the chunks were fine; only the disk was not


async def test_chunks_the_consumer_skipped_are_fetched_from_kafka_before_storing(
    app: faust.App, catalog: Any, sent: Sent, clock: Clock, settings: Settings, writer: Any
) -> None:
    """After a restart faust was seen to skip a run of messages; at finishing time the leg's
    holes are looked up on the audio topic, and only what is not there stays a gap."""
    replay = FakeReplay()
    writer.replay = replay
    async with app.agents[AGENT].test_context() as ctx:
        call = Call(ctx, catalog, clock, "rec-13")
        await call.connect()
        for seq in (0, 1, 2):
            await call.audio(chunk("rec-13", seq))
        skipped = [(ctx.sent_offset + i, encode(chunk("rec-13", 3 + i))) for i in range(3)]
        ctx.sent_offset += 3  # on Kafka, never handed to the agent
        replay.log = sorted(call.audio_log + skipped)
        await call.audio(chunk("rec-13", 7, final=True))  # 6 never reached Kafka at all
    (row,) = sent.records(catalog.recordings, Recording)
    assert (row.chunk_count, row.missing_chunks, row.gap_count) == (7, 1, 1)
    assert row.gaps == '[[1200,200,200,"missing",1]]'  # seq 6 only
    expected = b"".join(pcm(s, "caller") if s != 6 else bytes(2 * PER) for s in range(8))
    assert stored(settings, "rec-13")[1] == expected
    assert writer.repaired == 3
