"""The department directory (``pipelines/config/departments.toml`` by default)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_FILE = Path(__file__).parent / "config" / "departments.toml"


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    line: str
    office_number: str
    staff_endpoints: tuple[str, ...]
    notices: tuple[str, ...]
    ringback: str


@dataclass(frozen=True)
class Directory:
    departments: dict[str, Department]

    def by_line(self, line: str) -> Department | None:
        return next((d for d in self.departments.values() if d.line == line), None)

    def by_staff_endpoint(self, endpoint: str) -> Department | None:
        return next(
            (d for d in self.departments.values() if endpoint in d.staff_endpoints), None
        )

    def __getitem__(self, code: str) -> Department:
        return self.departments[code]


def load_directory(path: Path | None = None) -> Directory:
    data = tomllib.loads((path or DEFAULT_FILE).read_text(encoding="utf-8"))
    departments = {}
    for code, entry in data.get("departments", {}).items():
        try:
            departments[code] = Department(
                code=code,
                name=entry["name"],
                line=str(entry["line"]),
                office_number=entry["office_number"],
                staff_endpoints=tuple(entry["staff_endpoints"]),
                notices=tuple(entry.get("notices", ())),
                ringback=entry.get("ringback", "default"),
            )
        except KeyError as exc:
            raise ValueError(f"department {code!r}: missing {exc.args[0]!r}") from None
    lines = [d.line for d in departments.values()]
    if len(lines) != len(set(lines)):
        raise ValueError("two departments share a line number")
    return Directory(departments)
