"""The simulator against a real broker: what it reports is what lands on the topics."""

from __future__ import annotations

import time
from collections import Counter

from connectors.kafka.topics import TopicCatalog
from connectors.simulator.audio import load_clips
from connectors.simulator.producer import run_simulation
from connectors.simulator.scenario import MALFORMED_HEADER, plan_calls
from tests.integration.conftest import read_topic, wait_until


def test_run_simulation_on_a_real_broker(bootstrap: str, catalog: TopicCatalog) -> None:
    clips = load_clips()
    calls = plan_calls(4, seed=3, start_ms=int(time.time() * 1000), clips=clips)
    report = run_simulation(bootstrap, catalog, calls, clips, speed=0, malformed=3)
    expected = {
        catalog.call_events: report.events + 1,  # malformed spread round-robin: 1 each
        catalog.cdr: report.cdrs + 1,
        catalog.audio: report.audio_chunks + 1,
    }
    # read until everything the report claims is visible (a produce acknowledged a moment
    # ago can reach the end offsets a little later on a busy machine)
    counts: list[Counter[str]] = []

    def all_visible() -> list[object]:
        found = read_topic(bootstrap, list(expected), committed_only=False, timeout_s=60)
        counts.append(Counter(str(m.topic()) for m in found))
        return found if counts[-1] == Counter(expected) else []

    try:
        messages = wait_until(all_visible, 120)
    except AssertionError:
        raise AssertionError(f"expected {dict(expected)}, read {counts[-3:]}") from None
    seen = Counter(str(m.topic()) for m in messages)
    flagged = sum((MALFORMED_HEADER, b"1") in (m.headers() or []) for m in messages)
    assert seen == Counter(expected)
    assert flagged == report.malformed == 3
