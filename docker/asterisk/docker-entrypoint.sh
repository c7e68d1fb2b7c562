#!/bin/sh
# Production entry point of the CallGuard Asterisk image (see Dockerfile).
#
# conf/ in git holds the development values (loopback, ports 25060/28088/25038, RTP
# 31000-31999, development passwords, 32 test phones). On every container start this
# renders /opt/pbx/conf.dist into /opt/pbx/etc with the production values below, then
# runs Asterisk in the foreground as user asterisk.
#
# Environment (defaults in brackets):
#   ASTERISK_BIND [0.0.0.0]               address SIP, ARI/HTTP and AMI listen on
#   ASTERISK_SIP_PORT [5060]              SIP over UDP
#   ASTERISK_HTTP_PORT [8088]             ARI (REST + websocket)
#   ASTERISK_AMI_PORT [5038]              AMI
#   ASTERISK_RTP_START [10000]  ASTERISK_RTP_END [10100]   must match the published range
#   ASTERISK_EXTERNAL_ADDRESS []          public address for SDP/Contact behind NAT
#   ASTERISK_LOCAL_NET [10.0.0.0/8,172.16.0.0/12,192.168.0.0/16]  networks not NATed
#   ASTERISK_ARI_PASSWORD [callguard-ari] ARI user callguard   (set real secrets!)
#   ASTERISK_AMI_SECRET [callguard-ami]   AMI user callguard
#   ASTERISK_TEST_PHONES [0]              1 keeps caller01..16/staff01..16 (password "test")
# A site's phones and trunks go in /opt/pbx/etc-site/pjsip_site.conf (mount it); it is
# copied next to pjsip.conf, which includes it.
#
#   docker-entrypoint.sh [asterisk args]    render, then exec asterisk -f -n ... [args]
#   docker-entrypoint.sh --render SRC DEST  only render (used to check this script)
set -eu

render() {
  src=$1 dest=$2
  bind=${ASTERISK_BIND:-0.0.0.0}
  sip_port=${ASTERISK_SIP_PORT:-5060}
  http_port=${ASTERISK_HTTP_PORT:-8088}
  ami_port=${ASTERISK_AMI_PORT:-5038}
  rtp_start=${ASTERISK_RTP_START:-10000}
  rtp_end=${ASTERISK_RTP_END:-10100}
  ari_password=${ASTERISK_ARI_PASSWORD:-callguard-ari}
  ami_secret=${ASTERISK_AMI_SECRET:-callguard-ami}
  moddir=$(ls -d /usr/lib/*/asterisk/modules 2>/dev/null | head -n 1)
  [ -n "$moddir" ] || moddir=/usr/lib/x86_64-linux-gnu/asterisk/modules
  if [ "$ari_password" = callguard-ari ] || [ "$ami_secret" = callguard-ami ]; then
    echo "callguard-asterisk: WARNING: development ARI/AMI secrets in use;" \
         "set ASTERISK_ARI_PASSWORD and ASTERISK_AMI_SECRET" >&2
  fi
  mkdir -p "$dest"
  rm -f "$dest"/*.conf
  for f in "$src"/*.conf; do
    sed -e "s|@MODDIR@|$moddir|g" "$f" > "$dest/$(basename "$f")"
  done
  if [ "${ASTERISK_TEST_PHONES:-0}" != 1 ]; then rm -f "$dest/pjsip_test_phones.conf"; fi
  [ ! -f /opt/pbx/etc-site/pjsip_site.conf ] || cp /opt/pbx/etc-site/pjsip_site.conf "$dest/"

  nat=""
  if [ -n "${ASTERISK_EXTERNAL_ADDRESS:-}" ]; then
    nat="external_media_address = $ASTERISK_EXTERNAL_ADDRESS\\
external_signaling_address = $ASTERISK_EXTERNAL_ADDRESS"
    for net in $(echo "${ASTERISK_LOCAL_NET:-10.0.0.0/8,172.16.0.0/12,192.168.0.0/16}" | tr ',' ' '); do
      nat="$nat\\
local_net = $net"
    done
  fi
  sed -i -e "s|^bind = 127.0.0.1:25060\$|bind = $bind:$sip_port${nat:+\\
$nat}|" "$dest/pjsip.conf"
  sed -i -e "s|^bindaddr = 127.0.0.1\$|bindaddr = $bind|" \
         -e "s|^bindport = 28088\$|bindport = $http_port|" "$dest/http.conf"
  sed -i -e "s|^bindaddr = 127.0.0.1\$|bindaddr = $bind|" \
         -e "s|^port = 25038\$|port = $ami_port|" \
         -e "s|^secret = callguard-ami\$|secret = $ami_secret|" "$dest/manager.conf"
  sed -i -e "s|^password = callguard-ari\$|password = $ari_password|" "$dest/ari.conf"
  sed -i -e "s|^rtpstart = 31000\$|rtpstart = $rtp_start|" \
         -e "s|^rtpend = 31999\$|rtpend = $rtp_end|" "$dest/rtp.conf"

  # a conf/ edit that breaks one of the patterns above must not go unnoticed
  expect "$dest/pjsip.conf" "bind = $bind:$sip_port"
  expect "$dest/http.conf" "bindaddr = $bind"
  expect "$dest/http.conf" "bindport = $http_port"
  expect "$dest/manager.conf" "bindaddr = $bind"
  expect "$dest/manager.conf" "port = $ami_port"
  expect "$dest/manager.conf" "secret = $ami_secret"
  expect "$dest/ari.conf" "password = $ari_password"
  expect "$dest/rtp.conf" "rtpstart = $rtp_start"
  expect "$dest/rtp.conf" "rtpend = $rtp_end"
  expect "$dest/asterisk.conf" "astmoddir => $moddir"
}

expect() {
  grep -q -x -F "$2" "$1" || {
    echo "callguard-asterisk: ERROR: rendering $1 did not produce '$2'" >&2; exit 1; }
}

if [ "${1:-}" = --render ]; then
  render "$2" "$3"
  exit 0
fi

render /opt/pbx/conf.dist /opt/pbx/etc
chown -R asterisk:asterisk /opt/pbx/etc /opt/pbx/lib /opt/pbx/db /opt/pbx/keys /opt/pbx/run \
    /opt/pbx/log /opt/pbx/spool
exec /usr/sbin/asterisk -f -n -U asterisk -G asterisk -C /opt/pbx/etc/asterisk.conf "$@"
