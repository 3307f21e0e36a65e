package integration

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/leasehold/leasehold/internal/dev/bench"
	"github.com/leasehold/leasehold/internal/dev/faultproxy"
	"github.com/leasehold/leasehold/internal/dev/testenv"
	"github.com/leasehold/leasehold/lease"
)

// checkGrants asserts promise 1 from what the sinks received: for every
// shard, no record was processed under an older lease epoch after the
// first record processed under a newer one (every line carries the epoch
// its worker held the shard at).
func checkGrants(t *testing.T, lines []lineT) []bench.Takeover {
	t.Helper()
	moves, err := bench.Takeovers(lines)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range moves {
		if m.Late > 0 {
			t.Errorf("shard %s: %d records processed under an epoch before %d (%s) up to %s after its first record",
				m.Shard, m.Late, m.To, m.ToID, m.Overlap)
		}
	}
	return moves
}

// TestLeaseTableFaults runs two worker processes, each talking to DynamoDB
// through a proxy of its own, and makes the lease table misbehave for one
// of them only (its Kinesis stays fine): seconds of added latency, a black
// hole (requests accepted, never answered) for three lease durations, and
// 5xx plus throttling on most requests. In every case, from what the
// sinks received: no record of a shard is processed under an old lease
// after the new owner processed its first one, no record is lost, and
// every duplicate is a record the faulted worker had processed but not
// checkpointed. The scenarios run in parallel.
func TestLeaseTableFaults(t *testing.T) {
	e := testenv.Require(t, "kinesis", "dynamodb")
	for _, tc := range []struct {
		name   string
		faults faultproxy.DynamoFaults
		hold   time.Duration
	}{
		{"latency", faultproxy.DynamoFaults{Latency: 1500 * time.Millisecond}, 15 * time.Second},
		{"black hole", faultproxy.DynamoFaults{BlackHole: true}, 12 * time.Second},
		{"5xx and throttling", faultproxy.DynamoFaults{ServerErrorRate: 0.5, ThrottleRate: 0.3}, 15 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kc := testenv.Kinesis(e)
			stream := testenv.Name(t, "faults")
			createStream(t, kc, stream, 4)
			f := newFleet(t, e, stream)
			proxies := map[string]*faultproxy.DynamoProxy{}
			for _, id := range []string{"f1", "f2"} {
				p, err := faultproxy.StartDynamoProxy(e.DynamoDB)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { p.Close() })
				proxies[id] = p
			}
			prod := startProducer(kc, stream, 16, 10, 50*time.Millisecond)
			f.start("f1", "AWS_ENDPOINT_URL_DYNAMODB="+proxies["f1"].URL())
			f.start("f2", "AWS_ENDPOINT_URL_DYNAMODB="+proxies["f2"].URL())
			store := leaseStore(t, testenv.DynamoDB(e), f.table)
			if !waitOwners(store, 30*time.Second, func(m map[string]int) bool { return m["f1"] == 2 && m["f2"] == 2 }) {
				t.Fatalf("the two workers never shared the 4 shards; f1 log:\n%s\nf2 log:\n%s", f.logTail("f1"), f.logTail("f2"))
			}
			time.Sleep(2 * time.Second)

			t.Logf("%s for f1's lease table calls for %s", tc.name, tc.hold)
			proxies["f1"].Set(tc.faults)
			time.Sleep(tc.hold)
			proxies["f1"].Set(faultproxy.DynamoFaults{})
			time.Sleep(6 * time.Second)
			sent := prod.Stop()

			var lost int64
			for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
				if lost, _ = tally(readLines(t, f.sinks("f1", "f2")...), sent); lost == 0 {
					break
				}
			}
			f.stop("f1")
			f.stop("f2")
			lines := readLines(t, f.sinks("f1", "f2")...)
			lost, dups := tally(lines, sent)
			moves := checkGrants(t, lines)
			for _, m := range moves {
				t.Logf("shard %s: epoch %d (%s) → %d (%s): gap %s, %d late records", m.Shard, m.From, m.FromID, m.To, m.ToID, m.Gap.Round(time.Millisecond), m.Late)
			}
			s := proxies["f1"].Stats()
			t.Logf("sent %d; lost %d; duplicated %d; f1's proxy: %d calls, %d injected errors, %d black-holed", sent, lost, len(dups), s.Forwarded+s.Injected+s.BlackHoled, s.Injected, s.BlackHoled)
			if testing.Verbose() && os.Getenv("FLEET_TEST_LOGS") != "" {
				t.Logf("f1 log:\n%s", f.logTail("f1"))
			}
			if lost != 0 {
				t.Fatalf("%d of %d records lost; f1 log:\n%s\nf2 log:\n%s", lost, sent, f.logTail("f1"), f.logTail("f2"))
			}
			for rec, ws := range dups {
				if !contains(ws, "f1") {
					t.Errorf("record %s processed by %v: only the faulted worker's unflushed records may be replayed", rec, ws)
				}
			}
		})
	}
}

// waitOwners polls the lease table until cond holds for the number of
// unended leases per worker id; false if it never did.
func waitOwners(store *lease.DynamoStore, within time.Duration, cond func(map[string]int) bool) bool {
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		snap, err := store.Snapshot(context.Background())
		if err != nil {
			continue
		}
		m := map[string]int{}
		for _, l := range snap.Leases {
			if !l.Ended() {
				m[lease.WorkerName(l.Owner)]++
			}
		}
		if cond(m) {
			return true
		}
	}
	return false
}
