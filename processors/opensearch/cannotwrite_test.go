package opensearch

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

// Defect 1, second half: a cluster at its shard limit answers the
// documents of a new day's index with 400 validation_exception. That is
// not a bad document: the sink must hold the documents (Durable stays,
// nothing is dead-lettered), report the shard as unable to write, log an
// Error once, and index everything once the operator raised the limit.
func TestCannotWriteIsRetriedNeverDeadLettered(t *testing.T) {
	const shardLimit = "validation_exception: Validation Failed: 1: this action would add [2] total shards, but this cluster currently has [1000]/[1000] maximum shards open;"
	f := newFakeCluster(t)
	var full atomic.Bool
	full.Store(true)
	f.onItem = func(id string, sent int) (int, string) {
		if full.Load() {
			return 400, shardLimit
		}
		return 201, ""
	}
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := testConfig(f)
	cfg.BackoffMax = 20 * time.Millisecond
	s, err := New(t.Context(), cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	dl := &memDL{}
	ss, err := s.Open(t.Context(), testShard(), dl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })

	msgs := testMsgs(0, 20)
	if err := ss.Write(t.Context(), msgs); err != nil {
		t.Fatal(err)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- ss.Flush(t.Context()) }()
	deadline := time.Now().Add(10 * time.Second)
	for s.State().CannotWrite == 0 || f.sentCount("ev-0") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the sink never reported that it cannot write: %+v", s.State())
		}
		time.Sleep(5 * time.Millisecond)
	}
	st := s.State()
	if st.Stalled != 1 || !strings.Contains(st.LastError, "maximum shards open") || st.BufferedBytes == 0 {
		t.Errorf("state while the cluster is full: %+v", st)
	}
	if got := dl.got(); len(got) != 0 {
		t.Fatalf("%d documents dead-lettered because the cluster was full: %v", len(got), got[0].Failed().Err)
	}
	if !ss.Durable().IsZero() {
		t.Fatalf("Durable = %v while nothing is indexed", ss.Durable())
	}
	select {
	case err := <-flushed:
		t.Fatalf("Flush returned %v while the cluster refuses writes; it must wait", err)
	default:
	}
	if n := logs.FilterLevelExact(zapcore.ErrorLevel).FilterMessageSnippet("opensearch cannot write").Len(); n != 1 {
		t.Errorf("%d Error logs saying the cluster cannot write, want exactly one while it lasts", n)
	}

	full.Store(false) // the operator raised cluster.max_shards_per_node
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if docs, _ := f.snapshot(); len(docs) != 20 || ss.Durable() != msgs[19].Position() {
		t.Fatalf("indexed %d of 20, Durable %v", len(docs), ss.Durable())
	}
	if st := s.State(); st.Stalled != 0 || st.CannotWrite != 0 || st.CannotWriteErrors == 0 || st.BufferedBytes != 0 {
		t.Fatalf("state after recovery: %+v", st)
	}
	if logs.FilterMessageSnippet("writes succeed again").Len() != 1 {
		t.Error("no Info log when writes succeed again")
	}
}

// A whole request refused with a read-only cluster block (403) is
// "cannot write" too: retried, reported, never a stopped sink.
func TestCannotWriteRequestIsRetried(t *testing.T) {
	f := newFakeCluster(t)
	var blocked atomic.Bool
	blocked.Store(true)
	f.onRequest = func(int, []string) fault {
		if blocked.Load() {
			return faultBlock
		}
		return faultNone
	}
	cfg := testConfig(f)
	cfg.FlushInterval = 10 * time.Millisecond
	s, ss, dl := newTestSink(t, cfg)
	if err := ss.Write(t.Context(), testMsgs(0, 5)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.State().CannotWrite == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("state %+v", s.State())
		}
		time.Sleep(5 * time.Millisecond)
	}
	blocked.Store(false)
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if docs, _ := f.snapshot(); len(docs) != 5 || len(dl.got()) != 0 {
		t.Fatalf("indexed %d, dead-lettered %d", len(docs), len(dl.got()))
	}
}

// Defect 6: the flusher marked the shared message failed while the next
// sink of the pipeline read it (and copied it to mark its own failure):
// a data race `go test -race` reports. Here a second sink copies every
// message it gets from its own goroutine, as the S3 and DynamoDB sinks do
// when they dead-letter, while the OpenSearch flusher dead-letters the
// same messages.
func TestFailuresDoNotTouchTheSharedMessage(t *testing.T) {
	f := newFakeCluster(t)
	f.onItem = func(string, int) (int, string) { return 400, "mapper_parsing_exception" }
	events := map[string]*processors.Message{}
	for _, m := range testMsgs(0, 200) {
		events[m.Record.SequenceNumber] = m
	}
	// Even sequence numbers parse (and the cluster refuses them), odd ones
	// do not (the sink refuses them): both paths dead-letter.
	parse := processors.ProcessorFunc(func(_ context.Context, batch []*processors.Message) ([]*processors.Message, error) {
		for i, m := range batch {
			if i%2 == 0 {
				m.Event, m.Parsed = events[m.Record.SequenceNumber].Event, true
			}
		}
		return batch, nil
	})
	cfg := testConfig(f)
	cfg.FlushInterval = time.Millisecond
	s, err := New(t.Context(), cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	dl := &memDL{}
	other := &copyingSink{}
	p, err := processors.NewPipeline([]processors.Stage{{Name: "parse", Processor: parse}}, []processors.Sink{s, other}, dl, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}

	defer p.Close(context.Background())
	sp, err := p.Factory()(t.Context(), worker.Shard{StreamName: "events", ShardID: "shardId-000000000001", Start: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close(worker.CloseShutdown)
	for i := range 20 {
		msgs := testMsgs(i*10, 10)
		recs := make([]worker.Record, len(msgs))
		for j, m := range msgs {
			recs[j] = m.Record
			recs[j].ArrivalTime = m.Event.EventTime // inside the pipeline's event-time window
		}
		if err := sp.Process(t.Context(), recs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sp.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	other.wg.Wait()
	if n := len(dl.got()); n != 200 {
		t.Fatalf("%d dead letters, want 200", n)
	}
	if n := other.markedFailed.Load(); n != 0 {
		t.Fatalf("the other sink saw %d messages marked failed by the OpenSearch sink", n)
	}
}

// copyingSink reads every message it is given from another goroutine, the
// way a sink reads (and copies) a message it dead-letters.
type copyingSink struct {
	wg           sync.WaitGroup
	markedFailed atomic.Int64
}

func (c *copyingSink) Name() string { return "other" }
func (c *copyingSink) Open(context.Context, worker.Shard, processors.DeadLetterer) (processors.ShardSink, error) {
	return &copyingShard{c: c}, nil
}
func (c *copyingSink) Close(context.Context) error { return nil }

type copyingShard struct {
	c    *copyingSink
	last checkpoint.Position
}

func (s *copyingShard) Write(_ context.Context, msgs []*processors.Message) error {
	s.c.wg.Go(func() {
		for range 50 {
			for _, m := range msgs {
				if cp := *m; cp.Failed() != nil {
					s.c.markedFailed.Add(1)
				}
			}
			time.Sleep(100 * time.Microsecond)
		}
	})
	s.last = msgs[len(msgs)-1].Position()
	return nil
}
func (s *copyingShard) Flush(context.Context) error  { return nil }
func (s *copyingShard) Durable() checkpoint.Position { return s.last }
func (s *copyingShard) Close() error                 { return nil }
