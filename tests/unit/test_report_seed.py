"""The seed data the report, dashboard and notebook tests stand on: deterministic, inside its
months, and covering what they show (no database needed)."""

from __future__ import annotations

from collections import Counter

import pytest

from pipelines.departments import load_directory
from schemas.rows import STORED_TABLES
from tests.support.seed import MONTHS, TABLE_SEEDERS, SeedPlan, generate, month_bounds, ms


@pytest.fixture(scope="module")
def plan() -> SeedPlan:
    return generate()


def test_same_seed_same_rows(plan: SeedPlan) -> None:
    again = generate()
    for table in STORED_TABLES:
        assert [r.to_representation() for r in plan.rows.get(table.name, [])] == [
            r.to_representation() for r in again.rows.get(table.name, [])
        ], table.name
    assert plan.extra == again.extra
    other = generate(seed=9)
    assert len(other.rows["call_summaries"]) != len(plan.rows["call_summaries"]) or [
        r.call_id for r in other.rows["call_summaries"]
    ] != [r.call_id for r in plan.rows["call_summaries"]]


def test_every_call_starts_inside_the_seeded_months(plan: SeedPlan) -> None:
    first, _ = month_bounds(MONTHS[0])
    _, last = month_bounds(MONTHS[-1])
    for summary in plan.rows["call_summaries"]:
        assert ms(first) <= summary.started_ms < ms(last)
    ids = [s.call_id for s in plan.rows["call_summaries"]]
    assert len(ids) == len(set(ids))


def test_it_covers_what_reports_show(plan: SeedPlan) -> None:
    departments = {s.department for s in plan.rows["call_summaries"]}
    assert departments == set(load_directory().departments)
    decisions = Counter((d.stream, d.kind) for d in plan.rows["decisions"])
    for needed in [
        ("timeout", "notice"), ("timeout", "armed"), ("timeout", "terminate"),
        ("timeout", "hangup"), ("timeout", "disarmed"), ("timeout", "key_before_limit"),
        ("consent", "consent_missing"), ("consent", "recording_late"),
        ("consent", "recording_missing"), ("consent", "start_recording"),
        ("recording", "recording_shortfall"), ("recording", "recording_gaps"),
        ("masking", "personal_number_leaked"), ("callerid", "display_kakao"),
    ]:
        assert decisions[needed] > 0, needed
    situations = Counter(
        d.attrs["situation"] for d in plan.rows["decisions"] if d.stream == "ringback"
    )
    assert {"business_hours", "lunch", "after_hours", "weekend", "holiday"} <= set(situations)
    actions = Counter(i.action for i in plan.rows["incidents"])
    assert actions["log"] and actions["warn"] and actions["end"]
    causes = Counter(c.hangup_cause for c in plan.rows["cdrs"])
    assert causes["time_limit"] and causes["abuse"] and causes["no_answer"]
    assert {r["mode"] for r in plan.extra["recordings"]} == {"full", "key_press"}
    assert any(r["action"] == "delete" for r in plan.extra["recording_audit"])
    labels = Counter(r["label"] for r in TABLE_SEEDERS["feedback"](plan))
    assert labels["confirmed"] and labels["rejected"] and labels["missed"]
    assert plan.rows["dead_letters"]


def test_nothing_personal_beyond_the_fake_range(plan: SeedPlan) -> None:
    for summary in plan.rows["call_summaries"]:
        for number in (summary.caller, summary.callee):
            assert number.startswith("010-0000-") or not number.startswith("010")
    assert all(e.origin == "simulator" for e in plan.rows["call_events"])
