package s3sink

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/internal/backoff"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

// shardMsgs returns n parsed records of shard, one second apart.
func shardMsgs(shard string, n int) []*processors.Message {
	out := make([]*processors.Message, n)
	for i := range out {
		out[i] = &processors.Message{
			Record: worker.Record{StreamName: "events", ShardID: shard, SequenceNumber: seq(i), Data: []byte(strconv.Itoa(i)), ArrivalTime: t0},
			Event: event.Event{EventTime: t0.Add(time.Duration(i) * time.Second), EventType: event.TypeView, EventID: shard + "-" + strconv.Itoa(i),
				Source: event.SourceApp, AssetID: "a1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"},
			Parsed: true,
		}
	}
	return out
}

func openShard(t *testing.T, s *Sink, shard string) *shardSink {
	t.Helper()
	ss, err := s.Open(t.Context(), worker.Shard{StreamName: "events", ShardID: shard}, &fakeDL{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	return ss.(*shardSink)
}

// Defect 9: max_bytes applied per shard, so 32 shards could hold 32 times
// 64 MiB. The shards of one worker now share max_buffered_bytes: with 32
// shards writing at once, what is buffered never exceeds it, and every
// record still lands exactly once.
func TestBufferedMemoryIsBoundedPerWorker(t *testing.T) {
	const shards, perShard, limit = 32, 100, 32 << 10
	f := newFakeS3("archive")
	s, _ := newSink(t, f, Options{MaxBufferedBytes: limit}) // max_bytes stays 64 MiB per object
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
	total := int64(0)
	for i := range shards {
		shard := fmt.Sprintf("shardId-%03d", i)
		ss := openShard(t, s, shard)
		ms := shardMsgs(shard, perShard)
		for _, m := range ms {
			total += int64(len(m.Event.AppendJSON(nil)) + 60) // about, with source_record
		}
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
	t.Logf("wrote about %d KiB through %d shards; peak buffered %d bytes (limit %d); %d objects; %d writes waited for memory",
		total>>10, shards, peak.Load(), limit, len(f.keys()), st.BufferWaits)
	if p := peak.Load(); p > limit || p == 0 {
		t.Errorf("peak buffered %d bytes, want at most max_buffered_bytes %d", p, limit)
	}
	if st.BufferedBytes != 0 || st.BufferLimit != limit {
		t.Errorf("after every flush: %+v", st)
	}
	count := map[string]int{} // shard/sequence -> objects holding it
	for _, k := range f.keys() {
		for _, ev := range gunzipEvents(t, f.get(k).body) {
			count[ev.SourceRecord.ShardID+"/"+ev.SourceRecord.SequenceNumber]++
		}
	}
	for i := range shards {
		for j := range perShard {
			if n := count[fmt.Sprintf("shardId-%03d/%s", i, seq(j))]; n != 1 {
				t.Errorf("shard %d record %d archived %d times", i, j, n)
			}
		}
	}
}

// archivedBytes is the size of ms as archive lines.
func archivedBytes(ms []*processors.Message) int64 {
	n := 0
	for _, m := range ms {
		ev := m.Event
		r := m.Record
		ev.SourceRecord = event.SourceRecord{Stream: r.StreamName, ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber}
		n += len(ev.AppendJSON(nil)) + 1
	}
	return int64(n)
}

func gunzipEvents(t *testing.T, body []byte) []event.Event {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var out []event.Event
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev event.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// A shard that holds nothing waits for memory that idle shards hold; it
// asks them to write out, and goes on as soon as they have.
func TestWaitingShardSqueezesIdleShards(t *testing.T) {
	f := newFakeS3("archive")
	held := shardMsgs("shardId-000", 20)
	s, _ := newSink(t, f, Options{MaxBufferedBytes: archivedBytes(held)})
	idle := openShard(t, s, "shardId-000")
	if err := idle.Write(t.Context(), held); err != nil { // holds all of it, never flushes
		t.Fatal(err)
	}
	if !idle.Durable().IsZero() {
		t.Fatal("the idle shard wrote out before anyone waited")
	}
	busy := openShard(t, s, "shardId-001")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := busy.Write(ctx, shardMsgs("shardId-001", 5)); err != nil {
		t.Fatalf("the busy shard never got memory from the idle one: %v", err)
	}
	if idle.Durable().IsZero() {
		t.Fatal("the idle shard's records did not reach S3")
	}
	if s.State().BufferWaits == 0 {
		t.Error("no wait was counted")
	}
}

// When S3 refuses writes and the budget is spent, Write blocks (the shard
// reads nothing more) instead of buffering without bound; the shard counts
// as stalled until S3 recovers.
func TestFullBudgetAndFailingS3Block(t *testing.T) {
	f := newFakeS3("archive")
	var down atomic.Bool
	down.Store(true)
	f.fail = func(op, key string) error {
		if down.Load() && op == "put" {
			return &apiErr{"SlowDown", 503}
		}
		return nil
	}
	ms := shardMsgs("shardId-000", 40)
	limit := archivedBytes(ms[:10])
	s, _ := newSink(t, f, Options{MaxBufferedBytes: limit})
	s.retry.Sleep = func(ctx context.Context, d time.Duration) error { return backoff.Sleep(ctx, time.Millisecond) }
	ss := openShard(t, s, "shardId-000")
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := ss.Write(ctx, ms); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write with S3 down and the budget spent = %v, want it to block until ctx ends", err)
	}
	st := s.State()
	if st.Stalled != 1 || st.CannotWrite != 0 || st.Retries == 0 || st.BufferedBytes > limit {
		t.Fatalf("state while S3 is down: %+v", st)
	}
	down.Store(false)
	if err := ss.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.State(); st.BufferedBytes != 0 || st.Stalled != 0 {
		t.Fatalf("Close must give the memory back: %+v", st)
	}
	again := openShard(t, s, "shardId-000")
	if err := again.Write(t.Context(), ms); err != nil {
		t.Fatal(err)
	}
	if err := again.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, f, len(ms))
}
