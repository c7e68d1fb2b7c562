"""Per-department policy files: a ``[defaults]`` table plus ``[departments.<code>]`` overrides.

Shared by the streams whose pure rule takes a frozen ``Policy`` dataclass and a ``PolicyBook``
(default + per-department policies); unknown keys are errors that name the table.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from pipelines.core.policies import PolicyBook

P = TypeVar("P")


def book_from_dict(
    data: Mapping[str, Any],
    policy_cls: Callable[..., P],
    *,
    what: str,
    coerce: Mapping[str, Callable[[Any], Any]] | None = None,
) -> PolicyBook[P]:
    keys = {f.name for f in fields(policy_cls)}  # type: ignore[arg-type]
    coerce = coerce or {}

    def merged(base: dict[str, Any], entry: Mapping[str, Any], where: str) -> dict[str, Any]:
        unknown = set(entry) - keys
        if unknown:
            raise ValueError(f"{what}: {where}: unknown key(s) {', '.join(sorted(unknown))}")
        out = {**base, **entry}
        return {k: coerce[k](v) if k in coerce else v for k, v in out.items()}

    defaults = merged({}, dict(data.get("defaults", {})), "[defaults]")
    try:
        default = policy_cls(**defaults)
        departments = {
            code: policy_cls(**merged(defaults, dict(entry), f"[departments.{code}]"))
            for code, entry in data.get("departments", {}).items()
        }
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: {exc}") from None
    return PolicyBook(default=default, departments=departments)


def read_toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))
