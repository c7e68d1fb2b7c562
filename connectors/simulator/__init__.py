"""Call simulator: realistic, clearly labelled (``origin="simulator"``) PBX traffic for Kafka.

``scenario`` plans calls deterministically and turns them into wire records, ``audio`` loads the
speech clips they play, and ``producer`` paces the result onto the topics.  Kept free of the
Kafka client at import time so the pure parts can be used without a broker.
"""

from __future__ import annotations

from connectors.simulator.audio import SAMPLE_RATE, Clip, load_clips
from connectors.simulator.scenario import (
    SimulatedCall,
    audio_chunks,
    cdr,
    events,
    malformed_messages,
    plan_calls,
)

__all__ = [
    "SAMPLE_RATE",
    "Clip",
    "SimulatedCall",
    "audio_chunks",
    "cdr",
    "events",
    "load_clips",
    "malformed_messages",
    "plan_calls",
]
