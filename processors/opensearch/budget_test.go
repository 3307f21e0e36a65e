package opensearch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/searchbulk"
	"github.com/leasehold/leasehold/worker"
)

// shardMsgs returns n parsed messages of shard with ids "<shard>-<i>".
func shardMsgs(shard string, n int) []*processors.Message {
	msgs := testMsgs(0, n)
	for i, m := range msgs {
		m.Record.ShardID = shard
		m.Event.EventID = fmt.Sprintf("%s-%d", shard, i)
	}
	return msgs
}

// openShardSink opens one more shard sink of s.
func openShardSink(t *testing.T, s *Sink, shard string) processors.ShardSink {
	t.Helper()
	ss, err := s.Open(t.Context(), worker.Shard{StreamName: "events", ShardID: shard}, &memDL{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	return ss
}

// encodedSize is what msgs take in a shard sink's buffer: each one's bulk
// item (action line and document) in the default index.
func encodedSize(msgs []*processors.Message) int64 {
	p, err := searchbulk.ParseIndexPattern(DefaultIndex)
	if err != nil {
		panic(err)
	}
	n := 0
	for _, m := range msgs {
		id := searchbulk.DocID(nil, m, m.Record.StreamName)
		n += len(searchbulk.AppendIndex(nil, []byte(p.Name(m.Event.EventTime)), string(id), &m.Event))
	}
	return int64(n)
}

// Issue 11 follow-up: max_buffer_bytes applied per shard, so 32 shards
// held 32 times it. The shards of one worker now share
// max_buffered_bytes: with 32 shards writing at once against a slow
// cluster, what is buffered never exceeds it, State reports it, and every
// document is indexed exactly once.
func TestBufferedMemoryIsBoundedPerWorker(t *testing.T) {
	const shards, perShard = 32, 60
	f := newFakeCluster(t)
	f.onRequest = func(int, []string) fault {
		time.Sleep(2 * time.Millisecond) // a cluster slower than the writers
		return faultNone
	}
	limit := encodedSize(shardMsgs("shardId-000", 40))
	cfg := testConfig(f)
	cfg.MaxBufferedBytes = ByteSize(limit) // max_buffer_bytes stays 10 MiB per shard
	cfg.FlushInterval = time.Hour          // only size, Flush and the budget send
	s, err := New(t.Context(), cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })

	var peak atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			if b := s.State().BufferedBytes; b > peak.Load() {
				peak.Store(b)
			}
			select {
			case <-stop:
				return
			default:
				time.Sleep(50 * time.Microsecond)
			}
		}
	})
	var wg sync.WaitGroup
	for i := range shards {
		shard := fmt.Sprintf("shardId-%03d", i)
		ss := openShardSink(t, s, shard)
		ms := shardMsgs(shard, perShard)
		wg.Go(func() {
			for j := 0; j < len(ms); j += 10 {
				if err := ss.Write(t.Context(), ms[j:j+10]); err != nil {
					t.Errorf("%s: write: %v", shard, err)
					return
				}
			}
			if err := ss.Flush(t.Context()); err != nil {
				t.Errorf("%s: flush: %v", shard, err)
			}
		})
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	if t.Failed() {
		t.FailNow()
	}
	st := s.State()
	docs, requests := f.snapshot()
	t.Logf("%d shards, %d documents in %d bulk requests; peak buffered %d bytes (max_buffered_bytes %d); %d writes waited for memory",
		shards, len(docs), len(requests), peak.Load(), limit, st.BufferWaits)
	if p := peak.Load(); p > limit || p == 0 {
		t.Errorf("peak buffered %d bytes, want at most max_buffered_bytes %d", p, limit)
	}
	if st.BufferedBytes != 0 || st.BufferLimit != limit || st.BufferWaits == 0 {
		t.Errorf("after every flush: %+v; want nothing buffered, the limit reported and waits counted", st)
	}
	if len(docs) != shards*perShard {
		t.Errorf("%d documents indexed, want %d", len(docs), shards*perShard)
	}
	for i := range shards {
		for j := range perShard {
			if n := f.sentCount(fmt.Sprintf("shardId-%03d-%d", i, j)); n != 1 {
				t.Errorf("shard %d document %d sent %d times", i, j, n)
			}
		}
	}
}

// A shard that holds nothing waits for memory that an idle shard holds
// (its flush_interval is an hour away); the idle shard sends its buffer at
// once when asked, and the waiting shard goes on.
func TestWaitingShardSqueezesIdleShards(t *testing.T) {
	f := newFakeCluster(t)
	held := shardMsgs("shardId-000", 20)
	cfg := testConfig(f)
	cfg.MaxBufferedBytes = ByteSize(encodedSize(held))
	cfg.FlushInterval = time.Hour
	s, err := New(t.Context(), cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	idle := openShardSink(t, s, "shardId-000")
	if err := idle.Write(t.Context(), held); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if !idle.Durable().IsZero() {
		t.Fatal("the idle shard sent its buffer before anyone waited")
	}
	if st := s.State(); st.BufferedBytes != int64(cfg.MaxBufferedBytes) {
		t.Fatalf("buffered %d, want the whole budget %d", st.BufferedBytes, cfg.MaxBufferedBytes)
	}
	busy := openShardSink(t, s, "shardId-001")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := busy.Write(ctx, shardMsgs("shardId-001", 5)); err != nil {
		t.Fatalf("the busy shard never got memory from the idle one: %v", err)
	}
	if idle.Durable() != held[len(held)-1].Position() {
		t.Fatalf("the idle shard's documents were not sent: durable %v", idle.Durable())
	}
	if s.State().BufferWaits == 0 {
		t.Error("no wait was counted")
	}
}

// With the cluster down and the budget spent, Write blocks (the shard
// reads nothing more) instead of buffering without bound; Close gives the
// memory back.
func TestFullBudgetAndDownClusterBlock(t *testing.T) {
	f := newFakeCluster(t)
	var down atomic.Bool
	down.Store(true)
	f.onRequest = func(int, []string) fault {
		if down.Load() {
			return fault503
		}
		return faultNone
	}
	msgs := testMsgs(0, 40)
	limit := encodedSize(msgs[:10])
	cfg := testConfig(f)
	cfg.MaxBufferedBytes = ByteSize(limit)
	s, ss, _ := newTestSink(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := ss.Write(ctx, msgs); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write with the cluster down and the budget spent = %v, want it to block until ctx ends", err)
	}
	st := s.State()
	if st.BufferedBytes > limit || st.BufferedBytes == 0 || st.Stalled != 1 {
		t.Fatalf("state while the cluster is down: %+v (limit %d)", st, limit)
	}
	if err := ss.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.State(); st.BufferedBytes != 0 {
		t.Fatalf("Close must give the memory back: %+v", st)
	}
	down.Store(false)
	again := openShardSink(t, s, "shardId-000000000001")
	if err := again.Write(t.Context(), msgs); err != nil {
		t.Fatal(err)
	}
	if err := again.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if docs, _ := f.snapshot(); len(docs) != len(msgs) {
		t.Fatalf("indexed %d, want %d", len(docs), len(msgs))
	}
}
