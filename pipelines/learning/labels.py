"""Staff feedback → labelled training texts (pure) and the ClickHouse source that feeds it.

One label per *subject* (an incident, or for ``missed`` labels the call + text): a
supervisor's label beats a staff member's (auditors sit in between), and among labels of the
same rank the latest wins.  ``confirmed`` and ``rejected`` labels take their text from the
incident's evidence (the masked utterance); ``missed`` labels carry their own text.  Labels
whose text is unknown (the incident is not in ClickHouse) are counted and left out.

The time-based holdout keeps the most recent labels out of training: they are how a candidate
model is judged on what the office is seeing *now*.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipelines.core.abuse_text import CATEGORIES, normalize

#: who wins a conflict on the same subject (higher first); unknown roles rank as staff
ROLE_RANK = {"supervisor": 2, "auditor": 1, "staff": 0}


@dataclass(frozen=True)
class FeedbackRow:
    """One row of ``feedback FINAL``, with the incident's evidence when it has one."""

    feedback_id: str
    incident_id: str
    call_id: str
    label: str  # confirmed | rejected | missed
    category: str
    text: str
    role: str
    labeled_by: str
    ts_ms: int
    evidence: str = ""


@dataclass(frozen=True)
class LabeledText:
    subject: str
    text: str
    category: str
    label: str
    role: str
    ts_ms: int

    def as_row(self) -> dict[str, Any]:
        """The shape :func:`connectors.models.evaluate.evaluate` reads."""
        return {
            "id": self.subject,
            "text": self.text,
            "category": self.category,
            "kind": f"feedback:{self.label}",
        }


@dataclass
class LabelStats:
    rows: int = 0
    subjects: int = 0
    used: int = 0
    overruled: int = 0  # labels that lost to a supervisor's or a later one
    conflicts: int = 0  # subjects whose labels disagreed
    without_text: int = 0
    unknown_category: int = 0
    by_label: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def subject_of(row: FeedbackRow) -> str:
    if row.incident_id:
        return row.incident_id
    return f"missed:{row.call_id}:{normalize(row.text)}"


def _rank(row: FeedbackRow) -> tuple[int, int, str]:
    return (ROLE_RANK.get(row.role, 0), row.ts_ms, row.feedback_id)


def resolve(rows: Iterable[FeedbackRow]) -> tuple[list[LabeledText], LabelStats]:
    """One label per subject (see the module docstring), oldest first."""
    stats = LabelStats()
    by_subject: dict[str, list[FeedbackRow]] = {}
    for row in rows:
        stats.rows += 1
        by_subject.setdefault(subject_of(row), []).append(row)
    stats.subjects = len(by_subject)
    out: list[LabeledText] = []
    for subject, group in by_subject.items():
        winner = max(group, key=_rank)
        stats.overruled += len(group) - 1
        if len({(r.label, r.category) for r in group}) > 1:
            stats.conflicts += 1
        text = (winner.text if winner.label == "missed" else winner.evidence) or winner.text
        if not text.strip():
            stats.without_text += 1
            continue
        if winner.category not in CATEGORIES:
            stats.unknown_category += 1
            continue
        out.append(
            LabeledText(
                subject, text.strip(), winner.category, winner.label, winner.role, winner.ts_ms
            )
        )
    out.sort(key=lambda t: (t.ts_ms, t.subject))
    stats.used = len(out)
    stats.by_label = dict(Counter(t.label for t in out))
    stats.by_category = dict(Counter(t.category for t in out))
    return out, stats


def split_holdout(
    labels: Sequence[LabeledText], fraction: float = 0.2, min_labels: int = 5
) -> tuple[list[LabeledText], list[LabeledText]]:
    """(train, holdout): the most recent ``fraction`` by time is held out (none if too few)."""
    ordered = sorted(labels, key=lambda t: (t.ts_ms, t.subject))
    k = round(len(ordered) * fraction) if len(ordered) >= min_labels else 0
    if k == 0:
        return ordered, []
    return ordered[:-k], ordered[-k:]


class FeedbackSource(Protocol):
    def rows(self) -> list[FeedbackRow]: ...


class Reader(Protocol):
    def query(self, sql: str) -> Any: ...


FEEDBACK_SQL = """
SELECT f.feedback_id, f.incident_id, f.call_id, f.label, f.category, f.text, f.role,
       f.labeled_by, toUnixTimestamp64Milli(f.ts_ms) AS ts, i.evidence
FROM (SELECT * FROM feedback FINAL) AS f
LEFT JOIN (
    SELECT incident_id, argMax(evidence, ts_ms) AS evidence
    FROM incidents FINAL
    GROUP BY incident_id
) AS i ON f.incident_id = i.incident_id
ORDER BY ts, f.feedback_id
"""


class ClickHouseFeedbackSource:
    """``feedback FINAL`` left-joined with the incidents' evidence (any reader of ClickHouse)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    def rows(self) -> list[FeedbackRow]:
        result = self.reader.query(FEEDBACK_SQL)
        return [
            FeedbackRow(
                feedback_id=str(r[0]),
                incident_id=str(r[1] or ""),
                call_id=str(r[2] or ""),
                label=str(r[3]),
                category=str(r[4]),
                text=str(r[5] or ""),
                role=str(r[6] or ""),
                labeled_by=str(r[7] or ""),
                ts_ms=int(r[8]),
                evidence=str(r[9] or ""),
            )
            for r in result.rows
        ]


class StaticFeedbackSource:
    """A fixed list of rows (tests, notebooks, offline experiments)."""

    def __init__(self, rows: Sequence[FeedbackRow]) -> None:
        self._rows = list(rows)

    def rows(self) -> list[FeedbackRow]:
        return list(self._rows)
