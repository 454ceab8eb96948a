#!/usr/bin/env bash
# make run: InfluxDB 1.8 (data under ./var/influxdb), the gateway on embedded
# defaults (its own MQTT broker on 127.0.0.1:1883, HTTP on 127.0.0.1:8080) and the
# device simulator feeding it. Ctrl-C stops every child cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/bin
VAR=$ROOT/var
mkdir -p "$VAR/influxdb" "$VAR/log"

HTTP_ADDR=${LOOKOUT_HTTP_ADDR:-127.0.0.1:8080}
INFLUX_PORT=${INFLUX_PORT:-8086}
export LOOKOUT_INFLUX_URL=${LOOKOUT_INFLUX_URL:-http://127.0.0.1:$INFLUX_PORT}
export LOOKOUT_INFLUX_BUCKET=${LOOKOUT_INFLUX_BUCKET:-lookout/autogen}
export LOOKOUT_DATA_DIR=${LOOKOUT_DATA_DIR:-$VAR/lookout}
export LOOKOUT_HTTP_ADDR=$HTTP_ADDR

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping…"
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "stopped."
}
trap cleanup INT TERM EXIT

wait_http() { # url seconds
  for _ in $(seq 1 $(( $2 * 10 ))); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for $1" >&2; return 1
}

cat > "$VAR/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$((INFLUX_PORT + 2))"
[meta]
  dir = "$VAR/influxdb/meta"
[data]
  dir = "$VAR/influxdb/data"
  wal-dir = "$VAR/influxdb/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$INFLUX_PORT"
  flux-enabled = true
  log-enabled = false
[logging]
  level = "warn"
[monitor]
  store-enabled = false
CONF
echo "starting influxd on 127.0.0.1:$INFLUX_PORT (log: var/log/influxd.log)"
"$BIN/influxd" -config "$VAR/influxdb.conf" >"$VAR/log/influxd.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$INFLUX_PORT/ping" 30
curl -fsS -XPOST "http://127.0.0.1:$INFLUX_PORT/query" --data-urlencode "q=CREATE DATABASE lookout" >/dev/null

echo "starting gateway (log: var/log/gateway.log)"
"$BIN/gateway" serve "$@" > >(tee "$VAR/log/gateway.log") 2>&1 &
pids+=($!)
wait_http "http://$HTTP_ADDR/healthz" 60

SIM_ARGS=(--broker tcp://127.0.0.1:1883 --devices seeds/devices.yaml --alarm-every 2m)
CREDS="$LOOKOUT_DATA_DIR/sim-credentials.yaml"
for _ in $(seq 1 50); do [ -f "$CREDS" ] && break; sleep 0.1; done
[ -f "$CREDS" ] && SIM_ARGS+=(--credentials "$CREDS")
echo "starting firmware-sim (log: var/log/firmware-sim.log)"
"$BIN/firmware-sim" "${SIM_ARGS[@]}" >"$VAR/log/firmware-sim.log" 2>&1 &
pids+=($!)

cat <<MSG

Lookout is running.
  devices and health : http://$HTTP_ADDR/api/v1/devices   http://$HTTP_ADDR/api/v1/health/zones
  alerts (SSE)       : http://$HTTP_ADDR/api/v1/alerts     http://$HTTP_ADDR/api/v1/events
  live camera        : http://$HTTP_ADDR/live/cam-01
  hotspot reports    : http://$HTTP_ADDR/api/v1/hotspots/reports (drop FIRMS CSVs into var/lookout/hotspots/inbox)
  metrics            : http://$HTTP_ADDR/metrics   ready: http://$HTTP_ADDR/readyz
  InfluxDB           : curl -G http://127.0.0.1:$INFLUX_PORT/query --data-urlencode db=lookout --data-urlencode 'q=SHOW MEASUREMENTS'
  The admin password is printed once in the gateway log on first start (var/log/gateway.log).
Ctrl-C stops everything.
MSG
wait -n "${pids[@]}" || true
