"""Which phone platform a callee number has (android | ios | unknown): a small pluggable lookup.

Default source: a CSV file ``number,platform`` (numbers compared as digits).  An operator with
a carrier lookup service implements :class:`PlatformLookup` instead.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Protocol

PLATFORMS = ("android", "ios", "unknown")


class PlatformLookup(Protocol):
    def __call__(self, number: str) -> str: ...


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


class CsvPlatforms:
    def __init__(self, table: dict[str, str]) -> None:
        self.table = {_digits(k): v for k, v in table.items() if _digits(k)}

    @classmethod
    def load(cls, path: Path | None) -> CsvPlatforms:
        if path is None or not path.exists():
            return cls({})
        table: dict[str, str] = {}
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.reader(line for line in fh if not line.lstrip().startswith("#")):
                if len(row) < 2 or row[0].strip().lower() == "number":
                    continue
                platform = row[1].strip().lower()
                if platform not in PLATFORMS:
                    raise ValueError(f"{path}: unknown platform {platform!r}")
                table[row[0].strip()] = platform
        return cls(table)

    def __call__(self, number: str) -> str:
        return self.table.get(_digits(number), "unknown")
