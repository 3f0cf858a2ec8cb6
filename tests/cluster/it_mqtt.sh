#!/usr/bin/env bash
# it_mqtt.sh BIN_DIR — the MQTT listener of `heraldd gateway` in front of a
# 3-node cluster (deploy/local-cluster.sh: gateway.mqtt_listen on a free
# port, HERALD_MQTT in cluster.env): the same client checks as the dev
# test (tests/integration/mqtt_check.py) — there the node verifies the
# token of the HELLO that CONNECT becomes, SENDs and SYNCs go to the groups'
# leaders, pushes come through the nodes' event streams.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
BIN_DIR=$(cd "${1:?usage: it_mqtt.sh BIN_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
LC=$root/deploy/local-cluster.sh
export HERALD_BIN_DIR=$BIN_DIR HERALD_UP_TIMEOUT=${HERALD_UP_TIMEOUT:-60}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import paho.mqtt.client' 2>/dev/null || { echo "FAIL - python3-paho-mqtt missing (deploy/deps.sh)"; exit 1; }

dir=$(mktemp -d /tmp/herald-cmqtt-XXXXXX)
fails=0
cleanup() {
  timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1
  if [ $fails = 0 ]; then rm -rf "$dir"; else echo "logs kept in $dir"; fi
}
trap cleanup EXIT

timeout 90 bash "$LC" up --data "$dir" >/dev/null 2>&1 || { bad "cluster did not start"; exit 1; }
set -a; . "$dir/cluster.env"; set +a
[ -n "${HERALD_MQTT:-}" ] && ok "cluster.env: HERALD_MQTT=$HERALD_MQTT" || { bad "no HERALD_MQTT in cluster.env"; exit 1; }
timeout 180 "$PY" "$root/tests/integration/mqtt_check.py" "$BIN_DIR/herald" "${HERALD_MQTT%:*}" "${HERALD_MQTT##*:}" \
  || fails=$((fails + 1))
# A sanitizer report in any process (ASan tree) fails the test.
timeout 60 bash "$LC" down --data "$dir" >/dev/null 2>&1
if grep -l 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$dir"/*.log 2>/dev/null; then
  bad "sanitizer report in the logs above"
else
  ok "no sanitizer report in the processes' logs"
fi
[ $fails = 0 ] && echo "ok: cluster it_mqtt" || { echo "FAIL: cluster it_mqtt"; grep -h mqtt "$dir/gateway.log" | tail -n 20; }
exit $((fails > 0))
