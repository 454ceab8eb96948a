package main

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lookoutfire/lookout/web"
)

// Guard wraps a route's handler with everything the route table row declares:
// authentication, the role check, the body limit and the audit entry. The
// security layer (package auth) provides the real one.
type Guard interface {
	Wrap(rt web.Route) http.Handler
}

// openGuard only applies body limits: no authentication. It is what
// --insecure-dev runs with.
type openGuard struct{}

func (openGuard) Wrap(rt web.Route) http.Handler {
	limit := rt.MaxBody
	if limit <= 0 {
		limit = web.DefaultMaxBody
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		rt.Handler(w, r)
	})
}

// apiMux builds the API handler from the route table.
func apiMux(routes []web.Route, g Guard) *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.Handle(rt.Method+" "+rt.Pattern, g.Wrap(rt))
	}
	return mux
}

// readiness is one component's state for /readyz.
type readiness struct {
	Name  string `json:"name"`
	Ready bool   `json:"ready"`
	Note  string `json:"note,omitempty"`
}

// opsMux serves /healthz (process alive), /readyz (broker and InfluxDB state)
// and /metrics. These stay open (no auth) and may live on their own listener.
func opsMux(gather prometheus.Gatherer, ready func() []readiness, pprofOn bool) *http.ServeMux {
	mux := http.NewServeMux()
	if pprofOn {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		rs := ready()
		status := http.StatusOK
		for _, r := range rs {
			if !r.Ready {
				status = http.StatusServiceUnavailable
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": status == http.StatusOK, "components": rs})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gather, promhttp.HandlerOpts{}))
	return mux
}
