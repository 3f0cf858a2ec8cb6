#!/usr/bin/env bash
# it_mqtt.sh HERALDD HERALD — the MQTT 3.1.1 listener of `heraldd dev` with
# real clients (mosquitto_pub / mosquitto_sub, paho-mqtt, raw sockets for
# DUP resends): credentials, QoS 1 / 0 stored and delivered to MQTT and
# Herald subscribers, DUP not stored twice, persistent sessions, filters,
# refusals, keep-alive (tests/integration/mqtt_check.py); then the listener
# off, and a port in use. Every wait is bounded.
set -uo pipefail
HERALDD=$1
HERALD=$2
. "$(dirname "$0")/lib.sh"
it_init mqtt
for t in mosquitto_pub mosquitto_sub; do
  command -v $t >/dev/null || { echo "FAIL - $t missing (deploy/deps.sh installs mosquitto-clients)"; exit 1; }
done
# Debian's python3-paho-mqtt is for Debian's interpreter (another python3 may come first in PATH).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import paho.mqtt.client' 2>/dev/null || { echo "FAIL - python3-paho-mqtt missing (deploy/deps.sh)"; exit 1; }

# gateway.listen on port 0 (lib.sh) and gateway.mqtt_listen at its default:
# the MQTT listener picks a free port too, named in dev.env.
start
mport=${HERALD_MQTT##*:}
[ -n "${HERALD_MQTT:-}" ] && [ "$mport" != 1883 ] && ok "dev.env names the MQTT listener on a free port ($HERALD_MQTT)" || bad "dev.env: $(cat "$dir/dev.env")"
timeout 120 "$PY" "$(dirname "$0")/mqtt_check.py" "$HERALD" 127.0.0.1 "$mport" || fails=$((fails + 1))
stop && ok "heraldd exits 0 on SIGTERM" || bad "heraldd exit status"

# gateway.tls_cert: MQTT over TLS only (mqtts), the client port's certificate.
bash "$(dirname "$0")/../../deploy/cluster-certs.sh" init "$dir/ca" >/dev/null &&
  bash "$(dirname "$0")/../../deploy/cluster-certs.sh" server "$dir/ca" localhost >/dev/null
printf 'gateway.tls_cert = %s\n' "$dir/ca/localhost.pem" >"$dir/h.conf"
start
rm -f "$dir/h.conf"
mport=${HERALD_MQTT##*:}
HERALD_CA=$dir/ca/ca.pem HERALD_GATEWAY=tls://localhost:${HERALD_GATEWAY##*:} \
  "$HERALD" --as alice conv create --kind group --members alice,bob --id tls-room >/dev/null
timeout 10 mosquitto_sub -h localhost -p "$mport" -V mqttv311 --cafile "$dir/ca/ca.pem" -u bob \
  -P "$("$HERALD" token --user bob)" -t conv/tls-room -q 1 -C 1 -W 8 >"$dir/tls.out" 2>&1 &
tsub=$!
sleep 1
expect "mqtts: a QoS 1 publish over TLS" 0 '^$' -- mosquitto_pub -h localhost -p "$mport" -V mqttv311 \
  --cafile "$dir/ca/ca.pem" -u alice -P "$("$HERALD" token --user alice)" -t conv/tls-room -m "over tls" -q 1
wait $tsub
grep -qx 'over tls' "$dir/tls.out" && ok "mqtts: delivered over TLS" || bad "mqtts subscriber: $(cat "$dir/tls.out")"
timeout 10 mosquitto_pub -h 127.0.0.1 -p "$mport" -V mqttv311 -u alice -P "$("$HERALD" token --user alice)" \
  -t conv/tls-room -m "in clear" -q 1 >/dev/null 2>&1 && bad "mqtts: a plain MQTT client got through" || ok "mqtts: a plain MQTT client is refused"
HERALD_CA=$dir/ca/ca.pem HERALD_GATEWAY=tls://localhost:${HERALD_GATEWAY##*:} "$HERALD" --as alice history tls-room >"$dir/tls.hist" 2>&1
grep -q '"text":"over tls"' "$dir/tls.hist" && ! grep -q 'in clear' "$dir/tls.hist" && ok "mqtts: stored; nothing from the plain client" || bad "history: $(cat "$dir/tls.hist")"
stop >/dev/null

# Off: nothing listens; a port in use: a clear error at start.
unset HERALD_MQTT
printf 'gateway.mqtt_listen =\n' >"$dir/h.conf"
start
rm -f "$dir/h.conf"
[ -z "${HERALD_MQTT:-}" ] && ok "gateway.mqtt_listen empty: no MQTT listener" || bad "HERALD_MQTT=$HERALD_MQTT with the listener off"
stop >/dev/null
"$PY" -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(20)' >"$dir/held" &
holder=$!
for _ in $(seq 50); do [ -s "$dir/held" ] && break; sleep 0.1; done
hport=$(cat "$dir/held")
expect "a port in use is a clear error" 1 "gateway.mqtt_listen 127.0.0.1:$hport" -- "$HERALDD" dev --data "$dir" --listen 127.0.0.1:0 --mqtt-listen "127.0.0.1:$hport"
kill "$holder" 2>/dev/null
[ "$fails" = 0 ] && echo "ok: it_mqtt" || { echo "FAIL: it_mqtt ($fails)"; tail -n 30 "$dir/heraldd.log"; }
exit $((fails > 0))
