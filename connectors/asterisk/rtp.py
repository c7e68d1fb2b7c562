"""Live audio from Asterisk ``externalMedia`` channels: RTP in, :class:`AudioChunk` records out.

Asterisk sends each leg's audio as G.711 RTP over UDP to a port of ours.  :class:`RtpChunker`
(pure, no sockets, no clock) turns those packets into fixed-length chunks of 16-bit PCM:

* **Timing.**  A chunk covers ``chunk_ms`` of *media* time.  The first packet anchors media
  time to the wall clock (its arrival time); every later sample sits at
  ``anchor + (rtp_timestamp - first_timestamp) / 8 kHz``.  So ``start_ms`` is the wall time of
  the chunk's first sample without network jitter, and consecutive chunks are exactly
  ``chunk_ms`` apart.  The drift of the PBX's sample clock against ours (ppm) is ignored.
* **Loss.**  Gaps in the 16-bit RTP sequence number (wrap-around aware) count as lost packets,
  charged to the chunk in which the gap begins; their samples stay silent (zeros) so the
  timeline does not shift.  Late and duplicate packets are dropped: the chunk they belong to
  may already be on Kafka.
* **Discontinuities.**  A new SSRC, a sequence jump of more than ``MAX_SEQ_JUMP`` packets, a
  timestamp going backwards or jumping ahead by more than ``max_gap_ms`` restarts the timeline
  at the packet's arrival time (the pending samples go out first as a short chunk).  A restart
  counts no loss by itself; packets missing by sequence number still count.

:class:`RtpReceiver` is the asyncio UDP side, :class:`PortPool` hands out ports from the
configured range, and :class:`RtpCapture` ties one receiver per call leg to an emit callback.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from connectors.asterisk.model import ORIGIN, wall_ms
from schemas.records import AudioChunk

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
SAMPLES_PER_MS = SAMPLE_RATE // 1000
PT_PCMU = 0
PT_PCMA = 8
#: a forward sequence jump larger than this is a restarted stream, not loss (≈ 60 s at 20 ms)
MAX_SEQ_JUMP = 3000


class RtpError(ValueError):
    """A datagram that is not a usable RTP packet."""


@dataclass(frozen=True)
class RtpPacket:
    version: int
    padding: bool
    extension: bool
    csrc_count: int
    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse an RTP packet (RFC 3550): fixed header, CSRCs, header extension and padding."""
    if len(data) < 12:
        raise RtpError("shorter than an RTP header")
    b0, b1 = data[0], data[1]
    version = b0 >> 6
    if version != 2:
        raise RtpError(f"RTP version {version}, expected 2")
    padding = bool(b0 & 0x20)
    extension = bool(b0 & 0x10)
    csrc_count = b0 & 0x0F
    offset = 12 + 4 * csrc_count
    if len(data) < offset:
        raise RtpError("truncated CSRC list")
    if extension:
        if len(data) < offset + 4:
            raise RtpError("truncated header extension")
        words = int.from_bytes(data[offset + 2 : offset + 4], "big")
        offset += 4 + 4 * words
        if len(data) < offset:
            raise RtpError("truncated header extension")
    end = len(data)
    if padding:
        pad = data[-1]
        if pad == 0 or pad > end - offset:
            raise RtpError("bad padding length")
        end -= pad
    return RtpPacket(
        version=version,
        padding=padding,
        extension=extension,
        csrc_count=csrc_count,
        marker=bool(b1 & 0x80),
        payload_type=b1 & 0x7F,
        sequence=int.from_bytes(data[2:4], "big"),
        timestamp=int.from_bytes(data[4:8], "big"),
        ssrc=int.from_bytes(data[8:12], "big"),
        payload=bytes(data[offset:end]),
    )


def _ulaw_table() -> np.ndarray:
    """ITU-T G.711 μ-law byte → linear int16 (the classic Sun/CCITT expansion)."""
    u = (~np.arange(256, dtype=np.int32)) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> np.ndarray:
    """ITU-T G.711 A-law byte → linear int16 (even bits inverted, sign bit set = positive)."""
    a = np.arange(256, dtype=np.int32) ^ 0x55
    sign = a & 0x80
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    shifted = ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, shifted)
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


ULAW_TO_PCM = _ulaw_table()
ALAW_TO_PCM = _alaw_table()
_DECODERS = {PT_PCMU: ULAW_TO_PCM, PT_PCMA: ALAW_TO_PCM}


def decode_g711(payload: bytes, payload_type: int) -> np.ndarray:
    """PCMU (PT 0) or PCMA (PT 8) payload → int16 samples."""
    table = _DECODERS.get(payload_type)
    if table is None:
        raise RtpError(f"payload type {payload_type} is not G.711")
    return table[np.frombuffer(payload, dtype=np.uint8)]


@dataclass
class ChunkerStats:
    packets: int = 0
    lost_packets: int = 0
    late_packets: int = 0  # late or duplicate: dropped
    ignored_packets: int = 0  # other payload types (comfort noise, DTMF events)
    bad_packets: int = 0
    restarts: int = 0
    chunks: int = 0


class RtpChunker:
    """One leg's RTP stream → :class:`AudioChunk` records of ``chunk_ms`` (see module doc)."""

    def __init__(
        self,
        call_id: str,
        leg: str,
        *,
        chunk_ms: int = 200,
        origin: str = ORIGIN,
        max_gap_ms: int = 2000,
    ) -> None:
        if chunk_ms <= 0:
            raise ValueError("chunk_ms must be positive")
        self.call_id = call_id
        self.leg = leg
        self.chunk_ms = chunk_ms
        self.origin = origin
        self.samples_per_chunk = chunk_ms * SAMPLES_PER_MS
        self.max_gap_samples = max_gap_ms * SAMPLES_PER_MS
        self.stats = ChunkerStats()
        self._next_seq = 0
        self._finished = False
        self._anchored = False
        self._ssrc = -1
        self._max_seq = 0  # extended (wrap-counting) highest sequence number seen
        self._last_ts = 0  # extended timestamp of the packet with the highest sequence
        self._anchor_ts = 0  # extended timestamp of sample 0 of the current timeline
        self._anchor_wall_ms = 0
        self._chunk_start = 0  # sample index (since anchor) where the pending chunk starts
        self._buf = np.zeros(self.samples_per_chunk, dtype=np.int16)
        self._filled = 0  # samples of the pending chunk up to the last one written
        self._lost = 0  # lost packets charged to the pending chunk

    @property
    def finished(self) -> bool:
        return self._finished

    # -- input ------------------------------------------------------------------------------

    def feed(self, data: bytes, arrival_ms: int) -> list[AudioChunk]:
        """Take one datagram received at ``arrival_ms``; return the chunks it completed."""
        if self._finished:
            return []
        try:
            packet = parse_rtp(data)
        except RtpError:
            self.stats.bad_packets += 1
            return []
        self.stats.packets += 1
        out: list[AudioChunk] = []
        if not self._anchored or packet.ssrc != self._ssrc:
            out += self._restart(packet, arrival_ms)
        else:
            delta = (packet.sequence - self._max_seq) & 0xFFFF
            if delta == 0 or delta >= 0x8000:
                self.stats.late_packets += 1
                return out
            if delta > MAX_SEQ_JUMP:
                out += self._restart(packet, arrival_ms)
            else:
                self._max_seq += delta
                self._lost += delta - 1
                self.stats.lost_packets += delta - 1
                ts_delta = (packet.timestamp - self._last_ts) & 0xFFFFFFFF
                if ts_delta >= 0x80000000:  # timestamp went backwards: a new timeline
                    out += self._restart(packet, arrival_ms, keep_seq=True)
                else:
                    self._last_ts += ts_delta
                    gap = self._last_ts - self._anchor_ts - (self._chunk_start + self._filled)
                    if gap > self.max_gap_samples:
                        out += self._restart(packet, arrival_ms, keep_seq=True)
        if packet.payload_type not in _DECODERS:
            self.stats.ignored_packets += 1
            return out
        samples = decode_g711(packet.payload, packet.payload_type)
        out += self._place(self._last_ts - self._anchor_ts, samples)
        return out

    def _restart(
        self, packet: RtpPacket, arrival_ms: int, keep_seq: bool = False
    ) -> list[AudioChunk]:
        """Start a new timeline at ``packet``; pending samples go out first as a short chunk."""
        out: list[AudioChunk] = []
        if self._anchored:
            self.stats.restarts += 1
            if self._filled or self._lost:
                out.append(self._emit(self._filled, final=False))
        self._anchored = True
        self._ssrc = packet.ssrc
        if not keep_seq:
            self._max_seq = packet.sequence
        # only timestamp differences matter, so the new timeline simply starts at this packet
        self._last_ts = packet.timestamp
        self._anchor_ts = packet.timestamp
        self._anchor_wall_ms = arrival_ms
        self._chunk_start = 0
        self._filled = 0
        self._buf[:] = 0
        return out

    def _place(self, offset: int, samples: np.ndarray) -> list[AudioChunk]:
        """Write ``samples`` at ``offset`` (samples since the anchor), emitting full chunks."""
        out: list[AudioChunk] = []
        rel = offset - self._chunk_start
        if rel < 0:  # the start belongs to a chunk already sent
            samples = samples[-rel:]
            rel = 0
        n = self.samples_per_chunk
        while len(samples):
            if rel >= n:  # the packet starts after this chunk: close it (silence-padded)
                out.append(self._emit(n, final=False))
                rel -= n
                continue
            take = min(n - rel, len(samples))
            self._buf[rel : rel + take] = samples[:take]
            self._filled = max(self._filled, rel + take)
            samples = samples[take:]
            rel += take
            if rel >= n:
                out.append(self._emit(n, final=False))
                rel -= n
        return out

    # -- output -----------------------------------------------------------------------------

    def _emit(self, length: int, *, final: bool, now_ms: int | None = None) -> AudioChunk:
        start_ms = (
            self._anchor_wall_ms + self._chunk_start // SAMPLES_PER_MS
            if self._anchored
            else (now_ms or 0)
        )
        pcm = self._buf[:length].astype("<i2").tobytes()
        chunk = AudioChunk(
            call_id=self.call_id,
            leg=self.leg,
            seq=self._next_seq,
            start_ms=start_ms,
            duration_ms=length * 1000 // SAMPLE_RATE,
            sample_rate=SAMPLE_RATE,
            encoding="pcm_s16le",
            channels=1,
            payload_b64=base64.b64encode(pcm).decode("ascii"),
            lost_packets=self._lost,
            final=final,
            origin=self.origin,
        )
        self._next_seq += 1
        self._chunk_start += length
        self._filled = 0
        self._lost = 0
        self._buf[:] = 0
        self.stats.chunks += 1
        return chunk

    def flush(self, final: bool = True, now_ms: int | None = None) -> list[AudioChunk]:
        """Emit what is pending.

        ``final=True`` ends the leg: exactly one chunk marked final goes out even when nothing
        is pending (then with an empty payload and ``duration_ms`` 0, which the schema
        allows), so the audio tracker always learns that the leg ended.  ``now_ms`` dates it
        when no packet ever arrived.  ``final=False`` emits a pending partial chunk, if any.
        """
        if self._finished:
            return []
        if final:
            self._finished = True
            return [self._emit(self._filled, final=True, now_ms=now_ms)]
        if self._filled or self._lost:
            return [self._emit(self._filled, final=False)]
        return []


# -- sockets ---------------------------------------------------------------------------------


class PortsExhausted(RuntimeError):
    """Every port of the RTP range is in use."""


@dataclass
class PortPool:
    """UDP ports for ``externalMedia`` receivers, handed out round-robin.

    Round-robin rather than lowest-free: a port released a moment ago may still receive the
    tail of the previous call's packets, so it is reused as late as possible.
    """

    low: int
    high: int
    _in_use: set[int] = field(default_factory=set)
    _next: int = -1

    def __post_init__(self) -> None:
        if not 0 < self.low <= self.high < 65536:
            raise ValueError(f"bad RTP port range {self.low}-{self.high}")
        self._next = self.low

    @property
    def size(self) -> int:
        return self.high - self.low + 1

    def acquire(self, skip: set[int] | None = None) -> int:
        for _ in range(self.size):
            port = self._next
            self._next = self.low if port >= self.high else port + 1
            if port not in self._in_use and (not skip or port not in skip):
                self._in_use.add(port)
                return port
        raise PortsExhausted(f"no free RTP port in {self.low}-{self.high}")

    def release(self, port: int) -> None:
        self._in_use.discard(port)


def _same(receiver: RtpReceiver) -> RtpReceiver:
    return receiver


class RtpReceiver(asyncio.DatagramProtocol):
    """One UDP socket feeding one chunker; chunks go to ``on_chunk`` as they complete.

    It locks onto the first sender and drops datagrams from anyone else, so a stray or
    malicious packet cannot inject audio into a call.
    """

    def __init__(
        self,
        chunker: RtpChunker,
        on_chunk: Callable[[AudioChunk], None],
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.chunker = chunker
        self.on_chunk = on_chunk
        self.clock_ms = clock_ms
        self.transport: asyncio.DatagramTransport | None = None  # kept: see module doc
        self.peer: tuple[str, int] | None = None
        self.foreign_datagrams = 0
        self.port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: on Python 3.11 asyncio's UDP transport is not a
        # DatagramTransport subclass, and an assert here lost the reference (socket leak).
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.peer is None:
            self.peer = (addr[0], addr[1])
        elif (addr[0], addr[1]) != self.peer:
            self.foreign_datagrams += 1
            return
        for chunk in self.chunker.feed(data, self.clock_ms()):
            self._deliver(chunk)

    def error_received(self, exc: Exception) -> None:
        log.debug("RTP socket error on port %d: %s", self.port, type(exc).__name__)

    def _deliver(self, chunk: AudioChunk) -> None:
        try:
            self.on_chunk(chunk)
        except Exception:  # the socket must keep reading whatever the consumer does
            log.exception("audio chunk callback failed (call %s)", chunk.call_id)

    @classmethod
    async def open(
        cls,
        host: str,
        pool: PortPool,
        chunker: RtpChunker,
        on_chunk: Callable[[AudioChunk], None],
        clock_ms: Callable[[], int] = wall_ms,
    ) -> RtpReceiver:
        """Bind a free port of ``pool`` on ``host``; ports another process holds are skipped."""
        loop = asyncio.get_running_loop()
        busy: set[int] = set()
        while True:
            port = pool.acquire(skip=busy)
            receiver = cls(chunker, on_chunk, clock_ms)
            try:
                await loop.create_datagram_endpoint(
                    functools.partial(_same, receiver), local_addr=(host, port)
                )
            except OSError:
                pool.release(port)
                busy.add(port)
                if len(busy) >= pool.size:
                    raise PortsExhausted(
                        f"no bindable RTP port in {pool.low}-{pool.high}"
                    ) from None
                continue
            receiver.port = port
            return receiver

    def close(self, now_ms: int | None = None) -> list[AudioChunk]:
        """Stop listening and return the leg's final chunk(s) (also delivered to on_chunk)."""
        if self.transport is not None:
            self.transport.close()
        chunks = self.chunker.flush(
            final=True, now_ms=self.clock_ms() if now_ms is None else now_ms
        )
        for chunk in chunks:
            self._deliver(chunk)
        return chunks


class RtpCapture:
    """Per call leg: one :class:`RtpReceiver` on a pooled port (the callflow's AudioCapture)."""

    def __init__(
        self,
        host: str,
        pool: PortPool,
        emit: Callable[[AudioChunk], None],
        *,
        chunk_ms: int = 200,
        origin: str = ORIGIN,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.host = host
        self.pool = pool
        self.emit = emit
        self.chunk_ms = chunk_ms
        self.origin = origin
        self.clock_ms = clock_ms
        self.receivers: dict[tuple[str, str], RtpReceiver] = {}

    async def open(self, call_id: str, leg: str) -> int:
        key = (call_id, leg)
        if key in self.receivers:
            return self.receivers[key].port
        chunker = RtpChunker(call_id, leg, chunk_ms=self.chunk_ms, origin=self.origin)
        receiver = await RtpReceiver.open(self.host, self.pool, chunker, self.emit, self.clock_ms)
        self.receivers[key] = receiver
        log.debug("call %s leg %s: RTP on %s:%d", call_id, leg, self.host, receiver.port)
        return receiver.port

    async def close(self, call_id: str, leg: str) -> None:
        receiver = self.receivers.pop((call_id, leg), None)
        if receiver is None:
            return
        receiver.close()
        self.pool.release(receiver.port)
        stats = receiver.chunker.stats
        log.info(
            "call %s leg %s audio: %d packets, %d lost, %d late, %d chunks",
            call_id,
            leg,
            stats.packets,
            stats.lost_packets,
            stats.late_packets,
            stats.chunks,
        )

    async def close_all(self) -> None:
        for call_id, leg in list(self.receivers):
            await self.close(call_id, leg)
