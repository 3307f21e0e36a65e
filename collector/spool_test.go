package collector_test

import (
	"fmt"
	"net"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"go.uber.org/zap/zaptest"

	"github.com/leasehold/leasehold/collector"
	"github.com/leasehold/leasehold/producer"
	"github.com/leasehold/leasehold/producer/producertest"
)

// TestNoGiveUpWhileKinesisIsDown: Kinesis refuses every call for much
// longer than the producer's ten attempts (connection refused, then the
// stream missing, as while it is re-created). Events answered 202 before
// and during the outage are all written once it is over; none is given
// up on or counted failed; meanwhile the full buffer answers 503 with
// Retry-After rather than accepting what it could only drop.
func TestNoGiveUpWhileKinesisIsDown(t *testing.T) {
	k := producertest.NewKinesis(2)
	down := make(chan struct{})
	k.CallError = func(call int) error {
		select {
		case <-down:
			return nil
		default:
		}
		if call%2 == 0 {
			return &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}
		return apiError("ResourceNotFoundException")
	}
	cfg := collector.DefaultConfig()
	cfg.BufferRecords, cfg.MaxEventsPerRequest, cfg.BufferWait = 6, 3, 0
	c, err := collector.New(k, "events", cfg, zaptest.NewLogger(t), producer.WithLinger(0), producer.WithBackoff(time.Millisecond, 2*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	url, stop := served(t, c)
	for i := range 2 {
		if a := post(t, url, "application/x-ndjson", "", ndjson(event(fmt.Sprint("a", i)), event(fmt.Sprint("b", i)), event(fmt.Sprint("c", i)))); a.status != 202 {
			t.Fatalf("request %d: %d %+v", i, a.status, a.body)
		}
	}
	waitFor(t, "30 failed calls", func() bool { return c.ProducerStats().CallErrors >= 30 })
	if a := post(t, url, "application/json", "", event("late")); a.status != 503 || a.retryAfter == "" {
		t.Fatalf("full buffer while Kinesis is down: %d (Retry-After %q) %+v, want 503", a.status, a.retryAfter, a.body)
	}
	if s := c.ProducerStats(); s.RecordsFailed != 0 || s.BufferedRecords != 6 {
		t.Fatalf("during the outage: %+v, want nothing given up and 6 buffered", s)
	}
	close(down)
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	ids, _ := writtenIDs(t, k)
	if want := []string{"a0", "a1", "b0", "b1", "c0", "c1"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("written %v, want %v", ids, want)
	}
	if got := counter(t, c, "leasehold_collector_events_failed_total"); got != 0 {
		t.Fatalf("events_failed_total %v", got)
	}
}

// TestSpoolKeepsWhatShutdownCouldNotSend: Kinesis answers nothing, so the
// graceful shutdown's grace ends with events unsent. With a spool Serve
// returns nil and the events stay on disk; the next collector on the same
// directory sends them, each once, and leaves the spool empty.
func TestSpoolKeepsWhatShutdownCouldNotSend(t *testing.T) {
	dir := t.TempDir()
	cfg := collector.DefaultConfig()
	cfg.SpoolDir = dir
	cfg.ShutdownGrace = 300 * time.Millisecond
	k := producertest.NewKinesis(2)
	k.Hold = make(chan struct{}) // never answers
	c, err := collector.New(k, "events", cfg, zaptest.NewLogger(t), producer.WithLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	url, stop := served(t, c)
	if a := post(t, url, "application/x-ndjson", "", ndjson(event("a"), event("b"), event("c"))); a.status != 202 {
		t.Fatalf("%d %+v", a.status, a.body)
	}
	if got := gauge(t, c, "leasehold_collector_spool_events"); got != 3 {
		t.Fatalf("spool_events %v, want 3", got)
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve = %v, want nil: the events are kept", err)
	}
	if got := counter(t, c, "leasehold_collector_spool_kept_total"); got != 3 {
		t.Errorf("spool_kept_total %v, want 3", got)
	}
	close(k.Hold)

	// A second collector cannot share the directory while one uses it.
	k2 := producertest.NewKinesis(2)
	c2, err := collector.New(k2, "events", cfg, zaptest.NewLogger(t), producer.WithLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := collector.New(k2, "events", cfg, nil); err == nil {
		t.Fatal("two collectors opened one spool")
	}
	url, stop = served(t, c2)
	waitFor(t, "the replay", func() bool { return c2.ProducerStats().RecordsSent == 3 })
	if a := post(t, url, "application/json", "", event("d")); a.status != 202 {
		t.Fatalf("%d %+v", a.status, a.body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ids, _ := writtenIDs(t, k2)
	if want := []string{"a", "b", "c", "d"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("written after the restart %v, want %v", ids, want)
	}
	if got := counter(t, c2, "leasehold_collector_spool_replayed_total"); got != 3 {
		t.Errorf("spool_replayed_total %v, want 3", got)
	}
	c3, err := collector.New(producertest.NewKinesis(1), "events", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := gauge(t, c3, "leasehold_collector_spool_events"); got != 0 {
		t.Errorf("a third start finds %v events in the spool, want 0", got)
	}
	url, stop = served(t, c3)
	_ = url
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// apiError is a Kinesis API error with the given code.
func apiError(code string) error { return &smithy.GenericAPIError{Code: code, Message: "injected"} }
