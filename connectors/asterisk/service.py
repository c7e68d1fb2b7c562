"""``callguard connector asterisk``: the connector process, wired with asyncio.

Five loops share one event loop:

* ARI events → :class:`~connectors.asterisk.callflow.CallFlow` → ``pbx.call-events`` and,
  through the per-leg RTP receivers, ``pbx.audio``.  After every (re)connection the live
  channel list reconciles calls that ended while the socket was down.
* AMI ``Cdr`` events → :class:`~connectors.asterisk.cdr.CdrCollector` (a short grace period
  merges split CDRs and waits for the call flow's facts) → ``pbx.cdr``.
* ``pbx.commands`` → :class:`~connectors.asterisk.commands.CommandApplier` →
  ``pbx.command-results``.  A confluent-kafka consumer (group
  ``<faust app id>-asterisk-connector``, ``read_committed``, manual commits) is polled in a
  thread.  Commands of one call run in order, different calls concurrently (a ``wait=true``
  playback on one call does not hold up a hangup on another).  An offset is committed only
  once its result (or dead letter) is acknowledged by Kafka and every earlier offset of the
  partition is too; a command whose PBX is unreachable is retried with backoff and keeps its
  offset uncommitted, so a connector restart replays it and the idempotency store answers
  ``duplicate`` for what was already done.
* The producer's delivery callbacks (``poll`` in a thread).
* SIGTERM / SIGINT: stop reading, let commands in flight finish (a few seconds), commit, flush
  final audio chunks and pending CDRs, flush the producer.  Calls stay up on the PBX.

Every record is keyed by its call id; the producer is idempotent.  Nothing here imports
``pipelines``: :func:`run_connector` reads the settings object by attribute name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from connectors.asterisk.ami import AmiClient
from connectors.asterisk.ari import AriClient, PbxUnavailable
from connectors.asterisk.callflow import CallFlow, FlowConfig
from connectors.asterisk.cdr import CdrCollector, cdr_to_record
from connectors.asterisk.commands import CommandApplier, CommandStore
from connectors.asterisk.model import wall_ms
from connectors.asterisk.protocols import DepartmentDirectory
from connectors.asterisk.rtp import PortPool, RtpCapture
from connectors.kafka.topics import KEY_PARTITIONER, TopicCatalog
from schemas.codec import MalformedMessage, decode, encode
from schemas.dead_letters import make_dead_letter
from schemas.records import AudioChunk, CallEvent, Cdr, CommandResult, DeadLetter, PbxCommand

log = logging.getLogger(__name__)

CONSUMER = "asterisk-connector"
DAY_MS = 24 * 3600 * 1000

TopicKey = tuple[str, int]


@dataclass(frozen=True)
class ConnectorConfig:
    kafka_bootstrap: str
    catalog: TopicCatalog
    ari_url: str
    ari_user: str
    ari_password: str
    app: str
    ami_host: str
    ami_port: int
    ami_user: str
    ami_password: str
    rtp_host: str
    rtp_port_min: int
    rtp_port_max: int
    chunk_ms: int
    data_dir: Path
    no_answer_timeout_s: float = 30.0
    sounds_dir: str = "/opt/pbx/sounds/callguard"
    command_max_age_s: float = 600.0
    cdr_grace_ms: int = 2000
    cdr_tz: tzinfo | None = None

    @property
    def group_id(self) -> str:
        return f"{self.catalog.faust_app_id}-asterisk-connector"

    @property
    def store_path(self) -> Path:
        return self.data_dir / "asterisk-connector" / "commands.sqlite"

    @classmethod
    def from_settings(cls, settings: Any) -> ConnectorConfig:
        """From ``pipelines.settings.Settings`` (or anything with the same attribute names).

        ``asterisk_no_answer_timeout_s``, ``asterisk_sounds_dir``,
        ``asterisk_command_max_age_s`` and ``asterisk_cdr_timezone`` are optional: defaults
        apply while Settings lacks them.
        """
        catalog = TopicCatalog(
            prefix=settings.topic_prefix,
            partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            app_id=settings.app_id,
        )
        return cls(
            kafka_bootstrap=settings.kafka_bootstrap,
            catalog=catalog,
            ari_url=settings.asterisk_ari_url,
            ari_user=settings.asterisk_ari_user,
            ari_password=settings.asterisk_ari_password,
            app=settings.asterisk_app,
            ami_host=settings.asterisk_ami_host,
            ami_port=settings.asterisk_ami_port,
            ami_user=settings.asterisk_ami_user,
            ami_password=settings.asterisk_ami_password,
            rtp_host=settings.rtp_host,
            rtp_port_min=settings.rtp_port_min,
            rtp_port_max=settings.rtp_port_max,
            chunk_ms=settings.audio_chunk_ms,
            data_dir=Path(settings.data_dir),
            no_answer_timeout_s=float(getattr(settings, "asterisk_no_answer_timeout_s", 30.0)),
            sounds_dir=str(getattr(settings, "asterisk_sounds_dir", "/opt/pbx/sounds/callguard")),
            command_max_age_s=float(getattr(settings, "asterisk_command_max_age_s", 600.0)),
            cdr_tz=_zone(getattr(settings, "asterisk_cdr_timezone", None)),
        )


def _zone(name: str | None) -> tzinfo | None:
    """``asterisk_cdr_timezone`` (IANA name, e.g. ``Asia/Seoul``); None = this host's zone."""
    return ZoneInfo(name) if name else None


def producer_config(bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "linger.ms": 5,
        "client.id": "callguard-asterisk-connector",
        **KEY_PARTITIONER,
    }


def consumer_config(bootstrap: str, group_id: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "client.id": "callguard-asterisk-connector",
        "enable.auto.commit": False,
        # commands produced before the connector's first start still count (old ones expire)
        "auto.offset.reset": "earliest",
        # streams write commands in exactly-once transactions: skip aborted ones
        "isolation.level": "read_committed",
    }


# -- output ------------------------------------------------------------------------------------


class KafkaOutput:
    """The :class:`Emitter`: records → their topic, keyed by call id; never logs payloads."""

    def __init__(self, producer: Any, catalog: TopicCatalog) -> None:
        self.producer = producer
        self.topics: dict[type, str] = {
            CallEvent: catalog.call_events,
            AudioChunk: catalog.audio,
            Cdr: catalog.cdr,
            CommandResult: catalog.command_results,
            DeadLetter: catalog.dead_letters,
        }
        self.delivery_failures = 0

    def emit(self, record: Any, on_delivery: Callable[[Any, Any], None] | None = None) -> None:
        topic = self.topics[type(record)]
        key = getattr(record, "call_id", "") or getattr(record, "dead_letter_id", "")
        self.produce(topic, encode(record), key.encode(), on_delivery)

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> None:
        callback = on_delivery or self._log_failure
        while True:
            try:
                self.producer.produce(topic, value, key, on_delivery=callback)
                return
            except BufferError:  # local queue full: let deliveries drain
                self.producer.poll(0.05)

    def _log_failure(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.delivery_failures += 1
            log.error("delivery to %s failed: %s", msg.topic() if msg else "?", err)


# -- command consumption -----------------------------------------------------------------------


class OffsetTracker:
    """Which offsets may be committed while messages finish out of order.

    Per partition: offsets handed out and not yet finished are in flight; the commit position
    is the lowest in-flight offset, or one past the highest started offset when none is.
    Thread-safe: the consumer's rebalance callback reads it from the polling thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight: dict[TopicKey, set[int]] = {}
        self._high: dict[TopicKey, int] = {}
        self._committed: dict[TopicKey, int] = {}

    def start(self, tp: TopicKey, offset: int) -> None:
        with self._lock:
            self._inflight.setdefault(tp, set()).add(offset)
            self._high[tp] = max(self._high.get(tp, -1), offset)

    def finish(self, tp: TopicKey, offset: int) -> None:
        with self._lock:
            self._inflight.get(tp, set()).discard(offset)

    def committable(self, only: Iterable[TopicKey] | None = None) -> dict[TopicKey, int]:
        with self._lock:
            keys = set(self._high) if only is None else set(only) & set(self._high)
            out = {}
            for tp in keys:
                inflight = self._inflight.get(tp)
                position = min(inflight) if inflight else self._high[tp] + 1
                if position > self._committed.get(tp, -1):
                    out[tp] = position
            return out

    def committed(self, positions: dict[TopicKey, int]) -> None:
        with self._lock:
            for tp, position in positions.items():
                self._committed[tp] = max(self._committed.get(tp, -1), position)

    def revoke(self, tps: Iterable[TopicKey]) -> None:
        with self._lock:
            for tp in tps:
                self._inflight.pop(tp, None)
                self._high.pop(tp, None)
                self._committed.pop(tp, None)

    def in_flight(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._inflight.values())


class SerialByKey:
    """Runs coroutines one after another per key, concurrently across keys; keeps task refs."""

    def __init__(self) -> None:
        self._tails: dict[str, asyncio.Task[None]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def submit(self, key: str, factory: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        previous = self._tails.get(key)

        async def run() -> None:
            if previous is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(previous)
            await factory()

        task = asyncio.create_task(run())
        self._tails[key] = task
        self.tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self.tasks.discard(t)
            if self._tails.get(key) is t:
                del self._tails[key]

        task.add_done_callback(done)
        return task


def _position(msg: Message) -> tuple[TopicKey, int]:
    """(topic, partition), offset of a consumed message (never None for a real message)."""
    return (msg.topic() or "", msg.partition() or 0), msg.offset() or 0


class CommandService:
    """pbx.commands → applier → pbx.command-results, with manual, ordered commits."""

    def __init__(
        self,
        consumer: Any,
        output: KafkaOutput,
        applier: CommandApplier,
        *,
        commands_topic: str,
        results_topic: str,
        dead_letter_topic: str,
        stop: asyncio.Event,
        now_ms: Callable[[], int] = wall_ms,
        commit_interval_s: float = 0.5,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.consumer = consumer
        self.output = output
        self.applier = applier
        self.commands_topic = commands_topic
        self.results_topic = results_topic
        self.dead_letter_topic = dead_letter_topic
        self.stop = stop
        self.now_ms = now_ms
        self.commit_interval_s = commit_interval_s
        self.max_backoff_s = max_backoff_s
        self.tracker = OffsetTracker()
        self.serial = SerialByKey()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="asterisk-commands")
        self._last_commit = 0.0

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        # runs inside poll(), on the polling thread: commit what is done before losing them
        keys = [(p.topic, p.partition) for p in partitions]
        self._commit_sync(self.tracker.committable(keys))
        self.tracker.revoke(keys)

    def _commit_sync(self, positions: dict[TopicKey, int]) -> None:
        if not positions:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
            self.tracker.committed(positions)
        except KafkaException as exc:
            log.warning("commit of command offsets failed: %s", exc)

    async def commit(self, force: bool = False) -> None:
        loop = asyncio.get_running_loop()
        if not force and loop.time() - self._last_commit < self.commit_interval_s:
            return
        self._last_commit = loop.time()
        positions = self.tracker.committable()
        if positions:
            await loop.run_in_executor(self._executor, self._commit_sync, positions)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.consumer.subscribe([self.commands_topic], on_revoke=self._on_revoke)
        log.info("consuming commands from %s", self.commands_topic)
        while not self.stop.is_set():
            msg = await loop.run_in_executor(self._executor, self.consumer.poll, 0.5)
            if msg is not None:
                if msg.error():
                    log.warning("command consumer: %s", msg.error())
                else:
                    self._submit(msg)
            await self.commit()

    def _submit(self, msg: Message) -> None:
        tp, offset = _position(msg)
        self.tracker.start(tp, offset)
        key = (msg.key() or b"").decode("utf-8", "replace") or f"offset-{offset}"
        self.serial.submit(key, lambda: self._handle(msg, tp, offset))

    async def _handle(self, msg: Message, tp: TopicKey, offset: int) -> None:
        if self.stop.is_set():
            # stopping: leave it uncommitted for the next run, and keep each call's order
            # (an earlier command of this call may have been abandoned during a PBX outage)
            return
        try:
            command = decode(PbxCommand, msg.value())
        except MalformedMessage as exc:
            await self._dead_letter(msg, exc)
            self.tracker.finish(tp, offset)
            return
        try:
            result = await self._apply_with_retry(command)
        except Exception as exc:
            log.exception("command %s: unexpected error; dead-lettered", command.command_id)
            error = MalformedMessage(
                f"pbx_command: {type(exc).__name__} while applying", "processing"
            )
            await self._dead_letter(msg, error)
            self.tracker.finish(tp, offset)
            return
        if result is None:  # stopping while the PBX was unreachable: replay after restart
            return
        await self._deliver(self.results_topic, encode(result), command.call_id.encode())
        self.tracker.finish(tp, offset)

    async def _apply_with_retry(self, command: PbxCommand) -> CommandResult | None:
        backoff = 0.5
        while True:
            try:
                return await self.applier.apply(command)
            except PbxUnavailable as exc:
                if self.stop.is_set():
                    return None
                log.warning(
                    "command %s: PBX unavailable (%s); retrying in %.1f s",
                    command.command_id,
                    exc,
                    backoff,
                )
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), backoff)
                backoff = min(backoff * 2, self.max_backoff_s)

    async def _dead_letter(self, msg: Message, error: MalformedMessage) -> None:
        (topic, partition), offset = _position(msg)
        letter = make_dead_letter(
            topic=topic,
            partition=partition,
            offset=offset,
            key=msg.key(),
            value=msg.value(),
            consumer=CONSUMER,
            error=error,
            now_ms=self.now_ms(),
        )
        log.warning(
            "dead-lettered %s[%d]@%d: %s", msg.topic(), msg.partition(), msg.offset(), error.reason
        )
        await self._deliver(self.dead_letter_topic, encode(letter), msg.key())

    async def _deliver(self, topic: str, value: bytes, key: bytes | None) -> None:
        """Produce and wait for Kafka's acknowledgement, retrying until it comes."""
        loop = asyncio.get_running_loop()
        while True:
            acked: asyncio.Future[Any] = loop.create_future()

            def on_delivery(err: Any, _msg: Any, acked: asyncio.Future[Any] = acked) -> None:
                def settle() -> None:
                    if not acked.done():
                        acked.set_result(err)

                loop.call_soon_threadsafe(settle)

            self.output.produce(topic, value, key, on_delivery)
            err = await acked
            if err is None:
                return
            log.error("delivery to %s failed (%s); retrying", topic, err)
            await asyncio.sleep(1.0)

    async def drain(self, timeout_s: float) -> None:
        """Let commands in flight finish (bounded), then commit what is done."""
        tasks = list(self.serial.tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        await self.commit(force=True)

    def close(self) -> None:
        with contextlib.suppress(KafkaException, RuntimeError):
            self.consumer.close()
        self._executor.shutdown(wait=True)


# -- the process -------------------------------------------------------------------------------


async def _poll_producer(producer: Any) -> None:
    """Serve delivery callbacks until cancelled (after the shutdown has drained commands)."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1, thread_name_prefix="asterisk-producer") as executor:
        while True:
            await loop.run_in_executor(executor, producer.poll, 0.2)


async def _follow_ari(ari: AriClient, flow: CallFlow) -> None:
    async def reconcile() -> None:
        try:
            channels = await ari.list_channels()
        except PbxUnavailable:
            return
        ended = await flow.reconcile(str(c.get("id", "")) for c in channels)
        if ended:
            log.warning("%d call(s) ended while the ARI socket was down", ended)

    async for event in ari.events(on_connect=reconcile):
        try:
            await flow.handle(event)
        except Exception:  # one event must not stop every call's handling
            log.exception("ARI %s event could not be handled", event.get("type", "?"))


async def _follow_ami(ami: AmiClient, collector: CdrCollector, config: ConnectorConfig) -> None:
    async for event in ami.events():
        try:
            cdr = cdr_to_record(event, tz=config.cdr_tz)
        except Exception:  # a malformed CDR must not stop the others
            log.exception("AMI %s event could not be mapped", event.get("Event", "?"))
            continue
        if cdr is not None:
            collector.add(cdr, wall_ms())
        elif event.get("Event") == "Cdr":
            log.debug("CDR without a CallGuard tag ignored (helper channel or foreign call)")


async def _release_cdrs(
    collector: CdrCollector, flow: CallFlow, output: KafkaOutput, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        for cdr in collector.due(wall_ms(), flow.facts):
            output.emit(cdr)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def serve(
    config: ConnectorConfig,
    directory: DepartmentDirectory,
    *,
    stop: asyncio.Event | None = None,
    producer: Any = None,
    consumer: Any = None,
) -> int:
    """Run until ``stop`` is set (or SIGTERM/SIGINT); 0 on a clean stop, 1 if a loop failed."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    signals: list[signal.Signals] = []
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
            signals.append(sig)
    catalog = config.catalog
    producer = producer or Producer(producer_config(config.kafka_bootstrap))
    consumer = consumer or Consumer(consumer_config(config.kafka_bootstrap, config.group_id))
    output = KafkaOutput(producer, catalog)
    ari = AriClient(config.ari_url, config.ari_user, config.ari_password, config.app)
    ami = AmiClient(config.ami_host, config.ami_port, config.ami_user, config.ami_password)
    capture = RtpCapture(
        config.rtp_host,
        PortPool(config.rtp_port_min, config.rtp_port_max),
        output.emit,
        chunk_ms=config.chunk_ms,
    )
    flow = CallFlow(
        ari,
        output,
        directory,
        capture,
        FlowConfig(
            app=config.app,
            rtp_host=config.rtp_host,
            no_answer_timeout_s=config.no_answer_timeout_s,
            sounds_dir=config.sounds_dir,
        ),
    )
    store = CommandStore(config.store_path)
    pruned = store.prune(wall_ms() - 8 * DAY_MS)  # commands live 7 days on Kafka
    if pruned:
        log.info("forgot %d command outcomes older than 8 days", pruned)
    applier = CommandApplier(flow, store, max_age_s=config.command_max_age_s)
    commands = CommandService(
        consumer,
        output,
        applier,
        commands_topic=catalog.commands,
        results_topic=catalog.command_results,
        dead_letter_topic=catalog.dead_letters,
        stop=stop,
    )
    collector = CdrCollector(grace_ms=config.cdr_grace_ms)
    loops = {
        "ari": asyncio.create_task(_follow_ari(ari, flow)),
        "ami": asyncio.create_task(_follow_ami(ami, collector, config)),
        "cdr": asyncio.create_task(_release_cdrs(collector, flow, output, stop)),
        "commands": asyncio.create_task(commands.run()),
        "producer": asyncio.create_task(_poll_producer(producer)),
    }
    log.info(
        "asterisk connector: ARI %s app %s, AMI %s:%d, RTP %s:%d-%d",
        config.ari_url,
        config.app,
        config.ami_host,
        config.ami_port,
        config.rtp_host,
        config.rtp_port_min,
        config.rtp_port_max,
    )
    exit_code = 0
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait(
            [stopper, *loops.values()], return_when=asyncio.FIRST_COMPLETED
        )
        for name, task in loops.items():
            if task in done and not task.cancelled() and task.exception() is not None:
                log.error("%s loop failed: %r", name, task.exception())
                exit_code = 1
    finally:
        stop.set()
        stopper.cancel()
        for name in ("ari", "ami"):
            loops[name].cancel()
        await asyncio.gather(loops["ari"], loops["ami"], return_exceptions=True)
        await asyncio.gather(loops["commands"], loops["cdr"], return_exceptions=True)
        await commands.drain(timeout_s=5.0)
        await flow.shutdown()
        for cdr in collector.drain(flow.facts):
            output.emit(cdr)
        loops["producer"].cancel()
        await asyncio.gather(loops["producer"], return_exceptions=True)
        remaining = await loop.run_in_executor(None, producer.flush, 10.0)
        if remaining:
            log.error("%d records still undelivered at shutdown", remaining)
        commands.close()
        await ari.close()
        store.close()
        for sig in signals:
            loop.remove_signal_handler(sig)
        log.info("asterisk connector stopped")
    return exit_code


def run_connector(settings: Any, directory: DepartmentDirectory) -> int:
    """Entry point for the CLI: ``callguard connector asterisk``; returns the exit code."""
    return asyncio.run(serve(ConnectorConfig.from_settings(settings), directory))
