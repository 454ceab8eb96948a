package auth

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookoutfire/lookout/clock"
)

// BenchmarkConnectAuth measures one CONNECT authentication (SQLite lookup +
// password check) with the verified-credential cache off (baseline) and on, at
// mosquitto_passwd's iteration count and at a hardened one, and reports the
// speed-up of the cache against the baseline measured in the same process.
func BenchmarkConnectAuth(b *testing.B) {
	for _, iters := range []int{DefaultPBKDF2Iterations, 20000} {
		b.Run("iter="+strconv.Itoa(iters), func(b *testing.B) {
			ctx := context.Background()
			measure := func(cacheOn bool, n int) time.Duration {
				cfg := DefaultConfig()
				cfg.DeviceHashIterations = iters
				if !cacheOn {
					cfg.CredentialCacheTTL = 0
				}
				st := openTestStore(b, clock.Real{})
				st.cfg = cfg
				m, err := NewMQTTAuth(st, devMap{"smoke-a": "smoke"}, "fire", cfg, clock.Real{}, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					b.Fatal(err)
				}
				pw, _ := st.IssueMQTT(ctx, "smoke-a", MQTTDevice)
				req := ConnectRequest{Username: "smoke-a", Password: []byte(pw), ClientID: "smoke-a"}
				if _, err := m.Authenticate(ctx, req); err != nil { // warm
					b.Fatal(err)
				}
				start := time.Now()
				for i := 0; i < n; i++ {
					if _, err := m.Authenticate(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
				return time.Since(start)
			}
			base := measure(false, b.N)
			b.ResetTimer()
			cached := measure(true, b.N)
			b.StopTimer()
			b.ReportMetric(float64(base.Nanoseconds())/float64(b.N), "ns/op-nocache")
			b.ReportMetric(float64(base)/float64(cached), "x-speedup")
		})
	}
}
