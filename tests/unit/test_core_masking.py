"""Masking audit: outbound calls must present an office number; numbers in logs are masked."""

from __future__ import annotations

import pytest

from pipelines.core.masking import LEAKED, MISSING, OutboundCall, audit, digits, mask_number
from pipelines.departments import load_directory

OFFICES = [d.office_number for d in load_directory().departments.values()]


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("02-120-1100", "021201100"),
        ("021201100", "021201100"),
        ("(02) 120 1100", "021201100"),
        ("+82 2-120-1100", "021201100"),
        ("+82-10-1234-5678", "01012345678"),
        ("", ""),
    ],
)
def test_numbers_are_compared_as_national_digits(number: str, expected: str) -> None:
    assert digits(number) == expected


@pytest.mark.parametrize("presented", ["02-120-1100", "021201100", "+82 2 120 1400"])
def test_office_numbers_in_any_spelling_pass(presented: str) -> None:
    assert audit(OutboundCall("c1", "traffic", presented), OFFICES) is None


def test_a_personal_mobile_number_is_flagged_and_masked() -> None:
    finding = audit(OutboundCall("c2", "traffic", "010-9876-5432"), OFFICES)
    assert finding is not None and finding.kind == LEAKED
    assert "mobile" in finding.reason and "9876" not in finding.reason
    assert finding.masked == "010******32"
    assert "98765" not in finding.masked


def test_an_unknown_landline_and_a_missing_number_are_flagged() -> None:
    other = audit(OutboundCall("c3", "tax", "02-555-0000"), OFFICES)
    assert other is not None and other.kind == LEAKED and "mobile" not in other.reason
    missing = audit(OutboundCall("c4", "tax", ""), OFFICES)
    assert missing is not None and missing.kind == MISSING


def test_mask_number_never_reveals_the_middle() -> None:
    assert mask_number("010-1234-5678") == "010******78"
    assert mask_number("1234") == "****"
