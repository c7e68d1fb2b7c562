"""The citizen-facing streams in one call: situational ringback, caller-ID branding, masking
audit.  ``pipelines.app.create_app`` calls :func:`register` with what the settings name.

Each stream also has its own ``register`` (``pipelines/{ringback,callerid,masking}/agents.py``)
for tests and for deployments that run only some of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust

from connectors.kafka.topics import TopicCatalog
from connectors.notify.http import Notifier, notifier
from connectors.notify.requests import ALIMTALK, BRANDED_CALL
from pipelines.callerid import agents as callerid_agents
from pipelines.callerid.config import load_branding
from pipelines.departments import Directory, load_directory
from pipelines.masking import agents as masking_agents
from pipelines.ringback import agents as ringback_agents
from pipelines.ringback.calendar import load_policy
from pipelines.streaming import Clock, DeadLetters


def register(
    app: faust.App,
    catalog: TopicCatalog,
    dead_letters: DeadLetters,
    clock: Clock,
    *,
    directory: Directory | None = None,
    calendar_file: Path | None = None,
    callerid_file: Path | None = None,
    branded_call_url: str | None = None,
    alimtalk_url: str | None = None,
    notify_token: str = "",
    calendar_clock: Clock | None = None,
    display: Notifier | None = None,
    kakao: Notifier | None = None,
) -> dict[str, Any]:
    """Register the three streams; returns their agents by name."""
    directory = directory or load_directory()
    policy = load_policy(calendar_file, departments=directory)
    branding = load_branding(directory, callerid_file)
    display = display or notifier(BRANDED_CALL, branded_call_url, token=notify_token)
    kakao = kakao or notifier(ALIMTALK, alimtalk_url, token=notify_token)
    return {
        "ringback": ringback_agents.register(
            app, catalog, dead_letters, clock, policy=policy, calendar_clock=calendar_clock
        ),
        "callerid": callerid_agents.register(
            app, catalog, dead_letters, clock, config=branding, display=display, kakao=kakao
        ),
        "masking": masking_agents.register(
            app,
            catalog,
            dead_letters,
            clock,
            office_numbers=[d.office_number for d in directory.departments.values()],
        ),
    }
