"""The audio tracker agent: completeness per leg, dead letters for bad chunks."""

from __future__ import annotations

from typing import Any

import faust

from schemas.codec import encode
from schemas.records import AudioLegStats, DeadLetter
from tests.agents.conftest import Sent
from tests.samples import audio_chunk


async def test_leg_stats_report_gaps_and_duplicates(
    app: faust.App, catalog: Any, sent: Sent
) -> None:
    async with app.agents["callguard.audio"].test_context() as ctx:
        for seq in (0, 1, 1, 3, 5):
            await ctx.put(key=b"c-1", value=encode(audio_chunk(seq=seq, final=seq == 5)))
        await ctx.put(key=b"c-1", value=encode(audio_chunk(seq=0, leg="staff", final=True)))
    stats = {s.leg: s for s in sent.records(catalog.audio_stats, AudioLegStats)}
    assert stats["caller"].chunks == 4
    assert stats["caller"].duplicate_chunks == 1
    assert stats["caller"].missing_chunks == 2
    assert stats["staff"].chunks == 1 and stats["staff"].missing_chunks == 0


async def test_bad_chunk_is_dead_lettered(app: faust.App, catalog: Any, sent: Sent) -> None:
    async with app.agents["callguard.audio"].test_context() as ctx:
        good = audio_chunk(seq=0, final=True)
        bad = encode(good).replace(b'"sample_rate":8000', b'"sample_rate":44100')
        await ctx.put(key=b"c-1", value=bad)
        await ctx.put(key=b"c-1", value=encode(good))
    (letter,) = sent.records(catalog.dead_letters, DeadLetter)
    assert letter.consumer == "audio" and "sample_rate" in letter.reason
    assert len(sent.records(catalog.audio_stats, AudioLegStats)) == 1
