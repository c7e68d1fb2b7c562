"""Staff labels on detections (and on abuse the detector missed), validated into records.

A label says what the utterance really was, in the classifier's categories:

* ``confirm`` — the detection was right (``--category`` corrects the category if it was wrong);
* ``reject`` — a false alarm: the utterance was clean;
* ``missed`` — an utterance that should have been flagged; needs its text and category.

CSV import (``callguard feedback --csv FILE``) takes the columns ``incident_id, label,
category, text, labeled_by, note`` (``text`` only for missed); every row is checked before any
is sent, and errors name the line.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.pii import mask_text
from schemas.records import Feedback
from schemas.vocabulary import TEXT_CATEGORIES

LABELS = {"confirm": "confirmed", "reject": "rejected", "missed": "missed"}
ABUSIVE = tuple(c for c in TEXT_CATEGORIES if c != "clean")
_NS = uuid.UUID("5e0c9a4b-7f21-4d8e-b3a6-1c2d3e4f5a6b")


class FeedbackError(ValueError):
    pass


@dataclass(frozen=True)
class Label:
    incident_id: str
    label: str  # confirm | reject | missed
    category: str = ""
    text: str = ""
    call_id: str = ""
    note: str = ""


def to_record(
    label: Label,
    *,
    labeled_by: str,
    role: str,
    source: str,
    now_ms: int,
    incident_category: str = "",
) -> Feedback:
    """Validate one label; ``incident_category`` is what the detector said (if known)."""
    kind = LABELS.get(label.label)
    if kind is None:
        raise FeedbackError(f"label must be one of {', '.join(LABELS)}, not {label.label!r}")
    if not labeled_by:
        raise FeedbackError("who labels must be known (--by)")
    category = label.category
    if kind == "rejected":
        if category not in ("", "clean"):
            raise FeedbackError("a rejected detection is clean; use confirm --category to correct")
        category = "clean"
    elif kind == "confirmed":
        category = category or incident_category
        if category not in ABUSIVE:
            raise FeedbackError(
                f"confirm needs an abuse category ({', '.join(ABUSIVE)}); got {category!r}"
            )
        if not label.incident_id:
            raise FeedbackError("confirm needs an incident id")
    else:  # missed
        if category not in ABUSIVE:
            raise FeedbackError(f"missed needs --category ({', '.join(ABUSIVE)})")
        if not label.text.strip():
            raise FeedbackError("missed needs --text: the utterance that should have been flagged")
    if kind != "missed" and not label.incident_id:
        raise FeedbackError(f"{label.label} needs an incident id")
    subject = label.incident_id or f"missed:{label.call_id}:{label.text.strip()}"
    return Feedback(
        # one current label per (subject, person): a changed mind replaces the earlier row
        feedback_id=str(uuid.uuid5(_NS, f"{subject}/{labeled_by}")),
        incident_id=label.incident_id,
        call_id=label.call_id,
        label=kind,
        category=category,
        text=mask_text(label.text.strip()) if kind == "missed" else "",
        labeled_by=labeled_by,
        role=role,
        source=source,
        ts_ms=now_ms,
        note=label.note,
    )


CSV_COLUMNS = ("incident_id", "label", "category", "text", "labeled_by", "note")


def read_csv(path: Path) -> list[tuple[int, Mapping[str, str]]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"label"} - set(reader.fieldnames or ())
        if missing:
            raise FeedbackError(
                f"{path}: needs a header with at least: label; has {reader.fieldnames}"
            )
        unknown = set(reader.fieldnames or ()) - set(CSV_COLUMNS) - {"call_id"}
        if unknown:
            raise FeedbackError(f"{path}: unknown column(s) {sorted(unknown)}")
        return [(n, row) for n, row in enumerate(reader, start=2)]


def records_from_rows(
    rows: Iterable[tuple[int, Mapping[str, str]]],
    *,
    default_by: str,
    role: str,
    now_ms: int,
    categories: Mapping[str, str] | None = None,
) -> list[Feedback]:
    """All rows or none: the first invalid row raises with its line number."""
    out = []
    for line, row in rows:
        label = Label(
            incident_id=(row.get("incident_id") or "").strip(),
            label=(row.get("label") or "").strip(),
            category=(row.get("category") or "").strip(),
            text=row.get("text") or "",
            call_id=(row.get("call_id") or "").strip(),
            note=(row.get("note") or "").strip(),
        )
        try:
            out.append(
                to_record(
                    label,
                    labeled_by=(row.get("labeled_by") or "").strip() or default_by,
                    role=role,
                    source="csv",
                    now_ms=now_ms,
                    incident_category=(categories or {}).get(label.incident_id, ""),
                )
            )
        except FeedbackError as error:
            raise FeedbackError(f"line {line}: {error}") from None
    return out
