"""Staff feedback labels: validation, categories, CSV import (all-or-nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.learning.feedback import (
    FeedbackError,
    Label,
    read_csv,
    records_from_rows,
    to_record,
)


def make(label: Label, **kw: str) -> object:
    args = {"labeled_by": "kim", "role": "staff", "source": "cli", "now_ms": 1, **kw}
    return to_record(label, **args)  # type: ignore[arg-type]


def test_confirm_takes_the_detectors_category_or_a_correction() -> None:
    record = make(Label("inc-1", "confirm"), incident_category="insult")
    assert (record.label, record.category) == ("confirmed", "insult")  # type: ignore[attr-defined]
    record = make(Label("inc-1", "confirm", "threat"), incident_category="insult")
    assert record.category == "threat"  # type: ignore[attr-defined]
    with pytest.raises(FeedbackError, match="abuse category"):
        make(Label("inc-1", "confirm"))


def test_reject_is_clean_and_missed_needs_text_and_category() -> None:
    assert make(Label("inc-2", "reject")).category == "clean"  # type: ignore[attr-defined]
    with pytest.raises(FeedbackError, match="clean"):
        make(Label("inc-2", "reject", "insult"))
    with pytest.raises(FeedbackError, match="--text"):
        make(Label("", "missed", "insult"))
    with pytest.raises(FeedbackError, match="category"):
        make(Label("", "missed", "", "이 멍청한 공무원아"))
    missed = make(Label("", "missed", "insult", " 제 번호 010-1234-5678 인데 이 멍청아 ", "c-9"))
    assert missed.label == "missed" and missed.call_id == "c-9"  # type: ignore[attr-defined]
    assert "010-1234-5678" not in missed.text  # type: ignore[attr-defined]


def test_same_person_relabelling_replaces_their_earlier_label() -> None:
    first = make(Label("inc-3", "confirm", "insult"))
    again = make(Label("inc-3", "reject"))
    other = make(Label("inc-3", "reject"), labeled_by="lee")
    assert first.feedback_id == again.feedback_id != other.feedback_id  # type: ignore[attr-defined]


def test_unknown_label_and_anonymous_are_refused() -> None:
    with pytest.raises(FeedbackError, match="label must be"):
        make(Label("inc-4", "maybe"))
    with pytest.raises(FeedbackError, match="who labels"):
        make(Label("inc-4", "reject"), labeled_by="")


def test_csv_import_is_all_or_nothing_and_names_the_line(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(
        "incident_id,label,category,text,labeled_by,note\n"
        "inc-1,confirm,,,park,\n"
        "inc-2,reject,,,,\n"
        ",missed,sexual_harassment,목소리가 섹시하네요 오늘 만날래요,,from QA\n",
        encoding="utf-8",
    )
    records = records_from_rows(
        read_csv(good),
        default_by="sup1",
        role="supervisor",
        now_ms=5,
        categories={"inc-1": "profanity"},
    )
    assert [(r.label, r.category, r.labeled_by) for r in records] == [
        ("confirmed", "profanity", "park"),
        ("rejected", "clean", "sup1"),
        ("missed", "sexual_harassment", "sup1"),
    ]
    assert {r.source for r in records} == {"csv"}
    bad = tmp_path / "bad.csv"
    bad.write_text("incident_id,label\ninc-1,reject\ninc-2,perhaps\n", encoding="utf-8")
    with pytest.raises(FeedbackError, match="line 3"):
        records_from_rows(read_csv(bad), default_by="x", role="staff", now_ms=1)
    odd = tmp_path / "odd.csv"
    odd.write_text("incident,label\n", encoding="utf-8")
    with pytest.raises(FeedbackError, match="unknown column"):
        read_csv(odd)
