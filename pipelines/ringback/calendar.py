"""Department calendars from ``pipelines/config/calendar.toml`` and the public-holiday lookup.

The holidays come from the maintained ``holidays`` package (Korean lunar holidays such as
Seollal and Chuseok, substitute holidays, one-off election days), never from a hand-written
table.  :class:`RingbackPolicy` turns an epoch-ms instant into the department's local time and
asks the pure :func:`pipelines.core.ringback.choose`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from pipelines.core.ringback import (
    PBX_CLASSES,
    DatedNotice,
    DepartmentCalendar,
    RingbackChoice,
    choose,
)

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "config" / "calendar.toml"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class HolidayLookup:
    """Public holiday name of a date (None on ordinary days), for one country."""

    def __init__(self, country: str = "KR") -> None:
        self.country = country
        self._years: dict[int, holidays.HolidayBase] = {}

    def __call__(self, day: date) -> str | None:
        table = self._years.get(day.year)
        if table is None:
            table = holidays.country_holidays(self.country, years=day.year)
            self._years[day.year] = table
        name = table.get(day)
        return str(name) if name else None


def _time(value: str, where: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not HH:MM") from None


def _date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not YYYY-MM-DD") from None


def _calendar(
    code: str,
    entry: dict[str, Any],
    defaults: dict[str, Any],
    normal_class: str,
    known_classes: tuple[str, ...],
) -> DepartmentCalendar:
    merged = {**defaults, **entry}
    where = f"calendar of {code}"
    lunch = merged.get("lunch") or []
    if lunch and len(lunch) != 2:
        raise ValueError(f"{where}: lunch must be [start, end] or []")
    workdays = merged.get("workdays", WEEKDAYS[:5])
    unknown_days = [d for d in workdays if d not in WEEKDAYS]
    if unknown_days:
        raise ValueError(f"{where}: unknown weekday(s) {unknown_days}")
    classes = {**defaults.get("classes", {}), **entry.get("classes", {})}
    notices = tuple(
        DatedNotice(
            name=str(n["name"]),
            moh_class=str(n["moh_class"]),
            start=_date(n["start"], where),
            until=_date(n["until"], where) if n.get("until") else None,
            text=str(n.get("text", "")),
        )
        for n in entry.get("notices", [])
    )
    for cls in [*classes.values(), *(n.moh_class for n in notices)]:
        if cls not in known_classes:
            raise ValueError(f"{where}: ringback class {cls!r} is not one of {known_classes}")
    calendar = DepartmentCalendar(
        department=code,
        opens=_time(merged.get("opens", "09:00"), where),
        closes=_time(merged.get("closes", "18:00"), where),
        lunch_start=_time(lunch[0], where) if lunch else None,
        lunch_end=_time(lunch[1], where) if lunch else None,
        workdays=frozenset(WEEKDAYS.index(d) for d in workdays),
        normal_class=normal_class,
        classes=classes or DepartmentCalendar(code).classes,
        notices=notices,
        observe_public_holidays=bool(merged.get("observe_public_holidays", True)),
    )
    if calendar.opens >= calendar.closes:
        raise ValueError(f"{where}: opens must be before closes")
    return calendar


@dataclass
class RingbackPolicy:
    """Calendars of every department + time zone + holiday lookup."""

    calendars: dict[str, DepartmentCalendar]
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Seoul"))
    holiday_name: Any = field(default_factory=HolidayLookup)
    fallback: DepartmentCalendar = field(default_factory=lambda: DepartmentCalendar(""))

    def calendar(self, department: str) -> DepartmentCalendar:
        found = self.calendars.get(department)
        return found if found is not None else replace(self.fallback, department=department)

    def local(self, epoch_ms: int) -> datetime:
        return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).astimezone(self.tz)

    def decide(self, department: str, epoch_ms: int) -> RingbackChoice:
        local = self.local(epoch_ms)
        return choose(self.calendar(department), local, self.holiday_name(local.date()))


def load_policy(
    path: Path | None = None,
    *,
    departments: Any = None,
    known_classes: tuple[str, ...] = PBX_CLASSES,
) -> RingbackPolicy:
    """Read the calendar file.  ``departments`` (a :class:`pipelines.departments.Directory`)
    gives every department a calendar, with its ``ringback`` as the ordinary class."""
    data = tomllib.loads((path or DEFAULT_FILE).read_text(encoding="utf-8"))
    defaults = dict(data.get("defaults", {}))
    entries: dict[str, dict[str, Any]] = dict(data.get("departments", {}))
    normal: dict[str, str] = {}
    if departments is not None:
        for code, dept in departments.departments.items():
            entries.setdefault(code, {})
            normal[code] = dept.ringback
    calendars = {
        code: _calendar(code, entry or {}, defaults, normal.get(code, "default"), known_classes)
        for code, entry in entries.items()
    }
    fallback = _calendar("", {}, defaults, "default", known_classes)
    return RingbackPolicy(
        calendars=calendars,
        tz=ZoneInfo(str(data.get("timezone", "Asia/Seoul"))),
        holiday_name=HolidayLookup(str(data.get("country", "KR"))),
        fallback=fallback,
    )
