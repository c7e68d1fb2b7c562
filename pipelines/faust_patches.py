"""A correction to faust-streaming 0.11+ exactly-once commits, applied by ``new_faust_app``.

Table writes reach the changelog through the producer's buffer (``Topic.send_soon``), which a
background task drains.  On a transactional commit faust sends the consumed offsets and commits
each partition's transaction *without* draining that buffer first (its at-least-once path does
``await app.producer.flush()``; the exactly-once path does not).  A changelog record still in
the buffer then lands in the *next* transaction, so a worker killed in between had its input
offsets committed while the state change they produced was aborted: after a restart the call's
state came back without its latest changes (our crash tests saw it under load).  Draining the
buffer before the commit puts every table write into the transaction of the offsets it belongs
to.
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
    _applied = True
