#!/usr/bin/env bash
# make bench-ingest: Lookout vs Telegraf vs a bare paho subscriber draining the
# same backlog from Mosquitto. N defaults to 400000 (BENCH_N overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x bin/telegraf ]; then
  echo "installing Telegraf v1.36.4 (mqtt_consumer + influxdb_v2 + json only) into ./bin — several minutes, once"
  GOBIN=$PWD/bin GOFLAGS= go install -tags "custom,inputs.mqtt_consumer,outputs.influxdb_v2,parsers.json" \
    github.com/influxdata/telegraf/cmd/telegraf@v1.36.4
fi
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || { echo "mosquitto missing: apt-get install mosquitto" >&2; exit 1; }
exec go run ./bench/ingest -n "${BENCH_N:-400000}" -bin bin "$@"
