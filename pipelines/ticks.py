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


def register_ticker(
    app: faust.App, ticks: TopicT, interval_s: float, clock: Callable[[], int]
) -> None:
    topic_name = next(iter(ticks.topics))

    @app.timer(interval=interval_s, name="callguard.ticker")
    async def send_ticks() -> None:
        # Under exactly-once a send needs the partition's open transaction, which does not
        # exist while the worker rebalances or shuts down; a skipped tick is harmless (the
        # next one does the same work), a failed send would crash the worker.
        if app.rebalancing or app.should_stop:
            return
        now_ms = clock()
        for tp in app.assignor.assigned_actives():
            if tp.topic == topic_name:
                try:
                    await ticks.send(
                        key=TICK_KEY, value=encode_tick(now_ms), partition=tp.partition
                    )
                except Exception as exc:  # noqa: BLE001 - see above
                    log.info("tick for partition %d skipped: %s", tp.partition, exc)
