#!/usr/bin/env bash
# The real Asterisk PBX (Debian sid's Asterisk, pinned) for development, tests and CI,
# run with chroot from a root built by build-root.sh (no Docker engine here). Needs root.
#
#   asterisk.sh start       build the root if needed, install conf + sounds, start, wait for ARI
#   asterisk.sh stop        stop the PBX started from this run dir (TERM, then KILL)
#   asterisk.sh restart     stop, then start
#   asterisk.sh status      print running/stopped and the addresses (exit 3 when stopped)
#   asterisk.sh cli CMD..   run an Asterisk CLI command, e.g. `asterisk.sh cli pjsip show contacts`
#   asterisk.sh logs [N]    last N lines of Asterisk's messages log [50]
#   asterisk.sh root        print the root directory
#
# Loopback addresses: SIP udp 127.0.0.1:25060, ARI http://127.0.0.1:28088/ari (callguard /
# callguard-ari), AMI 127.0.0.1:25038 (callguard / callguard-ami), RTP 31000-31999.
#
# Environment (defaults in brackets):
#   ASTERISK_RUN_DIR [<repo>/var/asterisk]   pid file, console log
#   ASTERISK_START_TIMEOUT [30] seconds      CALLGUARD_ASTERISK_ROOT: see build-root.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
run_dir="${ASTERISK_RUN_DIR:-$repo/var/asterisk}"
timeout_s="${ASTERISK_START_TIMEOUT:-30}"
pid_file="$run_dir/asterisk.pid"
console_log="$run_dir/console.log"
ari_url="http://127.0.0.1:28088/ari"
ari_auth="callguard:callguard-ari"
root="$("$here/build-root.sh" --path)"
pbx="$root/opt/pbx"

log() { printf 'asterisk.sh: %s\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then log "ERROR: needs root (chroot into $root)"; exit 1; fi
}

# alive and really Asterisk (a stale pid file may name a reused pid)
is_running() {
  [ -f "$pid_file" ] && [ "$(cat "/proc/$(cat "$pid_file")/comm" 2>/dev/null)" = asterisk ]
}

ari_ready() {
  curl -fsS -m 2 -u "$ari_auth" "$ari_url/asterisk/info" >/dev/null 2>&1
}

udp_port_taken() { # port -> 0 when something on this host listens on 127.0.0.1/0.0.0.0:port
  ss -Hlnu "sport = :$1" 2>/dev/null | grep -q .
}
tcp_port_taken() { ss -Hlnt "sport = :$1" 2>/dev/null | grep -q .; }

install_files() {
  # name lookups inside the root: without these Asterisk logs getaddrinfo errors per call
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost\n' \
      "$(hostname)" > "$root/etc/hosts"
  mkdir -p "$pbx"/{etc,lib,db,keys,run,log/cdr-csv,spool/recording,sounds/callguard,moh}
  # config: overwritten on every start so conf/ in git is the only source of truth
  rm -f "$pbx"/etc/*.conf
  local moddir
  moddir="$(cd "$root" && ls -d usr/lib/*/asterisk/modules | head -n 1)"
  for f in "$here"/conf/*.conf; do
    sed -e "s|@MODDIR@|/$moddir|g" "$f" > "$pbx/etc/$(basename "$f")"
  done
  # announcements and hold clips
  rm -f "$pbx"/sounds/callguard/*.wav
  cp "$here"/sounds/*.wav "$pbx/sounds/callguard/"
  local cls clip
  for cls in default:ringback-tone lunch:ringback-lunch after_hours:ringback-after-hours \
             holiday:ringback-holiday moved:ringback-moved; do
    clip="${cls#*:}"; cls="${cls%%:*}"
    mkdir -p "$pbx/moh/$cls"; rm -f "$pbx/moh/$cls"/*
    cp "$here/sounds/$clip.wav" "$pbx/moh/$cls/"
  done
}

start() {
  need_root
  "$here/build-root.sh"
  mkdir -p "$run_dir"
  if is_running; then
    if ari_ready; then log "already running (pid $(cat "$pid_file")), ARI $ari_url"; return 0; fi
    log "pid $(cat "$pid_file") is alive but ARI does not answer; restarting it"
    stop
  fi
  rm -f "$pid_file"
  # a PBX from another run dir (or a crashed one) would hold the ports
  if udp_port_taken 25060 || tcp_port_taken 28088 || tcp_port_taken 25038; then
    log "ERROR: port 25060/udp, 28088 or 25038 is taken by another process:"
    ss -Hlnptu "( sport = :25060 or sport = :28088 or sport = :25038 )" >&2 || true
    exit 1
  fi
  install_files
  rm -f "$pbx/run/asterisk.ctl" "$pbx/run/asterisk.pid"
  : > "$console_log"
  local t0; t0=$(date +%s%N)
  log "starting Asterisk $(sed -n 's/^asterisk=//p' "$root/.callguard-root-complete") from $root"
  # setsid: the PBX outlives this script and ignores the caller's Ctrl-C.
  # -f: foreground (no fork), so $! is Asterisk's own pid; -n: no colours; -C: our config.
  setsid chroot "$root" /usr/sbin/asterisk -f -n -C /opt/pbx/etc/asterisk.conf \
      > "$console_log" 2>&1 < /dev/null &
  echo $! > "$pid_file"
  local deadline=$(( $(date +%s) + timeout_s ))
  until ari_ready; do
    if ! is_running; then
      log "ERROR: Asterisk exited during start-up; last lines of its logs:"
      tail -n 20 "$console_log" "$pbx/log/messages.log" >&2 2>/dev/null || true
      rm -f "$pid_file"; exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "ERROR: ARI did not answer within ${timeout_s}s; last lines of its logs:"
      tail -n 20 "$console_log" "$pbx/log/messages.log" >&2 2>/dev/null || true
      stop; exit 1
    fi
    sleep 0.1
  done
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  log "ready in $((ms / 1000)).$(printf '%03d' $((ms % 1000))) s (pid $(cat "$pid_file")):" \
      "SIP udp 127.0.0.1:25060, ARI $ari_url, AMI 127.0.0.1:25038"
}

stop() {
  if ! is_running; then rm -f "$pid_file"; log "not running"; return 0; fi
  local pid; pid="$(cat "$pid_file")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "still running after 10 s; killing"; kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pid_file"
  log "stopped"
}

status() {
  if is_running; then
    local ari="not answering"; ari_ready && ari="ready"
    echo "running pid=$(cat "$pid_file") sip=udp:127.0.0.1:25060 ari=$ari_url ($ari) ami=127.0.0.1:25038"
  else
    echo "stopped"; return 3
  fi
}

cli() {
  need_root
  is_running || { log "not running"; exit 1; }
  chroot "$root" /usr/sbin/asterisk -C /opt/pbx/etc/asterisk.conf -rx "$*"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  cli) shift; cli "$@" ;;
  logs) tail -n "${2:-50}" "$pbx/log/messages.log" ;;
  root) echo "$root" ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
