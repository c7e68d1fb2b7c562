"""Loading the timeout rule's per-department policy (``pipelines/config/timeout.toml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.core.timeout import Policy, PolicyBook
from pipelines.policy_files import book_from_dict, read_toml

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "config" / "timeout.toml"


def _strings(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


def policy_book(data: dict[str, Any]) -> PolicyBook:
    return book_from_dict(
        data,
        Policy,
        what="timeout policy",
        coerce={"exempt_lines": _strings, "staff_key": str, "justified_key": str},
    )


def load_policy_book(path: Path | None = None) -> PolicyBook:
    return policy_book(read_toml(path or DEFAULT_FILE))
