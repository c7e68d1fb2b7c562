#!/usr/bin/env bash
# Regenerate the placeholder announcements and hold clips in this folder.
# Machine speech (espeak-ng, voice "ko") and a SoX tone: placeholders only; operators
# replace them with real recordings (same names, 8 kHz mono 16-bit WAV). See README.md.
# Needs espeak-ng and sox (Debian: apt-get install espeak-ng sox).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
command -v espeak-ng >/dev/null && command -v sox >/dev/null \
  || { echo "generate.sh: needs espeak-ng and sox (apt-get install espeak-ng sox)" >&2; exit 1; }

# name|text  (keep in step with the table in README.md)
clips=(
  "consent-notice|이 통화는 민원 응대 품질 향상과 직원 보호를 위해 녹음됩니다."
  "abuse-warning|폭언이나 욕설이 계속되면 통화가 종료될 수 있습니다."
  "abuse-termination|폭언과 욕설로 인해 통화를 종료합니다."
  "timeout-notice|통화가 곧 이십 분에 도달합니다. 통화는 이십 분 후 종료될 수 있습니다."
  "timeout-termination|효율적인 민원 처리와 직원 보호를 위해 통화를 종료합니다."
  "ringback-lunch|지금은 점심시간입니다. 오후 한 시부터 상담이 가능합니다."
  "ringback-after-hours|지금은 업무 시간이 아닙니다. 평일 오전 아홉 시부터 오후 여섯 시까지 연락 주십시오."
  "ringback-holiday|오늘은 공휴일입니다."
  "ringback-moved|사무실이 이전되었습니다."
)

tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
for entry in "${clips[@]}"; do
  name="${entry%%|*}"; text="${entry#*|}"
  espeak-ng -v ko -s 150 -w "$tmp/$name.wav" "$text"
  pad=0.3
  # hold clips loop as music on hold: a 2 s pause between repetitions
  case "$name" in ringback-*) pad=2 ;; esac
  # 8 kHz mono signed 16-bit, a little below full scale, short lead-in and tail
  sox "$tmp/$name.wav" -r 8000 -c 1 -b 16 -e signed-integer "$name.wav" \
      gain -n -3 pad 0.2 "$pad"
  echo "generated $name.wav ($(soxi -D "$name.wav") s)"
done
# Korean ringback tone (440+480 Hz, 1 s on / 2 s off), the "default" hold class
sox -n -r 8000 -c 1 -b 16 -e signed-integer "$tmp/on.wav" synth 1 sine 440 sine 480 \
    remix - gain -n -9
sox "$tmp/on.wav" ringback-tone.wav pad 0 2
echo "generated ringback-tone.wav ($(soxi -D ringback-tone.wav) s)"
