package integration

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/leasehold/leasehold/internal/dev/testenv"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/processors/filesink"
	"github.com/leasehold/leasehold/worker"
)

// TestWorkersInProcess runs two workers in this process on a 4-shard
// stream while a producer writes, stops them gracefully and checks every
// record was processed exactly once (graceful stops produce no duplicates).
func TestWorkersInProcess(t *testing.T) {
	e := testenv.Require(t, "kinesis", "dynamodb")
	kc, db := testenv.Kinesis(e), testenv.DynamoDB(e)
	stream, table := testenv.Name(t, "wip"), testenv.Name(t, "wip-leases")
	deleteTableAtEnd(t, table)
	createStream(t, kc, stream, 4)
	dir := t.TempDir()
	prod := startProducer(kc, stream, 16, 50, 20*time.Millisecond)

	run := func(id string) (stop func()) {
		sink, err := filesink.Open(filepath.Join(dir, id+".ndjson"), 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		cfg := worker.Config{
			StreamName: stream, IdleTime: 200 * time.Millisecond, MaxReadRate: 5, CheckpointInterval: 500 * time.Millisecond, ShutdownGrace: 10 * time.Second,
			Lease: lease.Config{WorkerID: id, Duration: 3 * time.Second, SafetyMargin: time.Second, RenewInterval: time.Second, TakeInterval: 300 * time.Millisecond},
		}
		w, err := worker.New(kc, leaseStore(t, db, table), sink.Factory(), cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker %s: %v", id, err)
			}
			sink.Close()
		}
	}
	stopA := run("A")
	time.Sleep(2 * time.Second)
	stopB := run("B")
	time.Sleep(4 * time.Second)
	stopA() // graceful: B takes A's shards from A's final checkpoint
	time.Sleep(3 * time.Second)
	sent := prod.Stop()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if lost, _ := tally(readLines(t, filepath.Join(dir, "A.ndjson"), filepath.Join(dir, "B.ndjson")), sent); lost == 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	stopB()
	lost, dups := tally(readLines(t, filepath.Join(dir, "A.ndjson"), filepath.Join(dir, "B.ndjson")), sent)
	t.Logf("sent %d, lost %d, duplicated %d", sent, lost, len(dups))
	if lost != 0 {
		lines := readLines(t, filepath.Join(dir, "A.ndjson"), filepath.Join(dir, "B.ndjson"))
		seen := map[string]bool{}
		for _, l := range lines {
			seen[l.Data] = true
		}
		byKey := map[int64]int{}
		first, last := int64(-1), int64(-1)
		for i := int64(0); i < sent; i++ {
			if !seen[strconv.FormatInt(i, 10)] {
				byKey[i%16]++
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		snap, _ := leaseStore(t, db, table).Snapshot(context.Background())
		t.Errorf("%d of %d records lost (first %d, last %d; by key %v); leases: %+v", lost, sent, first, last, byKey, snap.Leases)
	}
	if len(dups) != 0 {
		t.Errorf("%d records processed twice after graceful moves only, want 0", len(dups))
	}
}

// leaseStore is the lease store on table, failing t if it is refused.
func leaseStore(t testing.TB, db lease.DynamoAPI, table string) *lease.DynamoStore {
	t.Helper()
	s, err := lease.NewDynamoStore(db, table)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
