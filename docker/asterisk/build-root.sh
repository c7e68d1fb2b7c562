#!/usr/bin/env bash
# Build the Debian-sid root that runs the real Asterisk PBX for development, tests and CI.
#
# Asterisk is in no Debian stable release; sid has it. mmdebstrap builds a minimal sid
# root holding the pinned Asterisk package; docker/asterisk/asterisk.sh runs it with chroot.
# Needs root (chroot, mmdebstrap --mode=root) and the Debian mirror the host's apt uses.
#
#   build-root.sh            build the root (idempotent: skipped when already complete)
#   build-root.sh --path     print the root's path and exit
#   build-root.sh --check    print the pinned version and the version sid serves now
#
# Environment:
#   CALLGUARD_ASTERISK_ROOT  the root directory
#                            [${XDG_CACHE_HOME:-$HOME/.cache}/callguard/asterisk-root-<pin>]
#   ASTERISK_MIRROR          Debian mirror URL [the host's apt mirror, else deb.debian.org]
#
# The pin lives in docker/asterisk/ASTERISK_VERSION (also the Dockerfile's ASTERISK_VERSION).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pin="$(tr -d ' \n' < "$here/ASTERISK_VERSION")"
pin_tag="$(printf '%s' "$pin" | tr -c 'A-Za-z0-9._-' '_')"
root="${CALLGUARD_ASTERISK_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/callguard/asterisk-root-$pin_tag}"
marker="$root/.callguard-root-complete"
# Packages beside asterisk (its Depends bring asterisk-modules, -config and the GSM
# core sounds). None needed so far: our announcements are our own WAV files.
extra_packages=()

log() { printf 'build-root.sh: %s\n' "$*" >&2; }

# the production image must run the same Asterisk as development and tests
docker_pin="$(sed -n 's/^ARG ASTERISK_VERSION=//p' "$here/Dockerfile" 2>/dev/null || true)"
if [ -n "$docker_pin" ] && [ "$docker_pin" != "$pin" ]; then
  log "ERROR: Dockerfile pins asterisk $docker_pin but ASTERISK_VERSION says $pin; make them equal"
  exit 1
fi

mirror() {
  if [ -n "${ASTERISK_MIRROR:-}" ]; then echo "$ASTERISK_MIRROR"; return; fi
  local m=""
  m="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  [ -n "$m" ] || m="$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  echo "${m:-http://deb.debian.org/debian}"
}

keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# What version of asterisk sid serves now: apt against a throw-away state directory.
sid_candidate() {
  local tmp; tmp="$(mktemp -d)"
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
  echo "deb [signed-by=$keyring] $(mirror) sid main" > "$tmp/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache"
              -o Acquire::Check-Valid-Until=false -o APT::Sandbox::User=root)
  apt-get -qq "${opts[@]}" update >/dev/null 2>&1 || { rm -rf "$tmp"; echo "unknown (apt update failed)"; return; }
  apt-cache "${opts[@]}" policy asterisk 2>/dev/null | awk '/Candidate:/{print $2}'
  rm -rf "$tmp"
}

pin_gone() {
  local now; now="$(sid_candidate)"
  log "ERROR: Debian sid no longer serves asterisk=$pin (it serves: ${now:-none})."
  log "To move the pin: write the new version into docker/asterisk/ASTERISK_VERSION and the"
  log "Dockerfile's ARG ASTERISK_VERSION, then rerun (the new root gets a new cache directory),"
  log "run tests/integration/test_asterisk_pbx.py and update docker/asterisk/README.md."
  exit 1
}

case "${1:-}" in
  --path) echo "$root"; exit 0 ;;
  --check) echo "pinned: $pin"; echo "sid:    $(sid_candidate)"; exit 0 ;;
  "") ;;
  *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

if [ -f "$marker" ]; then
  log "root for asterisk $pin is complete: $root"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  log "ERROR: building the Asterisk root needs root (mmdebstrap --mode=root, chroot)"; exit 1
fi
# one builder at a time (parallel test runs); the others wait and then find it complete
mkdir -p "$(dirname "$root")"
exec 9> "$root.lock"
flock 9
if [ -f "$marker" ]; then log "root for asterisk $pin is complete: $root"; exit 0; fi
if ! command -v mmdebstrap >/dev/null; then
  log "installing mmdebstrap on the host (apt-get)"
  apt-get install -y --no-install-recommends mmdebstrap >&2
fi

# A half-built root (interrupted earlier) is thrown away and built again.
if [ -e "$root" ]; then log "removing incomplete root $root"; rm -rf "$root"; fi
started=$(date +%s)
log "building a Debian sid root with asterisk=$pin into $root (mirror $(mirror)); about 1 min"
include="asterisk=$pin"
for p in "${extra_packages[@]}"; do include+=",$p"; done
set +e
mmdebstrap --variant=apt --mode=root --format=directory \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --include="$include" \
  sid "$root" "deb [signed-by=$keyring] $(mirror) sid main" 2>&1 | tee "$root.build.log" >&2
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
  rm -rf "$root"
  if grep -qE "Version '.*' for 'asterisk' was not found|Unable to locate package asterisk" "$root.build.log"; then
    pin_gone
  fi
  log "ERROR: mmdebstrap failed (rc=$rc); full log: $root.build.log"; exit 1
fi
rm -f "$root.build.log"

installed="$(chroot "$root" dpkg-query -W -f='${Version}' asterisk)"
if [ "$installed" != "$pin" ]; then
  log "ERROR: the root holds asterisk $installed, not the pinned $pin"; exit 1
fi
# The PBX's mutable tree; asterisk.sh fills etc/, sounds/ and moh/ on every start.
mkdir -p "$root"/opt/pbx/{etc,lib,db,keys,run,log/cdr-csv,spool/recording,sounds/callguard,moh}
# apt's package lists and downloaded .debs are not needed to run; keep the cache small.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_Packages* 2>/dev/null || true
printf 'asterisk=%s\nbuilt=%s\n' "$pin" "$(date -u +%FT%TZ)" > "$marker"
log "done in $(( $(date +%s) - started )) s: $(du -sh "$root" | cut -f1) at $root"
