"""Loading the recording rollout (``pipelines/config/recording.toml``) and checking it against
the department directory."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from pipelines.core.consent import PolicyBook, RecordingPolicy
from pipelines.departments import Directory

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "config" / "recording.toml"
_KEYS = {f.name for f in fields(RecordingPolicy)}


def _merge(base: dict[str, Any], entry: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = set(entry) - _KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    merged = {**base, **entry}
    if "directions" in merged:
        merged["directions"] = tuple(str(d) for d in merged["directions"])
    for key in ("record_key", "consent_notice", "mode"):
        if key in merged:
            merged[key] = str(merged[key])
    return merged


def policy_book(data: dict[str, Any], directory: Directory | None = None) -> PolicyBook:
    defaults = _merge({}, dict(data.get("defaults", {})), "[defaults]")
    departments = dict(data.get("departments", {}))
    if directory is not None:
        unknown = sorted(set(departments) - set(directory.departments))
        if unknown:
            raise ValueError(f"recording policy: unknown department(s) {', '.join(unknown)}")
    try:
        default = RecordingPolicy(**defaults)
        book = {
            code: RecordingPolicy(**_merge(defaults, dict(entry), f"[departments.{code}]"))
            for code, entry in departments.items()
        }
    except (TypeError, ValueError) as exc:
        raise ValueError(f"recording policy: {exc}") from None
    return PolicyBook(default=default, departments=book)


def load_recording_book(path: Path | None = None, directory: Directory | None = None) -> PolicyBook:
    return policy_book(tomllib.loads((path or DEFAULT_FILE).read_text(encoding="utf-8")), directory)


def rollout_warnings(book: PolicyBook, directory: Directory) -> list[str]:
    """Configuration that guarantees violations: a ``full`` department whose PBX notices do not
    include its consent notice (or play something else first)."""
    out = []
    for code, department in sorted(directory.departments.items()):
        policy = book.for_department(code)
        if policy.mode != "full":
            continue
        if policy.consent_notice not in department.notices:
            out.append(
                f"department {code} records every call (full) but departments.toml does not "
                f"play its consent notice {policy.consent_notice!r}: every call will be reported"
            )
    return out
