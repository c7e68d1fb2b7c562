"""The integration tests share one pjsua2 process, which holds at most MAX_PHONES accounts
(the 9th aborts in C). A test that picks a fresh phone name can push the suite over that
limit only when every integration test runs together, i.e. in CI; catch it here instead."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
PHONE_NAME = re.compile(r'"((?:caller|staff)\d{2})"')


def max_phones() -> int:
    # Read the constant from the source: importing the module loads pjsua2.
    source = (TESTS / "support" / "phones.py").read_text(encoding="utf-8")
    match = re.search(r"^MAX_PHONES = (\d+)", source, re.MULTILINE)
    assert match, "MAX_PHONES not found in tests/support/phones.py"
    return int(match.group(1))


def test_integration_suite_uses_no_more_phones_than_one_process_holds() -> None:
    names = {
        name
        for path in (TESTS / "integration").glob("*.py")
        for name in PHONE_NAME.findall(path.read_text(encoding="utf-8"))
    }
    assert names, "no phone names found: the pattern no longer matches the tests"
    assert len(names) <= max_phones(), (
        f"{len(names)} distinct phones in tests/integration ({sorted(names)}); "
        f"one pjsua2 process holds {max_phones()}: reuse a phone"
    )
