#!/usr/bin/env bash
# Genuine Apache Kafka (KRaft, single node) for development, tests and CI, resolved from
# Maven Central because this machine has no Docker engine and no access to Apache's mirrors.
#
#   kafka.sh fetch    resolve the broker jars with Maven into the cache (idempotent)
#   kafka.sh start    fetch, format storage once, start on loopback, wait until it answers
#   kafka.sh stop     stop the broker started from this data dir (by PID)
#   kafka.sh status   print running/stopped and the bootstrap address
#   kafka.sh logs     tail the broker log
#
# Environment (defaults in brackets):
#   KAFKA_PORT [19092]  KAFKA_CONTROLLER_PORT [19093]  KAFKA_HEAP [768m]
#   KAFKA_CACHE_DIR [<repo>/.cache/kafka]  KAFKA_DATA_DIR [<repo>/var/kafka]
#   KAFKA_START_TIMEOUT [90] seconds
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
cache_dir="${KAFKA_CACHE_DIR:-$repo/.cache/kafka}"
lib_dir="$cache_dir/$version/lib"
data_dir="${KAFKA_DATA_DIR:-$repo/var/kafka}"
port="${KAFKA_PORT:-19092}"
controller_port="${KAFKA_CONTROLLER_PORT:-19093}"
heap="${KAFKA_HEAP:-768m}"
timeout_s="${KAFKA_START_TIMEOUT:-90}"
pid_file="$data_dir/kafka.pid"
log_file="$data_dir/broker.log"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }

fetch() {
  if [ -f "$lib_dir/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || { log "Maven (mvn) is required: apt-get install maven"; exit 1; }
  command -v java >/dev/null || { log "Java 17+ is required: apt-get install openjdk-17-jre-headless"; exit 1; }
  log "resolving org.apache.kafka:kafka_2.13:$version from Maven Central into $lib_dir"
  mkdir -p "$lib_dir"
  mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$lib_dir" -DincludeScope=runtime
  touch "$lib_dir/.complete"
}

is_running() {
  [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

render_config() {
  mkdir -p "$data_dir/log"
  sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$controller_port|g" \
      -e "s|@DATA_DIR@|$data_dir|g" "$here/server.properties.template" > "$data_dir/server.properties"
}

format_once() {
  if [ -f "$data_dir/log/meta.properties" ]; then return 0; fi
  local cluster_id
  cluster_id="$(java -cp "$lib_dir/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
  log "formatting KRaft storage in $data_dir/log (cluster $cluster_id)"
  java -Dkafka.logs.dir="$data_dir" -Dlog4j2.configurationFile="$here/log4j2.yaml" \
      -cp "$lib_dir/*" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$data_dir/server.properties" >/dev/null
}

start() {
  fetch
  if is_running; then log "already running (pid $(cat "$pid_file")) on 127.0.0.1:$port"; return 0; fi
  if port_open; then log "port $port is taken by another process; set KAFKA_PORT"; exit 1; fi
  render_config
  format_once
  : > "$log_file"
  log "starting Apache Kafka $version on 127.0.0.1:$port (data: $data_dir)"
  # setsid: the broker outlives this script and ignores the caller's Ctrl-C.
  setsid java -Xms256m -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -Djava.awt.headless=true -Dkafka.logs.dir="$data_dir" \
      -Dlog4j2.configurationFile="$here/log4j2.yaml" \
      -cp "$lib_dir/*" kafka.Kafka "$data_dir/server.properties" \
      > "$data_dir/stdout.log" 2>&1 < /dev/null &
  echo $! > "$pid_file"
  local waited=0
  until port_open && grep -q "Kafka Server started" "$log_file" 2>/dev/null; do
    if ! is_running; then
      log "broker exited during start-up; last lines of its logs:"
      tail -n 20 "$data_dir/stdout.log" "$log_file" >&2 || true
      rm -f "$pid_file"; exit 1
    fi
    if [ "$waited" -ge "$((timeout_s * 2))" ]; then log "not ready after ${timeout_s}s"; exit 1; fi
    sleep 0.5; waited=$((waited + 1))
  done
  log "ready: bootstrap 127.0.0.1:$port (pid $(cat "$pid_file"))"
}

stop() {
  if ! is_running; then rm -f "$pid_file"; log "not running"; return 0; fi
  local pid; pid="$(cat "$pid_file")"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then log "still running after 30s; killing"; kill -KILL "$pid"; fi
  rm -f "$pid_file"
  log "stopped"
}

status() {
  if is_running; then echo "running pid=$(cat "$pid_file") bootstrap=127.0.0.1:$port version=$version"
  else echo "stopped"; return 3; fi
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  logs) tail -n "${2:-50}" "$log_file" ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
