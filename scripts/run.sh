#!/usr/bin/env bash
# make run: InfluxDB 1.8 (data under ./var/influxdb), the gateway on embedded
# defaults with auth on (its own MQTT broker on 127.0.0.1:1883, HTTP on
# 127.0.0.1:8080, state under ./var/lookout) and the device simulator feeding
# it: every seed device over MQTT with its own credentials, every camera's
# test clip over WHIP with its camera token, a smoke alarm every 2 minutes.
# Ctrl-C stops every child cleanly (simulator, then gateway, then InfluxDB).
#
# Arguments go to `gateway serve` (e.g. scripts/run.sh --insecure-dev);
# LOOKOUT_SIM_ARGS adds firmware-sim flags (e.g. LOOKOUT_SIM_ARGS="--speed 10").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/bin
VAR=$ROOT/var
mkdir -p "$VAR/influxdb" "$VAR/log"

HTTP_ADDR=${LOOKOUT_HTTP_ADDR:-127.0.0.1:8080}
MQTT_ADDR=${LOOKOUT_MQTT_EMBEDDED_ADDR:-127.0.0.1:1883}
INFLUX_PORT=${INFLUX_PORT:-8086}
export LOOKOUT_INFLUX_URL=${LOOKOUT_INFLUX_URL:-http://127.0.0.1:$INFLUX_PORT}
export LOOKOUT_INFLUX_BUCKET=${LOOKOUT_INFLUX_BUCKET:-lookout/autogen}
export LOOKOUT_DATA_DIR=${LOOKOUT_DATA_DIR:-$VAR/lookout}
export LOOKOUT_HTTP_ADDR=$HTTP_ADDR
export LOOKOUT_MQTT_EMBEDDED_ADDR=$MQTT_ADDR

# Refuse to start next to another instance (its ports would make ours fail
# half-way, or worse, feed the old one).
for hp in "127.0.0.1:$INFLUX_PORT" "$HTTP_ADDR" "$MQTT_ADDR"; do
  if (exec 3<>"/dev/tcp/${hp%:*}/${hp##*:}") 2>/dev/null; then
    echo "run.sh: $hp is already in use (another make run? check: ss -ltnp)" >&2
    exit 1
  fi
done

# Children run in their own sessions (setsid), so a terminal Ctrl-C reaches
# only this script, which then stops them in reverse order: the simulator, the
# gateway (it flushes its batch to InfluxDB), InfluxDB last.
pids=()
names=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping…"
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    local p=${pids[$i]}
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then
      echo "${names[$i]} did not stop within 15 s; killing it" >&2
      kill -KILL "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
  done
  echo "stopped."
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

start() { # name file|tee command…   logs to var/log/<name>.log (tee: also to this terminal)
  # Logs are appended, so the admin password a first start printed survives restarts.
  local name=$1 mode=$2 log=$VAR/log/$1.log
  shift 2
  echo "=== $(date -u +%FT%TZ) make run starts $name" >>"$log"
  if [ "$mode" = tee ]; then
    # tee ignores SIGINT so a Ctrl-C cannot break the gateway's stdout (a Go
    # program writing to a closed pipe dies of SIGPIPE before it has flushed).
    setsid "$@" > >(trap '' INT; exec tee -a "$log") 2>&1 &
  else
    setsid "$@" >>"$log" 2>&1 &
  fi
  pids+=($!)
  names+=("$name")
}

wait_http() { # url seconds
  for _ in $(seq 1 $(( $2 * 10 ))); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then echo "${names[-1]} exited; see var/log/${names[-1]}.log" >&2; return 1; fi
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
start influxd file "$BIN/influxd" -config "$VAR/influxdb.conf"
wait_http "http://127.0.0.1:$INFLUX_PORT/ping" 30
curl -fsS -XPOST "http://127.0.0.1:$INFLUX_PORT/query" --data-urlencode "q=CREATE DATABASE lookout" >/dev/null

echo "starting gateway on http://$HTTP_ADDR, MQTT on $MQTT_ADDR (log: var/log/gateway.log)"
start gateway tee "$BIN/gateway" serve "$@"
wait_http "http://$HTTP_ADDR/healthz" 60

# The gateway writes the simulator's secrets before it listens: MQTT passwords
# (sim-credentials.yaml) and WHIP camera tokens (sim-camera-tokens.yaml). With
# --insecure-dev there are none and the simulator connects anonymously.
# Stations and electrical monitors report every 15 s so the rate line shows a
# living system; smoke alarms keep their real 5-minute period (a demo alarm lasts
# four periods, long enough for the 叫应 call to escalate before it clears).
SIM_ARGS=(--broker "tcp://$MQTT_ADDR" --devices seeds/devices.yaml --alarm-every 2m
  --station-every 15s --elec-every 15s
  --video --whip-url "http://$HTTP_ADDR/api/v1/streams/{camera}/whip")
CREDS="$LOOKOUT_DATA_DIR/sim-credentials.yaml"
TOKENS="$LOOKOUT_DATA_DIR/sim-camera-tokens.yaml"
[ -f "$CREDS" ] && SIM_ARGS+=(--credentials "$CREDS")
[ -f "$TOKENS" ] && SIM_ARGS+=(--camera-tokens "$TOKENS")
# shellcheck disable=SC2206 # word splitting of the extra flags is intended
SIM_ARGS+=(${LOOKOUT_SIM_ARGS:-})
echo "starting firmware-sim (log: var/log/firmware-sim.log)"
start firmware-sim file "$BIN/firmware-sim" "${SIM_ARGS[@]}"

cat <<MSG

Lookout is running (auth on). Log in as admin with the password printed ONCE in
the gateway log on first start (var/log/gateway.log: "created the first admin account"):
  curl -s -c var/cookies -d '{"username":"admin","password":"…"}' http://$HTTP_ADDR/api/v1/login
  curl -s -b var/cookies http://$HTTP_ADDR/api/v1/devices          # devices and health
  curl -s -b var/cookies http://$HTTP_ADDR/api/v1/health/zones     # connection rate per zone
  curl -s -b var/cookies http://$HTTP_ADDR/api/v1/alerts           # alerts (a smoke alarm every 2 min)
  curl -s -b var/cookies -N http://$HTTP_ADDR/api/v1/events        # live alerts (SSE)
  TOKEN=\$(curl -s -b var/cookies -d '{"name":"browser","role":"operator","ttl_hours":12}' http://$HTTP_ADDR/api/v1/tokens | sed 's/.*"token":"\([^"]*\)".*/\1/')
  live camera in a browser: http://$HTTP_ADDR/live/cam-0001?token=\$TOKEN   (cam-0001…cam-0004)
  metrics            : http://$HTTP_ADDR/metrics   ready: http://$HTTP_ADDR/readyz
  hotspot reports    : drop FIRMS CSVs into var/lookout/hotspots/inbox
  InfluxDB           : curl -G http://127.0.0.1:$INFLUX_PORT/query --data-urlencode db=lookout --data-urlencode 'q=SHOW MEASUREMENTS'
Ctrl-C stops everything; state stays in ./var (make clean removes it).
MSG
set +e
wait -n "${pids[@]}"
rc=$?
for i in "${!pids[@]}"; do
  kill -0 "${pids[$i]}" 2>/dev/null || echo "${names[$i]} exited (status $rc); see var/log/${names[$i]}.log" >&2
done
exit "$rc"
