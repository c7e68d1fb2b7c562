"""Two corrections to faust-streaming's exactly-once mode, applied by ``new_faust_app``.

1. Recovery saw empty changelogs.  Under exactly-once, faust asks for each changelog
   partition's end as ``consumer.last_stable_offset(tp)``: the value aiokafka remembers from the
   last *fetch response* of that partition, ``None`` before the first fetch.  Right after an
   assignment no fetch has happened yet, so faust read "highwater -1", decided there was
   nothing to recover and started with empty tables: a worker restarted after a crash lost
   every call's state, depending on timing (our crash tests caught it on a loaded machine; a
   debug log showed "Highwater … -1" for a changelog holding committed records).  The fix asks
   the broker (``end_offsets``, a ListOffsets request with the consumer's read_committed
   isolation, which returns the last stable offset).

2. Table writes could miss their transaction.  Table writes reach the changelog through the
   producer's buffer (``Topic.send_soon``), drained by a background task.  On a transactional
   commit faust sends the consumed offsets and commits *without* draining that buffer (its
   at-least-once path does ``await app.producer.flush()`` first), so a changelog record still
   buffered lands in the *next* transaction: a crash in between keeps the input offsets
   committed and loses the state change they produced.  Draining the buffer before the commit
   puts every table write into the transaction of the offsets it belongs to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    from faust.transport.consumer import TransactionManager

    original = TransactionManager.commit

    async def commit(
        self: Any, offsets: Mapping[Any, int], start_new_transaction: bool = True
    ) -> bool:
        await self.app.producer.buffer.flush()
        return bool(await original(self, offsets, start_new_transaction=start_new_transaction))

    TransactionManager.commit = commit  # type: ignore[method-assign]

    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    async def _highwaters(self: Any, partitions: list[Any]) -> Mapping[Any, int]:
        consumer = self._ensure_consumer()
        # end_offsets honours the consumer's isolation level: the last stable offset under
        # read_committed, the high watermark otherwise; never "unknown"
        return dict(await consumer.end_offsets(partitions))

    AIOKafkaConsumerThread._highwaters = _highwaters  # type: ignore[method-assign]
    _applied = True
