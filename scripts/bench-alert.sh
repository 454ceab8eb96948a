#!/usr/bin/env bash
# make bench-alert: publish → SSE latency of smoke alarms on the real gateway
# (embedded broker, real InfluxDB), idle baseline vs 10k background readings/s.
# BENCH_RATE, BENCH_ALARMS override the defaults; extra arguments go to the
# program (go run ./bench/alert -h lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x bin/gateway ] || { echo "bin/gateway missing: make build" >&2; exit 1; }
[ -x bin/influxd ] || { echo "bin/influxd missing: make influxd" >&2; exit 1; }
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
exec go run ./bench/alert -rate "${BENCH_RATE:-10000}" -alarms "${BENCH_ALARMS:-200}" -bin bin "$@"
