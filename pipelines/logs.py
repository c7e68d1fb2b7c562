"""Logging for every entry point: one readable line per record, level from settings.

Payloads (audio, transcripts) are never logged at INFO; modules log ids and counts only.
"""

from __future__ import annotations

import logging


def setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    # third-party chatter stays at WARNING unless we are debugging
    if level.lower() != "debug":
        for name in ("aiokafka", "faust", "mode", "kafka", "urllib3", "faster_whisper"):
            logging.getLogger(name).setLevel(logging.WARNING)
