"""Clock ticks for stream housekeeping.

faust tables can only be changed while handling a message of the table's partition, and a
stream sees no message for a call that went quiet.  So each worker's timer sends one small
tick per partition it owns to ``callguard.ticks`` (co-partitioned with the call topics); the
agents consume their source topic *and* the ticks, and on a tick run the pure ``expire`` rules
over that partition's state.  One tick per partition per interval, however many calls are open.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import faust
from faust.types import TopicT

log = logging.getLogger(__name__)

TICK_KEY = b"tick"


def encode_tick(now_ms: int) -> bytes:
    return json.dumps({"now_ms": now_ms}).encode()


def decode_tick(raw: bytes | None) -> int | None:
    """The tick's time, or None when the message is not a well-formed tick."""
    try:
        data = json.loads(raw or b"")
        now_ms = data["now_ms"]
    except (ValueError, TypeError, KeyError):
        return None
    return now_ms if isinstance(now_ms, int) else None


def _bootstrap(app: faust.App) -> str:
    return ",".join(f"{url.host}:{url.port or 9092}" for url in app.conf.broker)


def register_ticker(
    app: faust.App, ticks: TopicT, interval_s: float, clock: Callable[[], int]
) -> None:
    topic_name = next(iter(ticks.topics))
    plain: list[Any] = []  # the non-transactional producer, made on first use

    def producer() -> Any:
        # Ticks are sent outside faust's transactions.  Under exactly-once every faust send
        # joins the partition's transaction, which commits only when the partition consumed
        # something: a quiet partition's ticks stayed invisible to its (read_committed)
        # agents, so its timers never fired.  A tick is not state: losing or repeating one is
        # harmless, so a plain producer is enough.
        if not plain:
            from confluent_kafka import Producer

            plain.append(Producer({"bootstrap.servers": _bootstrap(app), "linger.ms": 0}))
        return plain[0]

    @app.timer(interval=interval_s, name="callguard.ticker")
    async def send_ticks() -> None:
        # While the worker rebalances or shuts down its assignment is in flux: skip (the next
        # tick does the same work); a failed send must not crash the worker either.
        if app.rebalancing or app.should_stop:
            return
        now_ms = clock()
        for tp in app.assignor.assigned_actives():
            if tp.topic == topic_name:
                try:
                    producer().produce(
                        topic_name, key=TICK_KEY, value=encode_tick(now_ms), partition=tp.partition
                    )
                except Exception as exc:  # noqa: BLE001 - see above
                    log.info("tick for partition %d skipped: %s", tp.partition, exc)
        if plain:
            plain[0].poll(0)  # serve delivery callbacks; never blocks
