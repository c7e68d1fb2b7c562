"""A faust worker with the call tracker and the citizen-facing streams, for integration tests.

``python -m tests.integration.citizen_worker`` with the ``CALLGUARD_*`` settings in the
environment, plus (test only):

* ``CITIZEN_CALENDAR_MS``  fixed instant the ringback calendar is asked about (e.g. a lunch
  time), while commands keep real issue times;
* ``CITIZEN_BRANDED_URL`` / ``CITIZEN_ALIMTALK_URL``  the local HTTP receivers.

Until ``pipelines/app.py`` registers these streams, this is how they run against real Kafka.
"""

from __future__ import annotations

import os

import faust

from pipelines import citizen
from pipelines.app import catalog_for, new_faust_app
from pipelines.calls import agents as call_agents
from pipelines.settings import Settings
from pipelines.streaming import DeadLetters, raw_topic, wall_clock_ms


def build(settings: Settings) -> faust.App:
    catalog = catalog_for(settings)
    app = new_faust_app(settings, catalog, datadir_name="faust-citizen")
    dead_letters = DeadLetters(raw_topic(app, catalog.dead_letters), wall_clock_ms)
    call_agents.register(app, catalog, dead_letters, wall_clock_ms, idle_limit_ms=3_600_000)
    fixed = os.environ.get("CITIZEN_CALENDAR_MS")
    citizen.register(
        app,
        catalog,
        dead_letters,
        wall_clock_ms,
        calendar_clock=(lambda: int(fixed)) if fixed else None,
        branded_call_url=os.environ.get("CITIZEN_BRANDED_URL"),
        alimtalk_url=os.environ.get("CITIZEN_ALIMTALK_URL"),
    )
    return app


def main() -> None:
    settings = Settings()
    worker = faust.Worker(build(settings), loglevel="INFO", redirect_stdouts=False)
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
