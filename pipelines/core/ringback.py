"""Situational ringback: which ringback (music-on-hold class) a ringing inbound call gets.

A pure function of the department's calendar and the local time (``Asia/Seoul`` in
production).  The caller hears the reason instead of ringing in vain, so they need not call
again and again.  Order of precedence, first match wins:

1. a dated notice of the department that covers the day (``moved``, construction …);
2. a public holiday (the holiday *name* is looked up outside the core — the ``holidays``
   package knows the lunar and substitute holidays — and passed in);
3. a weekend day (the calendar's working weekdays);
4. outside business hours (before opening or from closing time);
5. the lunch break;
6. otherwise the department's ordinary class (``default``: a plain ringback tone).

Also here: the repeat-call rate (same caller again within N hours), pure, for reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time

#: ringback classes the PBX defines (docker/asterisk/conf/musiconhold.conf)
DEFAULT, LUNCH, AFTER_HOURS, HOLIDAY, MOVED = "default", "lunch", "after_hours", "holiday", "moved"
PBX_CLASSES = (DEFAULT, LUNCH, AFTER_HOURS, HOLIDAY, MOVED)
STREAM = "ringback"


@dataclass(frozen=True)
class DatedNotice:
    """A notice for a range of days, both ends included (``until`` None = open-ended)."""

    name: str  # e.g. "office_moved", "construction"
    moh_class: str  # what callers hear meanwhile
    start: date
    until: date | None = None
    text: str = ""  # for people reading reports; not played

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.until is None or day <= self.until)


@dataclass(frozen=True)
class DepartmentCalendar:
    department: str
    opens: time = time(9, 0)
    closes: time = time(18, 0)
    lunch_start: time | None = time(12, 0)
    lunch_end: time | None = time(13, 0)
    #: Monday = 0 … Sunday = 6
    workdays: frozenset[int] = frozenset(range(5))
    #: the ordinary ringback (the directory's ``ringback``)
    normal_class: str = DEFAULT
    #: class per situation; a department may map a situation to another class it has
    classes: dict[str, str] = field(
        default_factory=lambda: {
            "lunch": LUNCH,
            "after_hours": AFTER_HOURS,
            "weekend": AFTER_HOURS,
            "holiday": HOLIDAY,
        }
    )
    notices: tuple[DatedNotice, ...] = ()
    observe_public_holidays: bool = True

    def class_for(self, situation: str) -> str:
        return self.classes.get(situation, self.normal_class)


@dataclass(frozen=True)
class RingbackChoice:
    """What the caller hears, and why (``situation`` is what reports count)."""

    moh_class: str
    situation: str  # notice:<name> | holiday | weekend | after_hours | lunch | business_hours
    reason: str


def _hm(value: time) -> str:
    return value.strftime("%H:%M")


def choose(
    calendar: DepartmentCalendar, local: datetime, holiday_name: str | None = None
) -> RingbackChoice:
    """The ringback for a call ringing at ``local`` (the department's local wall time).

    ``holiday_name``: the public holiday of ``local.date()`` if it is one (None otherwise).
    """
    day, moment = local.date(), local.time()
    for notice in calendar.notices:
        if notice.covers(day):
            until = f" until {notice.until.isoformat()}" if notice.until else ""
            return RingbackChoice(
                notice.moh_class,
                f"notice:{notice.name}",
                f"dated notice {notice.name} ({notice.start.isoformat()}{until})",
            )
    if holiday_name and calendar.observe_public_holidays:
        return RingbackChoice(
            calendar.class_for("holiday"), "holiday", f"public holiday: {holiday_name}"
        )
    if local.weekday() not in calendar.workdays:
        return RingbackChoice(
            calendar.class_for("weekend"), "weekend", f"not a working day ({local:%A})"
        )
    if moment < calendar.opens or moment >= calendar.closes:
        return RingbackChoice(
            calendar.class_for("after_hours"),
            "after_hours",
            f"outside business hours {_hm(calendar.opens)}-{_hm(calendar.closes)}",
        )
    if (
        calendar.lunch_start is not None
        and calendar.lunch_end is not None
        and calendar.lunch_start <= moment < calendar.lunch_end
    ):
        return RingbackChoice(
            calendar.class_for("lunch"),
            "lunch",
            f"lunch break {_hm(calendar.lunch_start)}-{_hm(calendar.lunch_end)}",
        )
    return RingbackChoice(calendar.normal_class, "business_hours", "business hours")


# -- repeat calls -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepeatStats:
    calls: int
    repeats: int  # calls whose caller had called within the window before

    @property
    def rate(self) -> float:
        return self.repeats / self.calls if self.calls else 0.0


def repeat_call_stats(calls: Iterable[tuple[str, int]], window_ms: int) -> RepeatStats:
    """``calls``: (caller, start epoch ms).  A call is a repeat when the same caller had an
    earlier call starting at most ``window_ms`` before it.  Anonymous callers ("") never
    count as repeats (they cannot be told apart)."""
    last_seen: dict[str, int] = {}
    total = repeats = 0
    for caller, ts_ms in sorted(calls, key=lambda c: c[1]):
        total += 1
        if caller:
            previous = last_seen.get(caller)
            if previous is not None and ts_ms - previous <= window_ms:
                repeats += 1
            last_seen[caller] = ts_ms
    return RepeatStats(total, repeats)
