# Lookout — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
INFLUXD_VERSION := v1.8.10
STATICCHECK_VERSION := v0.8.2
export GOFLAGS := -buildvcs=false

.PHONY: run test vet lint staticcheck build deps influxd bench-ingest bench-geo bench-alert bench-hotspots bench-video clean fuzz-smoke

## run: the whole system on embedded defaults with auth on (influxd, gateway with embedded broker, simulator
## with camera video). Ctrl-C stops all. RUN_ARGS go to `gateway serve` (e.g. make run RUN_ARGS=--insecure-dev).
run: build influxd
	@scripts/run.sh $(RUN_ARGS)

## test: vet, staticcheck and every test (integration tests start real influxd, mosquitto, ffmpeg, chromium).
test: influxd lint
	PATH="$(BIN):$$PATH" $(GO) test -race -count=1 -timeout 12m ./...

vet:
	$(GO) vet ./...

## lint: go vet and staticcheck (installed into ./bin from the module proxy the first time).
lint: vet staticcheck
	$(BIN)/staticcheck ./...

staticcheck:
	@if [ -x "$(BIN)/staticcheck" ]; then :; \
	else echo "installing staticcheck $(STATICCHECK_VERSION) into ./bin (go install, once)"; \
	     mkdir -p $(BIN) && GOBIN=$(BIN) GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); fi

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/gateway ./gateway
	$(GO) build -o $(BIN)/firmware-sim ./firmware-sim

## deps / influxd: InfluxDB 1.8 (pure Go, serves the v2 write and Flux API) into ./bin unless already installed.
deps: influxd
influxd:
	@if [ -x "$(BIN)/influxd" ]; then :; \
	elif command -v influxd >/dev/null 2>&1; then mkdir -p $(BIN) && ln -sf "$$(command -v influxd)" $(BIN)/influxd; \
	else echo "installing influxd $(INFLUXD_VERSION) into ./bin (go install, takes a few minutes once)"; \
	     mkdir -p $(BIN) && GOBIN=$(BIN) GOFLAGS= $(GO) install github.com/influxdata/influxdb/cmd/influxd@$(INFLUXD_VERSION); fi

## bench-ingest: drain N readings queued in Mosquitto through Lookout vs Telegraf vs a bare paho subscriber.
bench-ingest: build influxd
	@scripts/bench-ingest.sh

bench-geo:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./geo

bench-hotspots:
	$(GO) test -run '^$$' -bench Import ./hotspot

bench-alert: build influxd
	@scripts/bench-alert.sh

-include video/bench.mk

clean:
	rm -rf var bin

## fuzz-smoke: every fuzz target for FUZZTIME (default 10s) past its seed corpus, which `make test` already runs.
FUZZTIME ?= 10s
fuzz-smoke:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
	  for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | cut -c6-); do \
	    echo "== $$(dirname $$f) $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) ./$$(dirname $$f); \
	  done; done
