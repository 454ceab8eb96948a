package ingest

import (
	"context"
	"errors"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lookoutfire/lookout/internal/testenv"
)

// TestPublishWaitAcknowledged: through a real Mosquitto, PublishWait returns
// nil only once the broker has the message (a subscriber receives it), and
// with the broker gone it returns an error instead of claiming delivery —
// what alerting's MQTT outbox relies on before deleting a message.
func TestPublishWaitAcknowledged(t *testing.T) {
	mq := testenv.StartMosquitto(t)
	f := newFixture(t, nil)
	c, err := NewConsumer(ConsumerOptions{URL: mq.URL, ClientID: "lookout-pubwait", Prefix: "fire",
		KeepAlive: 5 * time.Second, ConnectRetry: time.Second}, f.p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PublishWait(context.Background(), "fire/alerts/x", []byte("early")); err == nil {
		t.Fatal("PublishWait before Run succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 10*time.Second, c.Connected, "consumer connected")

	got := make(chan string, 4)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(mq.URL).SetClientID("pubwait-sub"))
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe("fire/alerts/#", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer pcancel()
	if err := c.PublishWait(pctx, "fire/alerts/critical/z1", []byte("alert-1")); err != nil {
		t.Fatalf("PublishWait: %v", err)
	}
	select {
	case m := <-got:
		if m != "alert-1" {
			t.Fatalf("subscriber got %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("acknowledged message never reached the subscriber")
	}

	mq.Stop()
	waitFor(t, 10*time.Second, func() bool { return !c.Connected() }, "consumer sees the broker gone")
	sctx, scancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer scancel()
	err = c.PublishWait(sctx, "fire/alerts/critical/z1", []byte("alert-2"))
	if err == nil {
		t.Fatal("PublishWait with the broker down claimed delivery")
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, paho.ErrNotConnected) {
		t.Logf("PublishWait with the broker down: %v", err) // any error is correct; log which
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
