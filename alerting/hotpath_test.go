package alerting

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lookoutfire/lookout/clock"
	"github.com/lookoutfire/lookout/ingest"
)

func TestActiveIndexOrder(t *testing.T) {
	type op struct {
		add bool
		id  int64
	}
	tests := []struct {
		name string
		ops  []op
		want int64
	}{
		{"add", []op{{true, 5}}, 5},
		{"clear", []op{{true, 5}, {false, 5}}, 0},
		{"late repeat of an older alert cannot hide a newer one", []op{{true, 6}, {true, 5}}, 6},
		{"clearing an older alert keeps the newer one", []op{{true, 6}, {false, 5}}, 6},
		{"stale repeat after its clear is dropped later", []op{{false, 5}, {true, 5}, {false, 5}}, 0},
		{"new alert after clear", []op{{true, 5}, {false, 5}, {true, 7}}, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := &activeIndex{m: map[alertKey]int64{}}
			for _, o := range tc.ops {
				if o.add {
					x.add("d", "t", o.id)
				} else {
					x.remove("d", "t", o.id)
				}
			}
			if got := x.lookup("d", "t"); got != tc.want {
				t.Errorf("lookup = %d, want %d", got, tc.want)
			}
		})
	}
}

// The index is rebuilt from the database: an alert raised before a restart is
// still cleared by the rule afterwards.
func TestRuleClearsAlertRaisedBeforeRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	clk := clock.NewFake(t0)
	h := openHarness(t, path, clk, nil)
	h.eval(t, smoke(map[string]any{"battery_pct": 12.0}))
	h.eval(t, elec("residual_current_ma", 20, 450))
	h.db.Close()

	h2 := openHarness(t, path, clk, nil)
	if n := h2.e.st.idx.size(); n != 2 {
		t.Fatalf("index after restart holds %d keys, want 2", n)
	}
	clk.Advance(time.Minute)
	h2.eval(t, smoke(map[string]any{"battery_pct": 90.0}))
	h2.eval(t, elec("residual_current_ma", 20, 40))
	for _, k := range [][2]string{{"smk-2", TypeLowBattery}, {"elec-1", TypeResidual}} {
		if _, ok := h2.active(t, k[0], k[1]); ok {
			t.Errorf("%s %s still active after the rule's clear", k[0], k[1])
		}
	}
	if n := h2.e.st.idx.size(); n != 0 {
		t.Errorf("index holds %d keys after every alert cleared", n)
	}
}

// Raises, rule clears and operator clears of the same few keys from several
// goroutines: afterwards the index must name every alert the database holds as
// active (it may not miss one, or a rule would never clear it).
func TestActiveIndexNeverMissesUnderConcurrency(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				src := fmt.Sprintf("dev-%d", i%3)
				var err error
				switch (g + i) % 3 {
				case 0, 1:
					_, err = h.e.Raise(ctx, Raise{Source: src, Type: TypeFault, Severity: Warning, At: t0})
				default:
					err = h.e.Resolve(ctx, src, TypeFault, "test")
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	rows, err := h.db.Query(`SELECT id, source FROM alert WHERE cleared = 0`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var src string
		if err := rows.Scan(&id, &src); err != nil {
			t.Fatal(err)
		}
		if got := h.e.st.idx.lookup(src, TypeFault); got != id {
			t.Errorf("%s: index says %d, database has active alert %d", src, got, id)
		}
	}
	// And the rules still clear each of them.
	for i := 0; i < 3; i++ {
		src := fmt.Sprintf("dev-%d", i)
		if err := h.e.Resolve(ctx, src, TypeFault, "final"); err != nil {
			t.Fatal(err)
		}
		if _, ok := h.active(t, src, TypeFault); ok {
			t.Errorf("%s still active", src)
		}
	}
}

// Readings that change nothing in a station's carried state do not rewrite its
// row (updated keeps the time of the last change); rain and a zone move do.
func TestStationStateWrittenOnlyOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	clk := clock.NewFake(shanghai(0, 8, 0))
	h := openHarness(t, path, clk, nil)
	row := func(h *harness) (upd int64, acc float64, zone string) {
		t.Helper()
		if err := h.db.QueryRow(`SELECT updated, rain_acc, zone FROM fwi_station WHERE station = 'st-9'`).Scan(&upd, &acc, &zone); err != nil {
			t.Fatal(err)
		}
		return
	}
	steps := []struct {
		name     string
		zone     string
		rain     float64
		wantUpd  bool
		wantAcc  float64
		wantZone string
	}{
		{"first reading creates the row", "v1", 0, true, 0, "v1"},
		{"same state: no write", "v1", 0, false, 0, "v1"},
		{"rain accumulates", "v1", 1.5, true, 1.5, "v1"},
		{"dry again: no write", "v1", 0, false, 1.5, "v1"},
		{"zone moved", "t1", 0, true, 1.5, "t1"},
	}
	var last int64
	for i, s := range steps {
		clk.Advance(time.Minute)
		h.eval(t, station("st-9", s.zone, shanghai(0, 8, 10+i), 12, 60, 2, s.rain))
		upd, acc, zone := row(h)
		if (upd != last) != s.wantUpd || acc != s.wantAcc || zone != s.wantZone {
			t.Errorf("%s: updated %d (was %d, want changed=%v), rain_acc %v, zone %q; want %v %q", s.name, upd, last, s.wantUpd, acc, zone, s.wantAcc, s.wantZone)
		}
		last = upd
	}
	// A restart reloads the carried rain from the row.
	h.db.Close()
	h2 := openHarness(t, path, clk, nil)
	h2.eval(t, station("st-9", "t1", shanghai(0, 9, 30), 12, 60, 2, 0.5))
	if _, acc, _ := row(h2); acc != 2.0 {
		t.Errorf("rain after restart = %v, want 2.0", acc)
	}
}

// A client that asked for alerts only is not dropped by a burst of other
// events larger than its buffer, and still receives the alert after it.
func TestSSEFilteredClientSurvivesBurst(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Notify.SSEBuffer = 4 })
	c := h.e.hub.subscribeTypes([]string{"alert."})
	all := h.e.hub.subscribe()
	for i := 0; i < 50; i++ {
		h.e.hub.Publish("device.online", i)
	}
	h.eval(t, ingest.Reading{DeviceID: "smk-b", Class: ingest.ClassSmoke, Zone: "v1", Fields: map[string]any{"alarm": true}})
	select {
	case <-c.dropped:
		t.Fatal("alert-only client dropped by device events")
	default:
	}
	select {
	case ev := <-c.ch:
		if ev.Type != "alert.raised" {
			t.Errorf("first event = %s, want alert.raised", ev.Type)
		}
	default:
		t.Fatal("alert-only client got no event")
	}
	select {
	case <-all.dropped: // the unfiltered client did fall behind, as before
	default:
		t.Error("unfiltered client with a full buffer was not dropped")
	}
}
