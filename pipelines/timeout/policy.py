"""Loading the timeout rule's per-department policy (``pipelines/config/timeout.toml``)."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from pipelines.core.timeout import Policy, PolicyBook

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "config" / "timeout.toml"
_KEYS = {f.name for f in fields(Policy)}


def _policy(base: dict[str, Any], entry: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = set(entry) - _KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    merged = {**base, **entry}
    if "exempt_lines" in merged:
        merged["exempt_lines"] = tuple(str(line) for line in merged["exempt_lines"])
    for key in ("staff_key", "justified_key"):
        if key in merged:
            merged[key] = str(merged[key])
    return merged


def policy_book(data: dict[str, Any]) -> PolicyBook:
    defaults = _policy({}, dict(data.get("defaults", {})), "[defaults]")
    try:
        default = Policy(**defaults)
        departments = {
            code: Policy(**_policy(defaults, dict(entry), f"[departments.{code}]"))
            for code, entry in data.get("departments", {}).items()
        }
    except (TypeError, ValueError) as exc:
        raise ValueError(f"timeout policy: {exc}") from None
    return PolicyBook(default=default, departments=departments)


def load_policy_book(path: Path | None = None) -> PolicyBook:
    return policy_book(tomllib.loads((path or DEFAULT_FILE).read_text(encoding="utf-8")))
