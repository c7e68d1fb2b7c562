"""RTP from Asterisk externalMedia → AudioChunk records: parsing, G.711, timing, loss, sockets."""

from __future__ import annotations

import asyncio
import base64
import socket
import struct
import warnings

import numpy as np
import pytest

from connectors.asterisk.rtp import (
    ALAW_TO_PCM,
    ULAW_TO_PCM,
    PortPool,
    PortsExhausted,
    RtpCapture,
    RtpChunker,
    RtpError,
    decode_g711,
    parse_rtp,
)
from schemas.codec import decode, encode
from schemas.records import AudioChunk

T0 = 1_795_000_000_000
SAMPLES = 160  # 20 ms at 8 kHz


def rtp(
    seq: int,
    ts: int,
    payload: bytes = b"\xff" * SAMPLES,
    *,
    pt: int = 0,
    ssrc: int = 0x1234,
    marker: bool = False,
    csrcs: tuple[int, ...] = (),
    extension: bytes | None = None,
    padding: int = 0,
) -> bytes:
    b0 = 0x80 | (0x20 if padding else 0) | (0x10 if extension is not None else 0) | len(csrcs)
    b1 = (0x80 if marker else 0) | pt
    out = struct.pack("!BBHII", b0, b1, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
    out += b"".join(struct.pack("!I", c) for c in csrcs)
    if extension is not None:
        assert len(extension) % 4 == 0
        out += struct.pack("!HH", 0xBEDE, len(extension) // 4) + extension
    out += payload
    if padding:
        out += b"\x00" * (padding - 1) + bytes([padding])
    return out


def pcm(chunk: AudioChunk) -> np.ndarray:
    return np.frombuffer(base64.b64decode(chunk.payload_b64), dtype="<i2")


def feed_stream(
    chunker: RtpChunker,
    count: int,
    *,
    first_seq: int = 0,
    first_ts: int = 0,
    skip: set[int] | None = None,
    payload_of=None,
) -> list[AudioChunk]:
    """``count`` consecutive 20 ms packets, arriving on time; ``skip`` = indexes never sent."""
    out: list[AudioChunk] = []
    for i in range(count):
        if skip and i in skip:
            continue
        payload = payload_of(i) if payload_of else b"\xff" * SAMPLES
        out += chunker.feed(rtp(first_seq + i, first_ts + i * SAMPLES, payload), T0 + i * 20)
    return out


# -- parsing -------------------------------------------------------------------------------


def test_parse_plain_header() -> None:
    packet = parse_rtp(rtp(7, 1234, b"\x01\x02", pt=8, ssrc=99, marker=True))
    assert (packet.version, packet.payload_type, packet.sequence, packet.timestamp) == (
        2,
        8,
        7,
        1234,
    )
    assert packet.ssrc == 99 and packet.marker and packet.payload == b"\x01\x02"


def test_parse_skips_csrcs_extension_and_padding() -> None:
    data = rtp(1, 2, b"abc", csrcs=(1, 2), extension=b"\x00" * 8, padding=3)
    packet = parse_rtp(data)
    assert packet.csrc_count == 2 and packet.extension and packet.padding
    assert packet.payload == b"abc"


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x00\x00",  # too short
        b"\x40" + b"\x00" * 11,  # version 1
        rtp(1, 2, b"ab", csrcs=(1,))[:14],  # CSRC list cut off
        b"\xa0" + b"\x00" * 11 + b"\x00",  # padding length 0
        b"\xa0" + b"\x00" * 11 + b"\x09",  # padding longer than the payload
    ],
)
def test_parse_rejects_broken_packets(data: bytes) -> None:
    with pytest.raises(RtpError):
        parse_rtp(data)


# -- G.711 ---------------------------------------------------------------------------------


def test_ulaw_known_values() -> None:
    known = {0x00: -32124, 0x0F: -16764, 0x7F: 0, 0x80: 32124, 0x8F: 16764, 0xF0: 120, 0xFE: 8}
    for byte, value in known.items():
        assert ULAW_TO_PCM[byte] == value
    assert ULAW_TO_PCM[0xFF] == 0
    assert decode_g711(bytes([0x00, 0x80, 0xFF]), 0).tolist() == [-32124, 32124, 0]


def test_alaw_known_values() -> None:
    known = {0x55: -8, 0xD5: 8, 0x2A: -32256, 0xAA: 32256, 0x00: -5504, 0x80: 5504}
    for byte, value in known.items():
        assert ALAW_TO_PCM[byte] == value
    assert decode_g711(bytes([0xD5, 0xAA]), 8).tolist() == [8, 32256]


def test_g711_tables_match_the_standard_library_reference() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # in the stdlib up to Python 3.12
    everything = bytes(range(256))
    ulaw = np.frombuffer(audioop.ulaw2lin(everything, 2), dtype="<i2")
    alaw = np.frombuffer(audioop.alaw2lin(everything, 2), dtype="<i2")
    assert (ulaw == ULAW_TO_PCM).all()
    assert (alaw == ALAW_TO_PCM).all()


def test_non_g711_payload_type_is_refused() -> None:
    with pytest.raises(RtpError):
        decode_g711(b"\x00", 101)


# -- chunking ------------------------------------------------------------------------------


def test_chunks_have_the_configured_length_and_wall_clock_starts() -> None:
    chunker = RtpChunker("call-1", "caller", chunk_ms=200)
    chunks = feed_stream(chunker, 25)  # 500 ms
    assert [c.seq for c in chunks] == [0, 1]
    assert [c.start_ms for c in chunks] == [T0, T0 + 200]
    for chunk in chunks:
        assert chunk.duration_ms == 200
        assert len(pcm(chunk)) == 1600
        assert (chunk.call_id, chunk.leg, chunk.origin) == ("call-1", "caller", "asterisk")
        assert (chunk.sample_rate, chunk.encoding, chunk.channels) == (8000, "pcm_s16le", 1)
        assert chunk.lost_packets == 0 and not chunk.final
        assert decode(AudioChunk, encode(chunk)).seq == chunk.seq  # valid on the wire


def test_start_ms_follows_rtp_time_not_arrival_jitter() -> None:
    chunker = RtpChunker("c", "staff", chunk_ms=100)
    out: list[AudioChunk] = []
    for i in range(10):
        jitter = (7, -3, 15, 0, 2)[i % 5]
        out += chunker.feed(rtp(i, i * SAMPLES), T0 + i * 20 + (jitter if i else 0))
    assert [c.start_ms for c in out] == [T0, T0 + 100]


def test_payload_is_decoded_pcm_in_order() -> None:
    chunker = RtpChunker("c", "caller", chunk_ms=40)  # two packets per chunk
    chunks = feed_stream(chunker, 2, payload_of=lambda i: bytes([0x80 if i == 0 else 0x00]) * 160)
    samples = pcm(chunks[0])
    assert samples[:160].tolist() == [32124] * 160
    assert samples[160:].tolist() == [-32124] * 160


def test_lost_packets_are_counted_in_the_chunk_where_the_gap_begins() -> None:
    chunker = RtpChunker("c", "caller", chunk_ms=200)  # 10 packets per chunk
    chunks = feed_stream(chunker, 30, skip={3, 4, 9, 10}, payload_of=lambda i: b"\x80" * SAMPLES)
    assert [c.lost_packets for c in chunks] == [4, 0, 0]
    assert chunker.stats.lost_packets == 4
    first = pcm(chunks[0])
    assert (first[3 * SAMPLES : 5 * SAMPLES] == 0).all()  # missing audio stays silent
    assert (first[: 3 * SAMPLES] == 32124).all()
    assert (pcm(chunks[1])[:SAMPLES] == 0).all()  # packet 10 lost: chunk 1 starts silent
    assert [c.start_ms for c in chunks] == [T0, T0 + 200, T0 + 400]


def test_loss_at_a_chunk_boundary_is_charged_to_the_next_chunk() -> None:
    chunker = RtpChunker("c", "caller", chunk_ms=200)
    chunks = feed_stream(chunker, 30, skip={10, 11})
    assert [c.lost_packets for c in chunks] == [0, 2, 0]


def test_sequence_and_timestamp_wrap_around() -> None:
    chunker = RtpChunker("c", "caller", chunk_ms=200)
    chunks = feed_stream(chunker, 20, first_seq=65530, first_ts=2**32 - 3 * SAMPLES)
    assert [c.lost_packets for c in chunks] == [0, 0]
    assert chunker.stats.late_packets == 0 and chunker.stats.restarts == 0
    assert [c.start_ms for c in chunks] == [T0, T0 + 200]


def test_loss_across_the_sequence_wrap_is_counted() -> None:
    chunker = RtpChunker("c", "caller", chunk_ms=200)
    chunks = feed_stream(chunker, 20, first_seq=65533, skip={2, 3, 4})  # 65535, 0, 1 lost
    assert sum(c.lost_packets for c in chunks) == 3
    assert chunker.stats.restarts == 0


def test_late_and_duplicate_packets_are_dropped() -> None:
    chunker = RtpChunker("c", "caller", chunk_ms=200)
    out = feed_stream(chunker, 5)
    out += chunker.feed(rtp(4, 4 * SAMPLES, b"\x00" * SAMPLES), T0 + 100)  # duplicate
    out += chunker.feed(rtp(2, 2 * SAMPLES, b"\x00" * SAMPLES), T0 + 101)  # late
    out += chunker.feed(rtp(65000, 0, b"\x00" * SAMPLES), T0 + 102)  # far in the past
    assert out == []
    assert chunker.stats.late_packets == 3
    (final,) = chunker.flush()
    assert (pcm(final) == 0).all()  # the dropped packets did not overwrite anything
    assert final.lost_packets == 0


def test_final_flush_emits_the_partial_chunk_once() -> None:
    chunker = RtpChunker("c", "staff", chunk_ms=200)
    chunks = feed_stream(chunker, 13)  # 260 ms: one full chunk + 60 ms pending
    (final,) = chunker.flush(final=True)
    assert [c.seq for c in chunks] == [0] and final.seq == 1
    assert final.final and final.duration_ms == 60 and len(pcm(final)) == 480
    assert final.start_ms == T0 + 200
    assert chunker.flush() == [] and chunker.finished
    assert chunker.feed(rtp(13, 13 * SAMPLES), T0 + 260) == []
    assert decode(AudioChunk, encode(final)).final


def test_final_flush_with_nothing_pending_is_an_empty_final_chunk() -> None:
    chunker = RtpChunker("c", "staff", chunk_ms=200)
    feed_stream(chunker, 10)  # exactly one chunk, already emitted
    (final,) = chunker.flush()
    assert final.final and final.seq == 1 and final.duration_ms == 0 and final.payload_b64 == ""
    assert final.start_ms == T0 + 200
    assert decode(AudioChunk, encode(final)).duration_ms == 0  # the schema allows it


def test_flush_without_any_packet_dates_the_final_chunk_now() -> None:
    (final,) = RtpChunker("c", "caller").flush(now_ms=T0 + 5)
    assert (final.seq, final.start_ms, final.duration_ms, final.final) == (0, T0 + 5, 0, True)


def test_non_final_flush_emits_only_pending_audio() -> None:
    chunker = RtpChunker("c", "caller", chunk_ms=200)
    assert chunker.flush(final=False) == []
    feed_stream(chunker, 3)
    (partial,) = chunker.flush(final=False)
    assert partial.duration_ms == 60 and not partial.final
    more = feed_stream(chunker, 10, first_seq=3, first_ts=3 * SAMPLES)
    assert more[0].seq == 1 and more[0].start_ms == T0 + 60


def test_new_ssrc_restarts_the_timeline() -> None:
    chunker = RtpChunker("c", "caller", chunk_ms=200)
    feed_stream(chunker, 4)  # 80 ms pending
    out = chunker.feed(rtp(900, 777_777, ssrc=0x9999), T0 + 5000)
    assert len(out) == 1 and out[0].duration_ms == 80 and out[0].lost_packets == 0
    later = [
        chunker.feed(rtp(900 + i, 777_777 + i * SAMPLES, ssrc=0x9999), T0) for i in range(1, 10)
    ]
    (chunk,) = [c for batch in later for c in batch]
    assert chunk.start_ms == T0 + 5000 and chunk.seq == 1 and chunk.lost_packets == 0
    assert chunker.stats.restarts == 1


def test_long_silence_gap_restarts_instead_of_emitting_silence() -> None:
    chunker = RtpChunker("c", "caller", chunk_ms=200, max_gap_ms=1000)
    feed_stream(chunker, 5)
    # next packet in sequence but 10 s later in media time (e.g. hold without RTP)
    out = chunker.feed(rtp(5, 5 * SAMPLES + 80_000), T0 + 10_100)
    assert [c.duration_ms for c in out] == [100]
    (final,) = chunker.flush()
    assert final.start_ms == T0 + 10_100 and final.duration_ms == 20


def test_short_gap_is_filled_with_silent_chunks() -> None:
    chunker = RtpChunker("c", "caller", chunk_ms=100, max_gap_ms=2000)
    feed_stream(chunker, 5)  # one chunk out
    out = chunker.feed(rtp(5, 5 * SAMPLES + 4 * 800), T0 + 500)  # timestamps skip 400 ms
    assert [c.start_ms for c in out] == [T0 + 100, T0 + 200, T0 + 300, T0 + 400]
    assert all((pcm(c) == 0).all() for c in out)


def test_other_payload_types_advance_the_sequence_without_audio() -> None:
    chunker = RtpChunker("c", "caller", chunk_ms=200)
    out = feed_stream(chunker, 3)
    out += chunker.feed(rtp(3, 3 * SAMPLES, b"\x01\x02\x03\x04", pt=101), T0 + 60)
    out += feed_stream(chunker, 7, first_seq=4, first_ts=4 * SAMPLES)
    assert chunker.stats.ignored_packets == 1 and chunker.stats.lost_packets == 0
    assert len(out) == 1 and out[0].lost_packets == 0


def test_pcma_stream() -> None:
    chunker = RtpChunker("c", "caller", chunk_ms=20)
    (chunk,) = chunker.feed(rtp(0, 0, b"\xd5" * SAMPLES, pt=8), T0)
    assert (pcm(chunk) == 8).all()


def test_garbage_datagrams_are_counted_not_raised() -> None:
    chunker = RtpChunker("c", "caller")
    assert chunker.feed(b"hello", T0) == []
    assert chunker.stats.bad_packets == 1


# -- ports and sockets ---------------------------------------------------------------------


def test_port_pool_round_robin_and_exhaustion() -> None:
    pool = PortPool(40000, 40002)
    assert [pool.acquire(), pool.acquire()] == [40000, 40001]
    pool.release(40000)
    assert pool.acquire() == 40002  # a just-released port is reused last
    assert pool.acquire() == 40000
    with pytest.raises(PortsExhausted):
        pool.acquire()
    with pytest.raises(ValueError):
        PortPool(10, 5)


def _free_udp_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


async def test_capture_receives_udp_and_flushes_on_close() -> None:
    emitted: list[AudioChunk] = []
    port = _free_udp_ports(1)[0]
    clock = iter(range(T0, T0 + 10_000, 20))
    capture = RtpCapture(
        "127.0.0.1",
        PortPool(port, port),
        emitted.append,
        chunk_ms=100,
        clock_ms=lambda: next(clock),
    )
    assert await capture.open("call-9", "staff") == port
    assert await capture.open("call-9", "staff") == port  # idempotent
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(7):
            sender.sendto(rtp(i, i * SAMPLES), ("127.0.0.1", port))
        stranger.sendto(rtp(7, 7 * SAMPLES, b"\x00" * SAMPLES), ("127.0.0.1", port))
        for _ in range(100):
            if emitted:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        receiver = capture.receivers[("call-9", "staff")]
        assert receiver.foreign_datagrams == 1
        await capture.close("call-9", "staff")
    finally:
        sender.close()
        stranger.close()
    assert [c.seq for c in emitted] == [0, 1]
    assert emitted[0].duration_ms == 100 and not emitted[0].final
    assert emitted[1].final and emitted[1].duration_ms == 40
    assert all(c.call_id == "call-9" and c.leg == "staff" for c in emitted)
    assert capture.receivers == {}
    assert capture.pool.acquire() == port  # released


async def test_capture_skips_ports_held_by_another_process() -> None:
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", 0))
    held = blocker.getsockname()[1]
    try:
        capture = RtpCapture("127.0.0.1", PortPool(held, held), lambda c: None)
        with pytest.raises(PortsExhausted):
            await capture.open("c", "caller")
    finally:
        blocker.close()


async def test_receiver_keeps_its_transport_and_close_frees_the_port() -> None:
    """Regression: on Python 3.11 an isinstance check dropped the UDP transport, so closing a
    receiver left its socket bound (one leaked port per call leg)."""
    import asyncio
    import socket

    from connectors.asterisk.rtp import RtpChunker, RtpReceiver

    loop = asyncio.get_running_loop()
    receiver = RtpReceiver(RtpChunker("c-1", "caller", chunk_ms=200), lambda chunk: None)
    transport, _ = await loop.create_datagram_endpoint(
        lambda: receiver, local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    assert receiver.transport is transport
    receiver.close()
    await asyncio.sleep(0.05)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", port))  # raises if the receiver's socket is still open
