"""Which keys are due: per-partition deadline heaps for the streams' timers (no per-key task)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable


def is_idle(deadline: int | None, updated_ms: int, now_ms: int, idle_limit_ms: int) -> bool:
    """A key with no timer left may be forgotten once quiet for ``idle_limit_ms`` (until
    then, late duplicates are still recognised)."""
    return deadline is None and now_ms - updated_ms >= idle_limit_ms


def wake_time(deadline: int | None, updated_ms: int, idle_limit_ms: int) -> int:
    """When a tick must next look at a key: its next timer, else when it becomes idle."""
    return updated_ms + idle_limit_ms if deadline is None else deadline


class DeadlineIndex:
    """Per-partition min-heaps of (deadline, key): ``pop_due`` costs O(due · log n).

    Entries are never removed from the middle of a heap: a key's current deadline lives in
    ``_at`` and stale heap entries are skipped when popped (and compacted away when they
    outnumber live ones).  Pure and in memory; the stream rebuilds it from its table after
    recovery.
    """

    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[int, str]]] = {}
        self._at: dict[str, tuple[int, int]] = {}  # key → (partition, deadline)

    def __len__(self) -> int:
        return len(self._at)

    def set(self, partition: int, key: str, deadline: int | None) -> None:
        if deadline is None:
            self._at.pop(key, None)
            return
        if self._at.get(key) == (partition, deadline):
            return
        self._at[key] = (partition, deadline)
        heap = self._heaps.setdefault(partition, [])
        heapq.heappush(heap, (deadline, key))
        if len(heap) > 64 and len(heap) > 4 * len(self._at):
            self._compact(partition)

    def discard(self, key: str) -> None:
        self._at.pop(key, None)

    def deadline(self, key: str) -> int | None:
        entry = self._at.get(key)
        return None if entry is None else entry[1]

    def pop_due(self, partition: int, now_ms: int) -> list[str]:
        """Keys of ``partition`` whose deadline is ≤ now, removed from the index."""
        heap = self._heaps.get(partition)
        out: list[str] = []
        while heap and heap[0][0] <= now_ms:
            deadline, key = heapq.heappop(heap)
            if self._at.get(key) == (partition, deadline):
                del self._at[key]
                out.append(key)
        return out

    def clear(self) -> None:
        self._heaps.clear()
        self._at.clear()

    def rebuild(self, entries: Iterable[tuple[int, str, int | None]]) -> None:
        """Replace the index with (partition, key, deadline) entries, O(n)."""
        self.clear()
        for partition, key, deadline in entries:
            if deadline is not None:
                self._at[key] = (partition, deadline)
        for key, (partition, deadline) in self._at.items():
            self._heaps.setdefault(partition, []).append((deadline, key))
        for heap in self._heaps.values():
            heapq.heapify(heap)

    def _compact(self, partition: int) -> None:
        heap = [(d, k) for k, (p, d) in self._at.items() if p == partition]
        heapq.heapify(heap)
        self._heaps[partition] = heap
