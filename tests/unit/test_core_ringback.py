"""Situational ringback: the department calendar decides what a ringing caller hears."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipelines.core.ringback import (
    DatedNotice,
    DepartmentCalendar,
    choose,
    repeat_call_stats,
)
from pipelines.departments import load_directory
from pipelines.ringback.calendar import HolidayLookup, load_policy

SEOUL = ZoneInfo("Asia/Seoul")
CAL = DepartmentCalendar("traffic")


def at(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SEOUL)


def ms(local: datetime) -> int:
    return int(local.timestamp() * 1000)


# -- the pure rule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "moh_class", "situation"),
    [
        (at(2026, 11, 30, 10, 30), "default", "business_hours"),  # Monday morning
        (at(2026, 11, 30, 9, 0), "default", "business_hours"),  # opening minute
        (at(2026, 11, 30, 8, 59), "after_hours", "after_hours"),
        (at(2026, 11, 30, 12, 0), "lunch", "lunch"),
        (at(2026, 11, 30, 12, 59), "lunch", "lunch"),
        (at(2026, 11, 30, 13, 0), "default", "business_hours"),
        (at(2026, 11, 30, 17, 59), "default", "business_hours"),
        (at(2026, 11, 30, 18, 0), "after_hours", "after_hours"),
        (at(2026, 11, 30, 23, 0), "after_hours", "after_hours"),
        (at(2026, 11, 28, 11, 0), "after_hours", "weekend"),  # Saturday
        (at(2026, 11, 29, 12, 30), "after_hours", "weekend"),  # Sunday lunch: weekend wins
    ],
)
def test_business_hours_lunch_after_hours_and_weekend(
    local: datetime, moh_class: str, situation: str
) -> None:
    choice = choose(CAL, local)
    assert (choice.moh_class, choice.situation) == (moh_class, situation), choice.reason


def test_holiday_wins_over_business_hours_and_lunch() -> None:
    choice = choose(CAL, at(2026, 9, 25, 12, 30), "Chuseok")
    assert choice.moh_class == "holiday" and "Chuseok" in choice.reason


def test_dated_notice_wins_over_everything_within_its_dates_only() -> None:
    moved = DatedNotice("office_moved", "moved", date(2026, 12, 1), date(2026, 12, 31))
    cal = DepartmentCalendar("housing", notices=(moved,))
    assert choose(cal, at(2026, 12, 1, 0, 5)).moh_class == "moved"  # first day, any hour
    assert choose(cal, at(2026, 12, 25, 12, 0), "Christmas Day").situation == (
        "notice:office_moved"
    )
    assert choose(cal, at(2026, 12, 31, 23, 59)).moh_class == "moved"  # last day included
    assert choose(cal, at(2027, 1, 4, 10, 0)).moh_class == "default"  # after the range
    assert choose(cal, at(2026, 11, 30, 12, 0)).moh_class == "lunch"  # before it
    open_ended = DepartmentCalendar(
        "x", notices=(DatedNotice("construction", "after_hours", date(2027, 1, 1)),)
    )
    assert choose(open_ended, at(2030, 5, 5, 10)).situation == "notice:construction"


def test_department_overrides_hours_lunch_classes_and_ordinary_class() -> None:
    cal = DepartmentCalendar(
        "welfare",
        opens=time(8, 0),
        closes=time(20, 0),
        lunch_start=time(11, 30),
        lunch_end=time(12, 30),
        workdays=frozenset(range(6)),  # Saturdays too
        normal_class="default",
        classes={"lunch": "lunch", "after_hours": "after_hours", "holiday": "after_hours"},
    )
    assert choose(cal, at(2026, 11, 30, 8, 30)).moh_class == "default"
    assert choose(cal, at(2026, 11, 30, 11, 45)).moh_class == "lunch"
    assert choose(cal, at(2026, 11, 30, 12, 30)).moh_class == "default"
    assert choose(cal, at(2026, 11, 28, 10, 0)).situation == "business_hours"  # Saturday
    assert choose(cal, at(2026, 11, 30, 10), "Some Day").moh_class == "after_hours"
    no_lunch = DepartmentCalendar("tax", lunch_start=None, lunch_end=None)
    assert choose(no_lunch, at(2026, 11, 30, 12, 30)).moh_class == "default"


# -- the holiday lookup (the maintained `holidays` package) --------------------------------------


@pytest.mark.parametrize(
    ("day", "fragment"),
    [
        (date(2026, 9, 25), "Chuseok"),  # lunar: 15th of the 8th lunar month
        (date(2026, 9, 24), "Chuseok"),  # the day before Chuseok
        (date(2026, 2, 17), "Korean New Year"),  # Seollal, lunar
        (date(2026, 5, 24), "Buddha"),  # lunar: 8th of the 4th lunar month
        (date(2026, 5, 25), "Alternative"),  # substitute for Buddha's Birthday (a Sunday)
        (date(2025, 10, 8), "Alternative holiday for Chuseok"),  # substitute, lunar holiday
        (date(2026, 3, 2), "Alternative"),  # substitute for Independence Movement Day
        (date(2026, 10, 9), "Hangul"),
    ],
)
def test_korean_holidays_include_lunar_and_substitute_days(day: date, fragment: str) -> None:
    name = HolidayLookup("KR")(day)
    assert name is not None and fragment in name


def test_an_ordinary_working_day_is_no_holiday() -> None:
    assert HolidayLookup("KR")(date(2026, 11, 30)) is None


# -- the policy as the stream uses it (config file + directory + Seoul time) ----------------------


@pytest.fixture(scope="module")
def policy():  # type: ignore[no-untyped-def]
    return load_policy(departments=load_directory())


def test_policy_uses_seoul_time_for_an_epoch_instant(policy) -> None:  # type: ignore[no-untyped-def]
    # 03:30 UTC is 12:30 in Seoul: lunch
    instant = int(datetime(2026, 11, 30, 3, 30, tzinfo=ZoneInfo("UTC")).timestamp() * 1000)
    assert policy.decide("traffic", instant).moh_class == "lunch"


def test_policy_chuseok_substitute_holiday_and_notices(policy) -> None:  # type: ignore[no-untyped-def]
    chuseok = policy.decide("traffic", ms(at(2026, 9, 25, 10)))
    assert chuseok.moh_class == "holiday" and "Chuseok" in chuseok.reason
    substitute = policy.decide("tax", ms(at(2026, 10, 5, 14)))  # for National Foundation Day
    assert substitute.situation == "holiday" and "Alternative" in substitute.reason
    assert policy.decide("housing", ms(at(2026, 12, 3, 10))).moh_class == "moved"
    assert policy.decide("housing", ms(at(2027, 1, 4, 10))).moh_class == "default"
    # welfare's own lunch hour
    assert policy.decide("welfare", ms(at(2026, 11, 30, 11, 45))).moh_class == "lunch"
    assert policy.decide("welfare", ms(at(2026, 11, 30, 12, 45))).moh_class == "default"
    # a department missing from the file falls back to the defaults
    assert policy.decide("unknown-dept", ms(at(2026, 11, 30, 12, 15))).moh_class == "lunch"


def test_calendar_file_errors_are_reported(tmp_path: Path) -> None:
    bad = tmp_path / "calendar.toml"
    bad.write_text(
        '[departments.x]\n[[departments.x.notices]]\nname="n"\nmoh_class="nope"\nstart="2026-01-01"\n'
    )
    with pytest.raises(ValueError, match="nope"):
        load_policy(bad)
    bad.write_text('[departments.x]\nopens = "19:00"\n')
    with pytest.raises(ValueError, match="opens"):
        load_policy(bad)


# -- repeat calls -----------------------------------------------------------------------------


def test_repeat_call_rate_counts_the_same_caller_within_the_window() -> None:
    hour = 3600_000
    calls = [
        ("010-1", 0),
        ("010-1", 1 * hour),  # repeat (1 h later)
        ("010-1", 5 * hour),  # repeat of the 1 h call (4 h later)
        ("010-2", 0),
        ("010-2", 30 * hour),  # too late: not a repeat
        ("", 0),
        ("", 1),  # anonymous: never a repeat
    ]
    stats = repeat_call_stats(calls, window_ms=4 * hour)
    assert (stats.calls, stats.repeats) == (7, 2)
    assert stats.rate == pytest.approx(2 / 7)
    assert repeat_call_stats([], 1).rate == 0.0


def test_every_ringback_class_exists_on_the_pbx() -> None:
    import re

    from pipelines.core.ringback import PBX_CLASSES
    from pipelines.ringback.calendar import DEFAULT_FILE

    conf = Path(__file__).resolve().parents[2] / "docker" / "asterisk" / "conf"
    pbx = set(re.findall(r"^\[([\w-]+)\]", (conf / "musiconhold.conf").read_text(), re.M))
    assert set(PBX_CLASSES) <= pbx
    policy = load_policy(DEFAULT_FILE, departments=load_directory())
    used = {
        cls
        for cal in policy.calendars.values()
        for cls in [cal.normal_class, *cal.classes.values(), *(n.moh_class for n in cal.notices)]
    }
    assert used <= pbx, used - pbx
