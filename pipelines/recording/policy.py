"""Loading the recording rollout (``pipelines/config/recording.toml``) and checking it against
the department directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.core.consent import PolicyBook, RecordingPolicy
from pipelines.departments import Directory
from pipelines.policy_files import book_from_dict, read_toml

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "config" / "recording.toml"


def _strings(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


def policy_book(data: dict[str, Any], directory: Directory | None = None) -> PolicyBook:
    if directory is not None:
        unknown = sorted(set(data.get("departments", {})) - set(directory.departments))
        if unknown:
            raise ValueError(f"recording policy: unknown department(s) {', '.join(unknown)}")
    return book_from_dict(
        data,
        RecordingPolicy,
        what="recording policy",
        coerce={"directions": _strings, "record_key": str, "consent_notice": str, "mode": str},
    )


def load_recording_book(path: Path | None = None, directory: Directory | None = None) -> PolicyBook:
    return policy_book(read_toml(path or DEFAULT_FILE), directory)


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
