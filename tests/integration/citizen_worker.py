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
from pipelines.app import catalog_for
from pipelines.calls import agents as call_agents
from pipelines.settings import Settings
from pipelines.streaming import DeadLetters, raw_topic, wall_clock_ms


def build(settings: Settings) -> faust.App:
    catalog = catalog_for(settings)
    app = faust.App(
        catalog.faust_app_id,  # its changelogs exist (`topics create`)
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee=settings.processing_guarantee,
        datadir=str(settings.data_dir / "faust-citizen"),
        web_port=settings.worker_web_port,
        web_host="127.0.0.1",
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
    )
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
