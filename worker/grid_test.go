package worker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/lease"
	"github.com/leasehold/leasehold/lease/leasetest"
)

// readTimes records when a worker read the lease table (Snapshot or Poll):
// the coordinator's passes, and the shard syncs.
type readTimes struct {
	mu sync.Mutex
	at []time.Time
}

func (r *readTimes) store(s lease.Store) lease.Store {
	return &leasetest.Faulty{Store: s, Before: func(_ context.Context, method string) error {
		if method == "Snapshot" || method == "Poll" {
			r.mu.Lock()
			r.at = append(r.at, time.Now())
			r.mu.Unlock()
		}
		return nil
	}}
}

func (r *readTimes) between(from, to time.Time) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Time
	for _, t := range r.at {
		if !t.Before(from) && t.Before(to) {
			out = append(out, t)
		}
	}
	return out
}

// TestLeasePassesShareTheWorkersPollInstants: two workers started in the
// same instant on one table of four caught-up shards. Each worker's lease
// passes fall on its own poll grid, in the instants at which it polls its
// shards (one wake-up a second for both, not two), once a second; and the
// two workers' grids have phases of their own, so they never read the
// table in the same instant.
func TestLeasePassesShareTheWorkersPollInstants(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kin := &shardsKinesis{answer: func(i int) time.Duration { return time.Duration(10+20*i) * time.Millisecond }}
		fake := leasetest.NewFake()
		for i := range 4 {
			kin.shards = append(kin.shards, &shardKinesis{payload: 100})
			if err := fake.Create(context.Background(), lease.Lease{ShardID: fmt.Sprintf("s%d", i), Checkpoint: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}}); err != nil {
				t.Fatal(err)
			}
		}
		reads := []*readTimes{{}, {}}
		var workers []*Worker
		for i, r := range reads {
			w, err := New(kin, r.store(fake), (&latencyProc{}).factory, Config{StreamName: "st",
				Lease: lease.Config{WorkerID: fmt.Sprintf("w%d", i), Duration: 10 * time.Second, SafetyMargin: 2 * time.Second, RenewInterval: 4 * time.Second, TakeInterval: time.Second}}, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			workers = append(workers, w)
		}
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Go(func() {
				if err := w.Run(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		for _, s := range kin.shards {
			go func() {
				for range 40 * 10 {
					time.Sleep(100 * time.Millisecond)
					s.add(1)
				}
			}()
		}
		time.Sleep(45 * time.Second)
		cancel()
		wg.Wait()

		from, to := start.Add(15*time.Second), start.Add(45*time.Second)
		polls := map[time.Time]bool{}
		for _, s := range kin.shards {
			for _, c := range s.callsBetween(from, to) {
				polls[c.at] = true
			}
		}
		both := map[time.Time]int{}
		for i, w := range workers {
			origin, every := w.PollGrid()
			passes := reads[i].between(from, to)
			if n := len(passes); n < 29 || n > 31 {
				t.Errorf("worker %d: %d lease passes in 30 s, want one a take interval", i, n)
			}
			for _, p := range passes {
				if p.Sub(origin)%every != 0 || !polls[p] {
					t.Fatalf("worker %d: lease pass at %s, not an instant of its poll grid (origin %s) at which it polled",
						i, p.Sub(start), origin.Sub(start))
				}
				both[p]++
			}
		}
		for p, n := range both {
			if n > 1 {
				t.Fatalf("both workers read the lease table at %s: their grids share a phase", p.Sub(start))
			}
		}
	})
}
