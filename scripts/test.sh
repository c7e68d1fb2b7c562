#!/usr/bin/env bash
# Run every test tier. Starts the services the integration tier needs (a genuine Apache Kafka
# broker on its own port and data dir) and stops them again, whatever happens.
#   scripts/test.sh            all tiers
#   scripts/test.sh unit       one tier (unit | agents | integration), extra args go to pytest
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
scripts/bootstrap.sh

tier="${1:-all}"; shift || true
py=.venv/bin/python

if [ "${CALLGUARD_SKIP_LINT:-0}" != 1 ]; then  # set to 1 to iterate on one test quickly
  echo "== lint: ruff, mypy"
  .venv/bin/ruff check .
  .venv/bin/mypy pipelines schemas connectors
fi

run_pytest() {
  # exit code 5 (no tests collected) counts as failure: every tier must have tests
  "$py" -m pytest "$@"
}

if [ "$tier" = all ] || [ "$tier" = unit ]; then
  echo "== unit tests"; run_pytest tests/unit "$@"
fi
if [ "$tier" = all ] || [ "$tier" = agents ]; then
  echo "== agent tests (faust test_context)"; run_pytest tests/agents "$@"
fi
if [ "$tier" = all ] || [ "$tier" = integration ]; then
  export KAFKA_PORT="${KAFKA_TEST_PORT:-29092}" KAFKA_CONTROLLER_PORT="${KAFKA_TEST_CONTROLLER_PORT:-29093}"
  export KAFKA_DATA_DIR="$repo/var/test-kafka"
  export ASTERISK_RUN_DIR="$repo/var/test-asterisk"
  stop_services() {
    docker/asterisk/asterisk.sh stop || true
    docker/kafka/kafka.sh stop || true
  }
  trap stop_services EXIT
  docker/kafka/kafka.sh start
  # The real PBX (Debian sid Asterisk in a chroot; the root is built once and cached).
  docker/asterisk/asterisk.sh start
  export CALLGUARD_KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT" CALLGUARD_ASTERISK_RUNNING=1
  echo "== integration tests (Apache Kafka on $CALLGUARD_KAFKA_BOOTSTRAP, Asterisk, chDB)"
  run_pytest tests/integration "$@"
fi
