"""Branding configuration (``pipelines/config/callerid.toml``) joined with the directory."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.notify.platforms import CsvPlatforms, PlatformLookup

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "config" / "callerid.toml"


@dataclass(frozen=True)
class DepartmentBranding:
    code: str
    name: str
    office_number: str
    info: str
    purpose: str


@dataclass
class BrandingConfig:
    departments: dict[str, DepartmentBranding]
    platforms: PlatformLookup
    org_prefix: str = "서울시"
    template_code: str = "CALLGUARD_CALL_NOTICE"
    valid_for_s: int = 120
    extra: dict[str, Any] = field(default_factory=dict)


def load_branding(
    directory: Any, path: Path | None = None, platforms: PlatformLookup | None = None
) -> BrandingConfig:
    """``directory``: :class:`pipelines.departments.Directory` (name, office number)."""
    path = path or DEFAULT_FILE
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    per = data.get("departments", {})
    default_purpose = str(data.get("default_purpose", "안내"))
    departments = {}
    for code, dept in directory.departments.items():
        entry = per.get(code, {})
        departments[code] = DepartmentBranding(
            code=code,
            name=dept.name,
            office_number=dept.office_number,
            info=str(entry.get("info", "")),
            purpose=str(entry.get("purpose", default_purpose)),
        )
    if platforms is None:
        name = data.get("platforms_file")
        platforms = CsvPlatforms.load(path.parent / name if name else None)
    return BrandingConfig(
        departments=departments,
        platforms=platforms,
        org_prefix=str(data.get("org_prefix", "서울시")),
        template_code=str(data.get("template_code", "CALLGUARD_CALL_NOTICE")),
        valid_for_s=int(data.get("valid_for_s", 120)),
    )
