package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lookoutfire/lookout/clock"
)

// flakySpool fails its first fails appends (a full disk), then stores.
type flakySpool struct {
	memSpool
	fails    int
	attempts atomic.Int32
}

func (s *flakySpool) Append(ctx context.Context, recs ...[]byte) error {
	if int(s.attempts.Add(1)) <= s.fails {
		return errors.New("no space left on device")
	}
	return s.memSpool.Append(ctx, recs...)
}

// fakeMsg is a paho message that records its acknowledgement.
type fakeMsg struct {
	topic   string
	payload []byte
	acked   *sync.WaitGroup
}

func (m fakeMsg) Duplicate() bool   { return false }
func (m fakeMsg) Qos() byte         { return 1 }
func (m fakeMsg) Retained() bool    { return false }
func (m fakeMsg) Topic() string     { return m.topic }
func (m fakeMsg) MessageID() uint16 { return 1 }
func (m fakeMsg) Payload() []byte   { return m.payload }
func (m fakeMsg) Ack()              { m.acked.Done() }

// TestConsumerRetryRejectsOnce: while the spool append fails the consumer
// retries the batch, but a malformed message in it is rejected — counted,
// dead-lettered — once, not once per attempt; the good one is stored once.
func TestConsumerRetryRejectsOnce(t *testing.T) {
	now := time.Date(2026, 4, 1, 4, 0, 0, 0, time.UTC)
	sp := &flakySpool{fails: 2}
	pub := &pubRec{}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := NewPipeline(DefaultConfig(), Deps{Appender: sp, Encode: encodeStub, Publisher: pub,
		Clock: clock.NewFake(now), Registerer: reg, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConsumer(ConsumerOptions{URL: "tcp://127.0.0.1:1", ClientID: "retry-test", Prefix: "fire"}, p, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	var acked sync.WaitGroup
	acked.Add(2)
	good := smokeMsg("sm-1", now.Add(-time.Minute), "")
	c.queue <- fakeMsg{topic: "fire/smoke/sm-2/telemetry", payload: []byte(`{not json`), acked: &acked}
	c.queue <- fakeMsg{topic: good.Topic, payload: good.Payload, acked: &acked}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.work(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	ackedCh := make(chan struct{})
	go func() { acked.Wait(); close(ackedCh) }()
	select {
	case <-ackedCh:
	case <-time.After(10 * time.Second):
		t.Fatal("batch not acknowledged after the spool recovered")
	}

	if got := sp.attempts.Load(); got != 3 {
		t.Fatalf("%d append attempts, want 3 (two failures, then success)", got)
	}
	if len(sp.recs) != 1 {
		t.Fatalf("stored %d records, want 1: %q", len(sp.recs), sp.recs)
	}
	if v := testutil.ToFloat64(p.m.rejected.WithLabelValues(string(ReasonBadJSON))); v != 1 {
		t.Errorf("rejected_total{reason=bad_json} = %v, want 1", v)
	}
	if acc, rej := p.Counts(); acc != 1 || rej != 1 {
		t.Errorf("counts = %d accepted / %d rejected, want 1/1", acc, rej)
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if len(pub.topic) != 1 || pub.topic[0] != "fire/deadletter/bad_json" {
		t.Errorf("dead letters = %v, want one on fire/deadletter/bad_json", pub.topic)
	}
}
