"""Per-department policies: one default plus overrides, for any stream's frozen ``Policy``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P")


@dataclass(frozen=True)
class PolicyBook(Generic[P]):
    """The default policy and per-department policies (already merged with the default)."""

    default: P
    departments: Mapping[str, P] = field(default_factory=dict)

    def for_department(self, code: str) -> P:
        return self.departments.get(code, self.default)
